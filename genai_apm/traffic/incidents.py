"""Labelled incidents: what was injected, for which key, when. The labels are the ground truth
a detector is scored against, so they are written beside the data (``labels_json``) and read
back with ``load_labels``.

Every incident affects only records whose ``key_field`` equals ``key`` and whose event time
lies in [start_ms, end_ms).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

# kind -> (key_field, default parameters)
KINDS: dict[str, tuple[str, dict[str, float]]] = {
    # the model's successful calls take `factor` times as long (TTFT too)
    "latency_regression": ("model_id", {"factor": 3.0}),
    # the app's prompts grow `factor` times; latency follows through prefill time
    "input_token_spike": ("app_id", {"factor": 5.0}),
    # a `share` of the model's calls are rejected with the provider's throttle error
    "throttling_storm": ("model_id", {"share": 0.6}),
    # a `share` of the app's calls are blocked by a guardrail or content filter: successes
    # with error_class content_filtered, so the error share is unchanged (calls that fail
    # anyway, before reaching the model, stay failures)
    "content_filter_spike": ("app_id", {"share": 0.3}),
    # an agent session (conversation) calls the same tool `repeats` times in a row
    "runaway_agent_loop": ("session_id", {"repeats": 30}),
    # the user adds `calls_per_s` calls with prompts and answers `size_factor` times larger
    "cost_spike": ("user_id", {"calls_per_s": 1.0, "size_factor": 8.0}),
    # the app adds calls to its primary model at a rate growing linearly from 0 at the start
    # to `peak_calls_per_s` at the end (a launch, a backfill): usage grows into a quota
    "traffic_ramp": ("app_id", {"peak_calls_per_s": 5.0}),
}
LABELS_VERSION = 1


@dataclass(frozen=True)
class Incident:
    kind: str
    key: str
    start_ms: int
    end_ms: int
    params: tuple[tuple[str, float], ...] = ()  # all of the kind's parameters, defaults filled

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown incident kind {self.kind!r}; one of {', '.join(KINDS)}")
        if not self.start_ms < self.end_ms:
            raise ValueError(f"{self.kind} on {self.key}: start_ms must be before end_ms")
        defaults = KINDS[self.kind][1]
        unknown = {name for name, _ in self.params} - defaults.keys()
        if unknown:
            raise ValueError(f"{self.kind}: unknown parameters {sorted(unknown)}")
        given = dict(self.params)
        object.__setattr__(
            self, "params", tuple((name, float(given.get(name, d))) for name, d in defaults.items())
        )

    @property
    def key_field(self) -> str:
        return KINDS[self.kind][0]

    def param(self, name: str) -> float:
        return dict(self.params)[name]

    def covers(self, key: str, time_ms: float) -> bool:
        return key == self.key and self.start_ms <= time_ms < self.end_ms


def _make(kind: str, key: str, start_ms: int, end_ms: int, **params: float) -> Incident:
    return Incident(kind, key, int(start_ms), int(end_ms), tuple(params.items()))


def latency_regression(model_id: str, start_ms: int, end_ms: int, factor: float = 3.0) -> Incident:
    return _make("latency_regression", model_id, start_ms, end_ms, factor=factor)


def input_token_spike(app_id: str, start_ms: int, end_ms: int, factor: float = 5.0) -> Incident:
    return _make("input_token_spike", app_id, start_ms, end_ms, factor=factor)


def throttling_storm(model_id: str, start_ms: int, end_ms: int, share: float = 0.6) -> Incident:
    return _make("throttling_storm", model_id, start_ms, end_ms, share=share)


def content_filter_spike(app_id: str, start_ms: int, end_ms: int, share: float = 0.3) -> Incident:
    return _make("content_filter_spike", app_id, start_ms, end_ms, share=share)


def runaway_agent_loop(session_id: str, start_ms: int, end_ms: int, repeats: int = 30) -> Incident:
    return _make("runaway_agent_loop", session_id, start_ms, end_ms, repeats=repeats)


def cost_spike(
    user_id: str, start_ms: int, end_ms: int, calls_per_s: float = 1.0, size_factor: float = 8.0
) -> Incident:
    return _make(
        "cost_spike", user_id, start_ms, end_ms, calls_per_s=calls_per_s, size_factor=size_factor
    )


def traffic_ramp(
    app_id: str, start_ms: int, end_ms: int, peak_calls_per_s: float = 5.0
) -> Incident:
    return _make("traffic_ramp", app_id, start_ms, end_ms, peak_calls_per_s=peak_calls_per_s)


def labels_json(incidents: Iterable[Incident]) -> str:
    """The labels file: one object per incident, in the order given."""
    labels = [
        {
            "kind": i.kind,
            "key_field": i.key_field,
            "key": i.key,
            "start_ms": i.start_ms,
            "end_ms": i.end_ms,
            "params": dict(i.params),
        }
        for i in incidents
    ]
    return json.dumps({"version": LABELS_VERSION, "labels": labels}, indent=2) + "\n"


def load_labels(text: str) -> tuple[Incident, ...]:
    doc = json.loads(text)
    if doc.get("version") != LABELS_VERSION:
        raise ValueError(f"labels version {doc.get('version')!r}, expected {LABELS_VERSION}")
    incidents = []
    for label in doc["labels"]:
        incident = Incident(
            label["kind"],
            label["key"],
            int(label["start_ms"]),
            int(label["end_ms"]),
            tuple(label.get("params", {}).items()),
        )
        if label.get("key_field", incident.key_field) != incident.key_field:
            raise ValueError(f"{incident.kind} is keyed by {incident.key_field}, not {label}")
        incidents.append(incident)
    return tuple(incidents)
