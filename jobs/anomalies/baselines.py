"""Stage 2, baselines: each metric's statistics over the key's last windows (quartiles, or
mean and sd for the z-score detector), optionally over the same time of day of the last days
(daily seasonality), LAG'd so a window is judged against the windows before it."""

from __future__ import annotations

from genai_apm.jobs.anomalies.metrics import IQR_TO_SD, METRICS, WEIGHTS, Metrics, _over
from genai_apm.settings.config import AnomalySettings


def quartiles_sql(source: str, s: AnomalySettings, metrics: Metrics = METRICS) -> str:
    """Each metric's statistics over the key's last N windows, this one included: quartiles
    (the robust detector) or mean and standard deviation (``detector = "zscore"``, the simple
    rolling z-score the evaluation compares with), and how many windows had a value."""
    n = int(s.baseline_windows)
    if s.detector == "zscore":
        # sd from E[x^2] - E[x]^2, floored at 0: STDDEV_POP's rounding can make a constant
        # series' variance slightly negative, and its square root NaN
        stats = (
            "ARRAY[AVG({m}) OVER w, SQRT(GREATEST("
            "AVG({m} * {m}) OVER w - AVG({m}) OVER w * AVG({m}) OVER w, 0.0))]"
        )
    else:
        stats = "PERCENTILE({m}, ARRAY[0.25, 0.5, 0.75]) OVER w"
    cols = ",\n  ".join(
        f"{stats.format(m=m.name)} AS {m.name}_q,\n  COUNT({m.name}) OVER w AS {m.name}_n"
        for m in metrics
    )
    return f"""
SELECT *,
  {cols}
FROM {source}
WINDOW w AS {_over(f" ROWS BETWEEN {n - 1} PRECEDING AND CURRENT ROW")}"""


def baseline_sql(source: str, s: AnomalySettings, metrics: Metrics = METRICS) -> str:
    """The previous row's statistics: the baseline of the N windows before this one, as a
    center (median, or mean) and a spread in standard deviations (IQR / 1.349, or the sd)."""
    if s.detector == "zscore":
        center, spread = "{m}_q[1]", "{m}_q[2]"
    else:
        center, spread = "{m}_q[2]", f"({{m}}_q[3] - {{m}}_q[1]) / {IQR_TO_SD!r}"
    cols = ",\n  ".join(
        f"LAG({center.format(m=m.name)}) OVER w AS {m.name}_center,\n"
        f"  LAG({spread.format(m=m.name)}) OVER w AS {m.name}_spread,\n"
        f"  LAG({m.name}_n) OVER w AS {m.name}_baseline_n"
        for m in metrics
    )
    seasonal = [f"{m.name}_{c}" for m in metrics for c in SEASONAL_COLUMNS]
    plain = ", ".join(
        [m.name for m in metrics]
        + [name for name, _ in WEIGHTS]
        + (seasonal if s.seasonal_days else [])
    )
    return f"""
SELECT window_start, window_end, window_time, dimension, `key`, requests, {plain},
  {cols}
FROM {source}
WINDOW w AS {_over("")}"""


SEASONAL_COLUMNS = ("scenter", "sspread", "sbaseline_n")
SEASONAL_MIN_DAYS = 2  # seasonal values a slot needs before its seasonal baseline counts


def seasonal_quartiles_sql(source: str, s: AnomalySettings, metrics: Metrics = METRICS) -> str:
    """Daily seasonality (``seasonal_days`` > 0): each metric's quartiles over the key's same
    time-of-day window (``slot``, minute of the day) of the last N days, this one included."""
    n = int(s.seasonal_days)
    cols = ",\n  ".join(
        f"PERCENTILE({m.name}, ARRAY[0.25, 0.5, 0.75]) OVER ws AS {m.name}_sq,\n"
        f"  COUNT({m.name}) OVER ws AS {m.name}_sn"
        for m in metrics
    )
    return f"""
SELECT *,
  {cols}
FROM {source}
WINDOW ws AS (PARTITION BY dimension, `key`, slot ORDER BY window_time
  ROWS BETWEEN {n - 1} PRECEDING AND CURRENT ROW)"""


def seasonal_baseline_sql(source: str, metrics: Metrics = METRICS) -> str:
    """The seasonal baseline of a window: its slot's previous days (LAG within the slot)."""
    cols = ",\n  ".join(
        f"LAG({m.name}_sq[2]) OVER ws AS {m.name}_scenter,\n"
        f"  LAG(({m.name}_sq[3] - {m.name}_sq[1]) / {IQR_TO_SD!r}) OVER ws AS {m.name}_sspread,\n"
        f"  LAG({m.name}_sn) OVER ws AS {m.name}_sbaseline_n"
        for m in metrics
    )
    return f"""
SELECT *,
  {cols}
FROM {source}
WINDOW ws AS (PARTITION BY dimension, `key`, slot ORDER BY window_time)"""
