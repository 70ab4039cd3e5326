"""Alert and budget rules: parsed from the strings in settings, checked with clear errors.

Threshold rule, over the errors job's rows (``alerts.rules``)::

    name:metric:scope:op:threshold:window     throttle-rate:throttle_rate:model:>:5%:5m

Budget rule, over spend in rolling windows (``cost.budgets``)::

    name:scope:period:limit_usd               user-hourly:user:1h:5

A scope is a level (every key at that level is watched) or ``level=key`` (one key). Keys may
contain colons (Bedrock model ids do): the fields around the scope are counted from both ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from genai_apm import specs
from genai_apm.errors import GenaiApmError

if TYPE_CHECKING:
    from genai_apm.settings.config import Settings

# metric -> kind; count: calls per window, rate: a fraction 0..1, pct: 0..100
METRICS = {
    "requests": "count",
    "successes": "count",
    "errors": "count",
    "client_errors": "count",
    "server_errors": "count",
    "throttles": "count",
    "timeouts": "count",
    "content_filtered": "count",
    "unclassified_errors": "count",
    "success_rate": "rate",
    "error_rate": "rate",
    "client_error_rate": "rate",
    "server_error_rate": "rate",
    "throttle_rate": "rate",
    "timeout_rate": "rate",
    "content_filtered_rate": "rate",
    "availability_pct": "pct",
}
# scope -> how the errors job's rows for it look: (model_id is '*', app_id is '*')
SCOPES = {
    "model_app": (False, False),
    "model": (False, True),
    "app": (True, False),
    "all": (True, True),
}
BUDGET_SCOPES = ("user", "app", "feature")
PERIODS = {"1h": 60, "1d": 1440}
OPS = (">=", "<=", ">", "<")

THRESHOLD_SYNTAX = (
    "name:metric:scope:op:threshold:window, e.g. throttle-rate:throttle_rate:model:>:5%:5m"
)
BUDGET_SYNTAX = "name:scope:period:limit_usd, e.g. user-hourly:user:1h:5"


@dataclass(frozen=True)
class ThresholdRule:
    name: str
    metric: str
    scope: str  # a key of SCOPES
    key: str | None  # None: every key at that scope; model_app keys are "model|app"
    op: str
    threshold: float  # rates as fractions, whatever the rule's spelling
    window: str  # an errors window name: 1m, 5m

    @property
    def kind(self) -> str:
        return METRICS[self.metric]


@dataclass(frozen=True)
class BudgetRule:
    name: str
    scope: str  # user, app or feature
    key: str | None
    period: str  # 1h or 1d
    limit_usd: float

    op = ">"
    metric = "cost_usd"


RuleError = specs.SpecError


def parse_threshold_rule(text: str, windows: tuple[str, ...]) -> ThresholdRule:
    parts = text.strip().split(":")
    if len(parts) < 6:
        raise RuleError(f"has {len(parts)} fields, expected 6")
    name, metric, *middle, op, raw_threshold, window = parts
    scope, key = specs.scope(":".join(middle), SCOPES)
    if metric not in METRICS:
        raise RuleError(f"metric {metric!r} is not one of {', '.join(METRICS)}")
    if op not in OPS:
        raise RuleError(f"operator {op!r} is not one of {' '.join(OPS)}")
    kind = METRICS[metric]
    if raw_threshold.endswith("%"):
        if kind != "rate":
            raise RuleError(f"a percentage threshold needs a *_rate metric, not {metric}")
        threshold = specs.number(raw_threshold[:-1], "threshold") / 100
    else:
        threshold = specs.number(raw_threshold, "threshold")
    upper = {"rate": 1, "pct": 100}.get(kind)
    if threshold < 0 or (upper is not None and threshold > upper):
        hint = " (rates are fractions: 0.05 or 5%)" if kind == "rate" else ""
        raise RuleError(f"threshold {raw_threshold} is outside 0..{upper or 'inf'}{hint}")
    if window not in windows:
        raise RuleError(f"window {window!r} is not one of the errors windows {', '.join(windows)}")
    return ThresholdRule(specs.name(name), metric, scope, key, op, threshold, window)


def parse_budget_rule(text: str) -> BudgetRule:
    parts = text.strip().split(":")
    if len(parts) < 4:
        raise RuleError(f"has {len(parts)} fields, expected 4")
    name, *middle, period, raw_limit = parts
    scope, key = specs.scope(":".join(middle), BUDGET_SCOPES)
    if period not in PERIODS:
        raise RuleError(f"period {period!r} is not one of {', '.join(PERIODS)}")
    limit = specs.number(raw_limit, "limit")
    if limit < 0:
        raise RuleError(f"limit {raw_limit} is negative")
    return BudgetRule(specs.name(name), scope, key, period, limit)


def error_windows(settings: Settings) -> tuple[str, ...]:
    from genai_apm.jobs.windows import tumbling_and_sliding

    e = settings.errors
    ws = tumbling_and_sliding(e.tumbling_minutes, e.sliding_minutes, e.sliding_hop_minutes)
    return tuple(w.name for w in ws)


def threshold_rules(settings: Settings) -> list[ThresholdRule]:
    windows = error_windows(settings)
    return specs.parse_all(
        settings.alerts.rules,
        lambda t: parse_threshold_rule(t, windows),
        "alerts.rules",
        THRESHOLD_SYNTAX,
    )


def budget_rules(settings: Settings) -> list[BudgetRule]:
    return specs.parse_all(settings.cost.budgets, parse_budget_rule, "cost.budgets", BUDGET_SYNTAX)


def validate(settings: Settings) -> None:
    """Parse every rule; names must be unique, as alerts are keyed by rule and key."""
    names = [r.name for r in threshold_rules(settings)] + [r.name for r in budget_rules(settings)]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise GenaiApmError(f"config: rule names must be unique; repeated: {', '.join(duplicates)}")
    if settings.alerts.min_requests < 0:
        raise GenaiApmError("config alerts.min_requests must not be negative")
    c = settings.cost
    for name in ("window_minutes", "budget_hour_hop_minutes", "budget_day_hop_minutes"):
        if getattr(c, name) <= 0:
            raise GenaiApmError(f"config cost.{name} must be positive")
    for name, period in (("budget_hour_hop_minutes", "1h"), ("budget_day_hop_minutes", "1d")):
        if PERIODS[period] % getattr(c, name):
            raise GenaiApmError(f"config cost.{name} must divide {PERIODS[period]} (one {period})")
