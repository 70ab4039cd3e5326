"""Stage 3, evaluation: each metric's reference, robust sd and deviation against its baseline;
with ``history_windows`` the adaptive bar (the key's own largest recent deviation); per row
whether it is hot and warm."""

from __future__ import annotations

from genai_apm.jobs.anomalies.baselines import SEASONAL_MIN_DAYS
from genai_apm.jobs.anomalies.metrics import METRICS, Metric, Metrics, _over
from genai_apm.settings.config import AnomalySettings


def evaluation_sql(source: str, s: AnomalySettings, metrics: Metrics = METRICS) -> str:
    """Per metric: its reference (baseline center), robust sd, deviation and whether it is
    warm; with daily seasonality, of the trailing and the seasonal baseline the one the value
    deviates less from (an anomaly must be unusual for the last hours AND for this time of
    day); per row: hot, warm (_flags_sql)."""
    inner, outer = [], []
    for m in metrics:
        # the z-score baseline is the textbook one: no relative floor, only the absolute
        # floor that keeps a flat series from dividing by zero
        relative = 0.0 if s.detector == "zscore" else s.relative_floor * m.tail

        def sd(center: str, spread: str, m=m, relative=relative) -> str:
            return f"GREATEST({spread}, {relative!r} * ABS({center}), CAST({m.floor!r} AS DOUBLE))"

        t_sd = sd(f"{m.name}_center", f"{m.name}_spread")
        inner.append(
            f"{t_sd} AS {m.name}_tsd,\n  ({m.name} - {m.name}_center) / {t_sd} AS {m.name}_tdev"
        )
        warm = f"COALESCE({m.name}_baseline_n >= {int(s.warmup_windows)}, FALSE) AS {m.name}_warm"
        if s.seasonal_days:
            s_sd = sd(f"{m.name}_scenter", f"{m.name}_sspread")
            inner.append(
                f"{s_sd} AS {m.name}_ssd,\n"
                f"  ({m.name} - {m.name}_scenter) / {s_sd} AS {m.name}_sdev"
            )
            use = (
                f"COALESCE({m.name}_sbaseline_n >= {SEASONAL_MIN_DAYS}, FALSE) AND "
                f"(ABS({m.name}_sdev) <= ABS({m.name}_tdev) "
                f"OR SIGN({m.name}_sdev) <> SIGN({m.name}_tdev))"
            )
            outer.append(
                f"CASE WHEN {use} THEN {m.name}_scenter ELSE {m.name}_center END AS {m.name}_ref,\n"
                f"  CASE WHEN {use} THEN {m.name}_ssd ELSE {m.name}_tsd END AS {m.name}_sd,\n"
                f"  CASE WHEN {use} THEN {m.name}_sdev ELSE {m.name}_tdev END AS {m.name}_dev,\n"
                f"  {warm}"
            )
        else:
            outer.append(
                f"{m.name}_center AS {m.name}_ref, {m.name}_tsd AS {m.name}_sd,\n"
                f"  {m.name}_tdev AS {m.name}_dev, {warm}"
            )
    chosen, parts = ",\n  ".join(outer), ",\n    ".join(inner)
    return f"""
SELECT *,
  {chosen}
FROM (
  SELECT *,
    {parts}
  FROM {source}
)"""


def _size(s: AnomalySettings, dev: str) -> str:
    """How far a deviation counts: rises only, or both ways (``direction = "both"``)."""
    return f"ABS({dev})" if s.direction == "both" else dev


def history_sql(source: str, s: AnomalySettings, metrics: Metrics = METRICS) -> str:
    """``history_windows`` = L > 0: per metric, the largest deviation (its size) of the key's
    L warm windows before the run of ``open_after_windows`` = n that could open an incident,
    ``{m}_bar``: the MAX of the L windows up to a window, LAG'd by n, so neither the current
    window nor the n - 1 before it (which must be hot with it) raise their own bar (the twin:
    jobs/detectors.py, hot_windows)."""
    big_l, n = int(s.history_windows), int(s.open_after_windows)
    inner = ",\n    ".join(
        f"MAX(CASE WHEN {m.name}_warm THEN {_size(s, f'{m.name}_dev')} END) OVER wh "
        f"AS {m.name}_hmax"
        for m in metrics
    )
    outer = ",\n  ".join(f"LAG({m.name}_hmax, {n}) OVER w AS {m.name}_bar" for m in metrics)
    return f"""
SELECT *,
  {outer}
FROM (
  SELECT *,
    {inner}
  FROM {source}
  WINDOW wh AS {_over(f" ROWS BETWEEN {big_l - 1} PRECEDING AND CURRENT ROW")}
)
WINDOW w AS {_over("")}"""


def _flags_sql(source: str, s: AnomalySettings, metrics: Metrics = METRICS) -> str:
    def beyond_history(m: Metric) -> str:
        if not s.history_windows:
            return ""
        # no earlier warm window: nothing to exceed but the threshold
        return f" AND {_size(s, f'{m.name}_dev')} > GREATEST(COALESCE({m.name}_bar, 0.0), 0.0)"

    anomalous = [
        f"COALESCE({m.name}_warm AND {_size(s, f'{m.name}_dev')} >= {s.threshold!r}"
        f"{beyond_history(m)}, FALSE)"
        for m in metrics
    ]
    flags = ",\n  ".join(f"{a} AS {m.name}_hot" for a, m in zip(anomalous, metrics, strict=True))
    return f"""
SELECT *,
  {flags},
  {" OR ".join(anomalous)} AS hot,
  {" OR ".join(f"{m.name}_warm" for m in metrics)} AS warm
FROM {source}"""
