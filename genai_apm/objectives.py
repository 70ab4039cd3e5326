"""Service level objectives and burn-rate alerts: parsed from the strings in settings.

SLO (``slo.objectives``)::

    name:availability:scope:objective:period              chat-avail:availability:model:99.5%:30d
    name:latency:scope:objective:period:measure:ms        chat-ttft:latency:app:99%:30d:ttft:800

availability  good = success, client error or content-filtered (client errors are the
              caller's fault; throttles, timeouts, server and unclassified errors are not);
              every call counts
latency       good = the call's ``measure`` (ttft or latency) at or under ``ms``; the calls
              counted are the successful ones that have the measure (TTFT: streaming calls)

A scope is ``model``, ``app``, ``model_app`` or ``all``, optionally ``=key`` for one key
(``model_app`` keys are ``model|app``). Keys may contain colons: the fields around the scope
are counted from both ends. The objective is a percentage (``99.5%``) or a fraction
(``0.995``); the period (compliance window) is whole days or hours (``30d``, ``12h``).

Burn-rate alert (``slo.burn_alerts``)::

    severity:long:short:burn                                page:1h:5m:14.4

fires while the burn rate over both the long and the short window exceeds ``burn``; the
windows are among ``BURN_WINDOWS``. A burn rate is the error ratio over a window divided by
the error budget (1 - objective): 1 spends the budget exactly over the period.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from genai_apm import specs
from genai_apm.errors import GenaiApmError

SLIS = ("availability", "latency")
MEASURES = {"ttft": "ttft_ms", "latency": "ok_latency_ms"}  # measure -> minute_events column
SCOPES = ("model", "app", "model_app", "all")
# the burn-rate windows every SLO row carries: name -> minutes
BURN_WINDOWS = {"5m": 5, "30m": 30, "1h": 60, "6h": 360, "3d": 4320}
SLO_SYNTAX = (
    "name:availability:scope:objective:period or name:latency:scope:objective:period:measure:ms, "
    "e.g. chat-avail:availability:model:99.5%:30d"
)
BURN_SYNTAX = "severity:long:short:burn, e.g. page:1h:5m:14.4"


ObjectiveError = specs.SpecError


@dataclass(frozen=True)
class Objective:
    name: str
    sli: str  # availability | latency
    scope: str  # one of SCOPES
    key: str | None  # None: every key at that scope
    objective: float  # fraction of good events, 0 < objective < 1
    period_minutes: int  # the compliance period
    measure: str | None = None  # latency SLOs: ttft | latency
    threshold_ms: float | None = None

    @property
    def budget(self) -> float:
        """The allowed share of bad events."""
        return 1.0 - self.objective

    @property
    def period(self) -> str:
        m = self.period_minutes
        return f"{m // 1440}d" if m % 1440 == 0 else f"{m // 60}h"

    @property
    def good_column(self) -> str | None:
        """The minute_stats column counting this SLO's good latency events."""
        if self.sli != "latency":
            return None
        return good_column(self.measure, self.threshold_ms)

    @property
    def valid_column(self) -> str | None:
        return None if self.sli != "latency" else f"slo_{self.measure}_calls"


@dataclass(frozen=True)
class BurnAlert:
    severity: str
    long: str  # a BURN_WINDOWS name
    short: str
    burn: float

    @property
    def name(self) -> str:
        return f"{self.severity}-{self.long}-{self.short}"


def good_column(measure: str, threshold_ms: float) -> str:
    text = f"{threshold_ms:g}".replace(".", "_").replace("-", "m").replace("+", "")
    return f"slo_good_{measure}_le_{text}"


def _period(text: str) -> int:
    match = re.fullmatch(r"([1-9][0-9]*)([dh])", text)
    if not match:
        raise ObjectiveError(f"period {text!r} is not whole days or hours (30d, 12h)")
    n, unit = int(match.group(1)), match.group(2)
    minutes = n * (1440 if unit == "d" else 60)
    if minutes > 90 * 1440:
        raise ObjectiveError(f"period {text!r} is longer than 90 days")
    return minutes


def _objective(text: str) -> float:
    percent = text.endswith("%")
    value = specs.number(text.removesuffix("%"), "objective") / (100 if percent else 1)
    if not 0 < value < 1:
        raise ObjectiveError(f"objective {text!r} must lie strictly between 0 and 100%")
    return value


def parse_objective(text: str) -> Objective:
    parts = text.strip().split(":")
    if len(parts) < 5:
        raise ObjectiveError(f"has {len(parts)} fields, expected 5 or 7")
    name, sli = parts[0], parts[1]
    if sli not in SLIS:
        raise ObjectiveError(f"sli {sli!r} is not one of {', '.join(SLIS)}")
    tail = 4 if sli == "latency" else 2
    if len(parts) < 3 + tail:
        raise ObjectiveError(f"has {len(parts)} fields, expected {3 + tail}")
    middle, rest = parts[2:-tail], parts[-tail:]
    level, key = specs.scope(":".join(middle), SCOPES)
    if level == "all" and key is not None:
        raise ObjectiveError("scope all takes no key")
    measure = threshold = None
    if sli == "latency":
        measure = rest[2]
        if measure not in MEASURES:
            raise ObjectiveError(f"measure {measure!r} is not one of {', '.join(MEASURES)}")
        threshold = specs.number(rest[3], "threshold_ms")
        if threshold <= 0:
            raise ObjectiveError(f"threshold_ms {rest[3]} must be positive")
    return Objective(
        name=specs.name(name),
        sli=sli,
        scope=level,
        key=key,
        objective=_objective(rest[0]),
        period_minutes=_period(rest[1]),
        measure=measure,
        threshold_ms=threshold,
    )


def parse_burn_alert(text: str) -> BurnAlert:
    parts = text.strip().split(":")
    if len(parts) != 4:
        raise ObjectiveError(f"has {len(parts)} fields, expected 4")
    severity, long, short, burn = parts
    for w in (long, short):
        if w not in BURN_WINDOWS:
            raise ObjectiveError(f"window {w!r} is not one of {', '.join(BURN_WINDOWS)}")
    if BURN_WINDOWS[long] <= BURN_WINDOWS[short]:
        raise ObjectiveError(f"the long window {long} must be longer than the short one {short}")
    value = specs.number(burn, "burn")
    if value <= 0:
        raise ObjectiveError(f"burn {burn} must be positive")
    return BurnAlert(specs.name(severity, "severity"), long, short, value)


def objectives(slo) -> list[Objective]:
    """``slo``: the SloSettings section."""
    found = specs.parse_all(slo.objectives, parse_objective, "slo.objectives", SLO_SYNTAX)
    names = [o.name for o in found]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise GenaiApmError(
            f"config slo.objectives: names must be unique; repeated: {', '.join(repeated)}"
        )
    return found


def burn_alerts(slo) -> list[BurnAlert]:
    found = specs.parse_all(slo.burn_alerts, parse_burn_alert, "slo.burn_alerts", BURN_SYNTAX)
    names = [a.name for a in found]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise GenaiApmError(f"config slo.burn_alerts: repeated {', '.join(repeated)}")
    return found


def _latency_columns(settings) -> dict[str, str]:
    """minute_stats column -> aggregate over minute_events, for the latency SLOs."""
    cols: dict[str, str] = {}
    for o in objectives(settings.slo):
        if o.sli != "latency":
            continue
        measure = MEASURES[o.measure]
        cols[o.valid_column] = f"COUNT({measure})"
        cols[o.good_column] = f"COUNT(*) FILTER (WHERE {measure} <= {o.threshold_ms!r})"
    return cols


def minute_aggregates(settings) -> list[tuple[str, str]]:
    """(column, aggregate over minute_events) that minute_stats adds for the SLOs: per latency
    measure the calls that have it, per threshold the calls at or under it. [] without
    latency SLOs (availability needs only the outcome counts minute_stats always has).
    Here, not in jobs/slo.py: jobs/minutes.py builds minute_stats and jobs/slo.py reads it."""
    return sorted(_latency_columns(settings).items())
