"""Per-call outliers through the anomalies job (bounded, over a file), against numpy.

Generated traffic for a few apps, with a handful of calls made huge (tokens or latency many
times their app's typical size). For every successful call numpy computes the reference the
job defines (jobs/anomalies/outliers.py, outlier_views): the app's successful calls in the
``outlier_range_minutes`` one-minute windows up to the latest one closed at the call's event
time, the mean and population sd of ln(x + 1), and z = (ln(x + 1) - mean) / max(sd, floor).
The job's outlier events must be exactly the (call, metric) pairs numpy flags, with the same
scores, observed values and baselines."""

from __future__ import annotations

import json
import math
from collections import defaultdict

import numpy as np
import pytest

from genai_apm import traffic as generator
from genai_apm.jobs import anomalies

pytestmark = pytest.mark.integration

MINUTE = 60_000
PLANTED = {  # request index among the events -> {metric: factor}
    2500: {"input_tokens": 20_000},
    2900: {"latency_ms": 20_000},
    3100: {"output_tokens": 20_000, "latency_ms": 20_000},
}


def _events() -> list[dict]:
    spec = generator.TrafficSpec(rate_per_s=4, seed=21, apps=3, duration_s=14 * 60)
    events = sorted(generator.invocations(spec, 10_000), key=lambda e: e["event_time"])
    for index, factors in PLANTED.items():
        e = events[index]
        e["status"], e["error_class"], e["error_type"] = "success", None, None
        for metric, factor in factors.items():
            e[metric] = max(e[metric] or 1, 1) * factor
    return events


def expected_outliers(events: list[dict], s) -> dict[tuple[str, str], dict]:
    """(request_id, metric) -> score, observed, baseline, per the job's definition."""
    r, n_min, z_min = s.outlier_range_minutes, s.outlier_min_calls, s.outlier_threshold
    ok = [e for e in events if e["status"] == "success"]
    by_app_minute: dict[tuple, list[dict]] = defaultdict(list)
    for e in ok:
        by_app_minute[(e["app_id"] or "unknown", e["event_time"] // MINUTE)].append(e)
    out = {}
    for e in ok:
        app = e["app_id"] or "unknown"
        # the reference as of the call: the latest window with calls of the app whose rowtime
        # (end - 1 ms) is at or before the call, if the range still reaches the call
        newest = (e["event_time"] + 1) // MINUTE - 1
        with_calls = [m for m in range(newest - r + 1, newest + 1) if (app, m) in by_app_minute]
        if not with_calls:
            continue
        last = with_calls[-1]
        if e["event_time"] >= (last + 1) * MINUTE - 1 + r * MINUTE:
            continue
        ref = [c for m in range(last - r + 1, last + 1) for c in by_app_minute.get((app, m), [])]
        for metric in anomalies.EVENT_METRICS:
            logs = np.array([math.log(c[metric] + 1) for c in ref if c[metric] is not None])
            if len(logs) < n_min or e[metric] is None:
                continue
            mu, sd = logs.mean(), logs.std()
            score = (math.log(e[metric] + 1) - mu) / max(sd, anomalies.OUTLIER_SD_FLOOR)
            if score >= z_min:
                out[(e["request_id"], metric)] = {
                    "score": score,
                    "observed": float(e[metric]),
                    "baseline": math.exp(mu) - 1,
                }
    return out


def test_outliers_equal_numpy(settings, tmp_path):
    s = settings.replace(flink={"watermark_emit": "on-event"})
    events = _events()
    source = tmp_path / "in"
    source.mkdir()
    (source / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))

    anomalies.backfill(s, input_path=str(source), output_path=str(tmp_path / "out"))

    want = expected_outliers(events, s.anomalies)
    planted = {(events[i]["request_id"], m) for i, f in PLANTED.items() for m in f}
    assert planted <= want.keys(), "the planted calls are outliers by numpy's count"
    rows = [
        json.loads(line)
        for p in sorted((tmp_path / "out" / "anomaly_events").rglob("*"))
        if p.is_file() and not p.name.startswith(".")
        for line in p.read_text().splitlines()
        if line.strip()
    ]
    got = {}
    for row in rows:
        if row["event"] == "outlier":
            request_id = row["explanation"].split(" request ", 1)[1].split(":", 1)[0]
            got[(request_id, row["metric"])] = row
    assert got.keys() == want.keys()
    for key, value in want.items():
        row = got[key]
        assert row["score"] == pytest.approx(value["score"], rel=1e-6), key
        assert row["observed"] == pytest.approx(value["observed"], rel=1e-12), key
        assert row["baseline"] == pytest.approx(value["baseline"], rel=1e-6), key
        assert row["severity"] == (
            "critical" if value["score"] >= 2 * s.anomalies.outlier_threshold else "warning"
        )
