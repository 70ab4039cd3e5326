"""Anomaly detection on tokens, latency, errors and cost: window-level shifts per key, as
incidents with an open and a close event, a severity score and an explanation; and per-call
outliers (``outlier_views``).

Per tumbling window and key (dimension model, app, model_app or user) the job computes a row
of metrics (METRICS: mean and p99 of input and output tokens, p50 and p99 latency, error
rate, spend).
Each metric is compared with the key's own baseline, the median and interquartile range of
its value over the key's previous ``anomalies.baseline_windows`` windows:

    robust_sd = max(IQR / 1.349, relative_floor * |median|, the metric's absolute floor)
    deviation = (observed - median) / robust_sd

IQR / 1.349 is the standard deviation of a normal with that IQR; median and IQR ignore the
outliers a mean and variance would absorb, so one bad window does not mask the next. Only
rises count: more tokens, more latency, more errors, more spend. A metric is anomalous when
its deviation reaches ``anomalies.threshold`` and the key has at least
``anomalies.warmup_windows`` baseline values (before that the key is in WARMUP and never
alerts). Mean, p99 and rate metrics are NULL in windows with fewer than
``anomalies.min_requests`` calls (too noisy to judge; they neither alert nor feed the
baseline); cost is a sum and always counts.

With ``anomalies.history_windows`` = L > 0 (the adaptive detector) a metric must also
deviate more than it did in any of the key's L windows before (its largest deviation there,
a MAX over the L rows LAG'd past the windows that open an incident): the key's own recent
extremes set the bar, so a key whose normal includes big swings needs a bigger one to alert
(jobs/detectors.py is the numpy twin the evaluation tunes on).

A key's window is hot when any metric is anomalous; the key is in ALARM while any of its last
``anomalies.close_after_windows`` windows was hot, so one quiet window inside an incident
does not close it. Every metric of the key is judged in the same row, so a prompt-induced
latency regression (input tokens and latency rising together for one app) is ONE incident
whose explanation names both. Open and close events are state changes found with LAG, as in
jobs/alerts.py.

Everything is SQL: the baselines are OVER aggregations per key on the windowed rows
(PERCENTILE over ROWS BETWEEN N-1 PRECEDING AND CURRENT ROW, then LAG to exclude the
current window), so no Python runs per record or per window. State per key is N windowed
rows and a few scalars; keys silent for ``anomalies.state_ttl_hours`` are dropped
(``table.exec.state.ttl``), so memory follows the keys active in that span (docs/anomalies.md).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from genai_apm.flink.env import create_view
from genai_apm.jobs import minutes
from genai_apm.jobs.runner import Job
from genai_apm.jobs.sinks import Sinks
from genai_apm.jobs.windows import Window
from genai_apm.schemas.outputs import ANOMALY_COLUMNS
from genai_apm.schemas.outputs import ANOMALY_COUNT_COLUMNS as COUNT_COLUMNS
from genai_apm.settings.config import AnomalySettings, Settings

ONE_MINUTE = Window("1m", 1)  # the outlier reference's step: the shared 1-minute rollup

JOB = "anomalies"
UNKNOWN = "unknown"
ALARM, OK, WARMUP = "ALARM", "OK", "WARMUP"
IQR_TO_SD = 1.349  # the IQR of a standard normal


@dataclass(frozen=True)
class Metric:
    name: str
    aggregate: str  # over minute_stats rows in a window (jobs/minutes.py)
    floor: float  # the least robust sd: below this a change is not worth a page
    needs_requests: bool = True  # NULL when the window has fewer than min_requests calls
    # a p-quantile of fewer than 1 / (1 - p) calls is the window's maximum, one call's value:
    # a p99 needs 100 calls before it says anything about the key (per-call outliers cover
    # single calls)
    min_calls: int = 0
    # the relative floor times this: a window's p99 of a heavy-tailed quantity is nearly its
    # maximum, and swings far more than a median or mean
    tail: float = 1.0
    # what "a share of this key's traffic" means for this metric, in root-cause attribution:
    # a WEIGHTS column (tokens for token metrics, successful calls for latency, ...)
    weight: str = "w_ok"


TAIL = 3.0
# the metrics a detector judges: all of METRICS, but for an evaluation on single-valued series
Metrics = tuple[Metric, ...]


def _p(histogram: str, q: float) -> str:
    # over minute_stats rows in a window: the quantile of the merged histogram (within the
    # histograms' relative error, latency.histogram_relative_error)
    return f"GENAI_HIST_QUANTILES(GENAI_HIST_MERGE({histogram}), ARRAY[{q!r}], {{gamma}})[1]"


def _mean(total: str, count: str) -> str:
    return f"CAST(SUM({total}) AS DOUBLE) / NULLIF(SUM({count}), 0)"


# aggregates over the shared per-minute rows (jobs/minutes.py); {gamma} is the histograms'
METRICS = (
    Metric(
        "input_tokens_mean",
        _mean("ok_input_tokens_sum", "ok_input_tokens_n"),
        1.0,
        weight="w_in",
    ),
    Metric(
        "input_tokens_p99",
        _p("ok_input_tokens_h", 0.99),
        1.0,
        tail=TAIL,
        weight="m_in",
        min_calls=100,
    ),
    Metric(
        "output_tokens_mean",
        _mean("ok_output_tokens_sum", "ok_output_tokens_n"),
        1.0,
        tail=TAIL,
        weight="w_out",
    ),
    Metric(
        "output_tokens_p99",
        _p("ok_output_tokens_h", 0.99),
        1.0,
        tail=TAIL,
        weight="m_out",
        min_calls=100,
    ),
    Metric("latency_p50_ms", _p("latency_h", 0.5), 10.0),
    Metric(
        "latency_p99_ms",
        _p("latency_h", 0.99),
        10.0,
        tail=TAIL,
        weight="m_latency",
        min_calls=100,
    ),
    Metric(
        "error_rate",
        "CAST(SUM(requests) - SUM(ok_requests) AS DOUBLE) / SUM(requests)",
        0.02,
        weight="w_errors",
    ),
    # spend per window: a few users' calls are lumpy, so 5 cents is the least sd that counts
    Metric("cost_usd", "SUM(cost_usd)", 0.05, needs_requests=False, weight="w_cost"),
)
# per window and key (and per pair of keys, for attribution): how much traffic of each kind
WEIGHTS = (
    ("w_ok", "CAST(SUM(ok_requests) AS DOUBLE)"),
    ("w_errors", "CAST(SUM(requests) - SUM(ok_requests) AS DOUBLE)"),
    ("w_in", "CAST(SUM(ok_input_tokens_sum) AS DOUBLE)"),
    ("w_out", "CAST(SUM(ok_output_tokens_sum) AS DOUBLE)"),
    ("w_cost", "SUM(cost_usd)"),
    # a p99 of a window's few dozen calls is nearly its maximum, so for tail metrics the
    # question is not "what share" but "whose call is the largest": the pair's maximum over the
    # key's (1.0 when the pair holds it)
    ("m_in", "CAST(MAX(ok_input_tokens_max) AS DOUBLE)"),
    ("m_out", "CAST(MAX(ok_output_tokens_max) AS DOUBLE)"),
    ("m_latency", "CAST(MAX(latency_max_ms) AS DOUBLE)"),
)
TAIL_WEIGHTS = ("m_in", "m_out", "m_latency")
DIMENSIONS = (  # (dimension, grouping set, key expression)
    ("model_app", ("model_id", "app_id"), "CONCAT(model_id, '|', app_id)"),
    ("model", ("model_id",), "model_id"),
    ("app", ("app_id",), "app_id"),
    ("user", ("user_id",), "user_id"),
)


# --- the threshold math, in Python for tests and scoring, and as SQL for the job ------------


def robust_sd(median: float, iqr: float, floor: float, relative_floor: float) -> float:
    return max(iqr / IQR_TO_SD, relative_floor * abs(median), floor)


def deviation(observed: float, median: float, sd: float) -> float:
    return (observed - median) / sd


def severity(score: float, threshold: float) -> str:
    if score >= 2 * threshold:
        return "critical"
    return "warning" if score >= threshold else "none"


def explanation(key: str, dimension: str, parts: list[tuple[str, float, float, float]]) -> str:
    """What the job writes for an open event: ``parts`` are (metric, observed, baseline,
    deviation), most deviant first."""
    signals = "; ".join(
        f"{m} {obs:.4f} vs baseline {base:.4f} ({dev:+.1f} sd)" for m, obs, base, dev in parts
    )
    return f"{dimension} {key}: {signals}"


def _num(sql: str, digits: int = 4) -> str:
    # the SQL twin of Python's f"{x:.4f}" in ``explanation``; a value DECIMAL cannot hold
    # (NaN, infinite, beyond 1e30) is written as Java prints it instead of failing the job
    return (
        f"CASE WHEN ABS({sql}) < 1e30 THEN CAST(CAST({sql} AS DECIMAL(38, {digits})) AS STRING) "
        f"ELSE CAST({sql} AS STRING) END"
    )


def window(settings: Settings) -> Window:
    return Window(f"{settings.anomalies.window_minutes}m", settings.anomalies.window_minutes)


# --- SQL ------------------------------------------------------------------------------------


def window_rows_sql(
    w: Window, s: AnomalySettings, gamma: float, dimensions: tuple = DIMENSIONS
) -> str:
    """One row per window and key: requests and every metric (NULL where too few calls).

    The model, app and model x app keys come from minute_stats, the users from minute_users
    (jobs/minutes.py): a UNION ALL of one aggregation per view."""
    aggregates = ",\n    ".join(
        [f"CAST({m.aggregate.format(gamma=repr(gamma))} AS DOUBLE) AS {m.name}" for m in METRICS]
        + [f"{sql} AS {name}" for name, sql in WEIGHTS]
    )
    guarded = ",\n  ".join(
        f"CASE WHEN requests >= {max(int(s.min_requests), m.min_calls)} THEN {m.name} END"
        f" AS {m.name}"
        if m.needs_requests
        else m.name
        for m in METRICS
    )
    by_view: dict[str, list] = {}
    for d in dimensions:
        by_view.setdefault(minutes.source(d[1]), []).append(d)
    parts = []
    for view, dims in by_view.items():
        dimension = " ".join(
            f"WHEN {' AND '.join(f'GROUPING({c}) = 0' for c in cols)} THEN '{name}'"
            for name, cols, _ in dims
        )
        key = " ".join(
            f"WHEN {' AND '.join(f'GROUPING({c}) = 0' for c in cols)} THEN {expr}"
            for _, cols, expr in dims
        )
        sets = ", ".join("(" + ", ".join(cols) + ")" for _, cols, _ in dims)
        parts.append(f"""
  SELECT window_start, window_end, window_time,
    CAST(CASE {dimension} END AS STRING) AS dimension,
    CAST(CASE {key} END AS STRING) AS `key`,
    SUM(requests) AS requests,
    {aggregates}
  FROM TABLE({w.tvf(view, "minute_time")})
  GROUP BY window_start, window_end, window_time, GROUPING SETS ({sets})""")
    union = "\n  UNION ALL".join(parts)
    return f"""
SELECT window_start, window_end, window_time, dimension, `key`, requests,
  {guarded},
  {", ".join(name for name, _ in WEIGHTS)},
  HOUR(window_start) * 60 + MINUTE(window_start) AS slot
FROM ({union}
)"""


def _over(rows: str) -> str:
    return f"(PARTITION BY dimension, `key` ORDER BY window_time{rows})"


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


def state_sql(source: str, s: AnomalySettings, metrics: Metrics = METRICS) -> str:
    """Each row's incident state, score, top metric and explanation.

    A key's window is *sustained* when it and the key's previous ``open_after_windows`` - 1
    windows were all hot; the key is in ALARM while one of its last ``close_after_windows``
    windows was sustained. One noisy window therefore never opens an incident, and one quiet
    window inside an incident does not close it (a hysteresis written without recursion).
    ``alarm_score`` is the largest score of those windows (root-cause attribution)."""
    k, n = int(s.close_after_windows), int(s.open_after_windows)
    score = (
        "GREATEST("
        + ", ".join(
            f"CASE WHEN {m.name}_hot THEN {_size(s, f'{m.name}_dev')} ELSE 0.0 END" for m in metrics
        )
        + ")"
    )
    top = " ".join(
        f"WHEN {m.name}_hot AND {_size(s, f'{m.name}_dev')} = score THEN '{m.name}'"
        for m in metrics
    )

    def pick(suffix: str) -> str:
        # the top metric's column, by the conditions that chose it: CASE metric = '...' would
        # inline `metric`'s CASE into each branch once Flink merges the projections, and the
        # generated code grew big enough to take half a minute to compile
        return (
            "CASE "
            + " ".join(
                f"WHEN {m.name}_hot AND {_size(s, f'{m.name}_dev')} = score THEN {m.name}{suffix}"
                for m in metrics
            )
            + " END"
        )

    listed = ", ".join(f"CASE WHEN {m.name}_hot THEN '{m.name}' END" for m in metrics)
    signals = ", ".join(
        f"CASE WHEN {m.name}_hot THEN CONCAT('{m.name} ', {_num(m.name)}, ' vs baseline ', "
        f"{_num(f'{m.name}_ref')}, ' (', CASE WHEN {m.name}_dev >= 0 THEN '+' ELSE '' END, "
        f"{_num(f'{m.name}_dev', 1)}, ' sd)') END"
        for m in metrics
    )
    return f"""
SELECT *,
  {pick("")} AS observed, {pick("_ref")} AS baseline, {pick("_sd")} AS robust_sd,
  {pick("_dev")} AS deviation
FROM (
  SELECT *,
    CASE {top} END AS metric
  FROM (
    SELECT *,
      CASE WHEN MAX(CASE WHEN sustained THEN 1 ELSE 0 END) OVER w = 1 THEN '{ALARM}'
           WHEN warm THEN '{OK}' ELSE '{WARMUP}' END AS state,
      MAX({score}) OVER w AS alarm_score,
      {score} AS score,
      CONCAT_WS(',', {listed}) AS metrics,
      CONCAT(dimension, ' ', `key`, ': ', CONCAT_WS('; ', {signals})) AS explanation
    FROM (
      SELECT *,
        COALESCE(MIN(CASE WHEN hot THEN 1 ELSE 0 END) OVER w = 1 AND COUNT(*) OVER w = {n}, FALSE)
          AS sustained
      FROM ({_flags_sql(source, s, metrics)})
      WINDOW w AS {_over(f" ROWS BETWEEN {n - 1} PRECEDING AND CURRENT ROW")}
    )
    WINDOW w AS {_over(f" ROWS BETWEEN {k - 1} PRECEDING AND CURRENT ROW")}
  )
)"""


def transitions_sql(source: str, w: Window, s: AnomalySettings) -> str:
    """ANOMALY_COLUMNS rows: open (-> ALARM) and close (ALARM ->) events only."""
    crit = 2 * s.threshold
    return f"""
SELECT window_end AS alert_time,
  CASE WHEN state = '{ALARM}' THEN 'open' ELSE 'close' END AS event,
  state, previous_state, dimension, `key`,
  CASE WHEN state = '{ALARM}' THEN metrics ELSE '' END AS metrics,
  metric, observed, baseline, robust_sd, deviation,
  CASE WHEN state = '{ALARM}' THEN score ELSE 0.0 END AS score,
  CASE WHEN state <> '{ALARM}' THEN 'none' WHEN score >= {crit!r} THEN 'critical'
       ELSE 'warning' END AS severity,
  CASE WHEN state = '{ALARM}' THEN explanation
       ELSE CONCAT(dimension, ' ', `key`, ': no anomalous metric for {int(s.close_after_windows)}'
         , ' window(s)') END AS explanation,
  requests, '{w.name}' AS `window`,
  CAST(window_start AS TIMESTAMP_LTZ(3)) AS window_start,
  CAST(window_end AS TIMESTAMP_LTZ(3)) AS window_end,
  window_time
FROM (
  SELECT *, LAG(state) OVER w AS previous_state
  FROM {source}
  WINDOW w AS {_over("")}
)
WHERE (state = '{ALARM}') <> (COALESCE(previous_state, '{OK}') = '{ALARM}')"""


# --- root-cause attribution ------------------------------------------------------------------

# (grouping set, [(parent dimension, parent key, child dimension, child key)]): which keys'
# traffic contains which, per window. model_app keys are only ever explained (by their model or
# app), never an explanation: an app's spike is the app's, not one of its model x app slices'.
LINKS = (
    (
        ("model_id", "app_id"),
        (
            ("model", "model_id", "app", "app_id"),
            ("app", "app_id", "model", "model_id"),
            ("model_app", "CONCAT(model_id, '|', app_id)", "model", "model_id"),
            ("model_app", "CONCAT(model_id, '|', app_id)", "app", "app_id"),
        ),
    ),
    (
        ("model_id", "user_id"),
        (("model", "model_id", "user", "user_id"), ("user", "user_id", "model", "model_id")),
    ),
    (
        ("app_id", "user_id"),
        (("app", "app_id", "user", "user_id"), ("user", "user_id", "app", "app_id")),
    ),
    # a user's outsized calls also show on the model x app slices they go through
    (
        ("model_id", "app_id", "user_id"),
        (("model_app", "CONCAT(model_id, '|', app_id)", "user", "user_id"),),
    ),
)


def pairs_sql(w: Window) -> str:
    """Per window, the traffic of each pair of keys in LINKS (model x app, model x user,
    app x user), with g_<column> = 1 where a column is not part of the pair. Pairs with a user
    come from minute_users, model x app from minute_stats (jobs/minutes.py)."""
    weights = ", ".join(f"{sql} AS {name}" for name, sql in WEIGHTS)
    columns = ("model_id", "app_id", "user_id")
    by_view: dict[str, list] = {}
    for cols in sorted({c for c, _ in LINKS}):
        by_view.setdefault(minutes.source(cols), []).append(cols)
    parts = []
    for view, sets in by_view.items():
        grouped = sorted({c for cols in sets for c in cols})
        # a column the view's sets never group by is a constant NULL, rolled up (g_ = 1)
        keys = ", ".join(c if c in grouped else f"CAST(NULL AS STRING) AS {c}" for c in columns)
        flags = ", ".join(
            f"CAST(GROUPING({c}) AS INT) AS g_{c}" if c in grouped else f"1 AS g_{c}"
            for c in columns
        )
        sets_sql = ", ".join("(" + ", ".join(cols) + ")" for cols in sets)
        parts.append(f"""
SELECT window_time, {keys},
  {flags},
  {weights}
FROM TABLE({w.tvf(view, "minute_time")})
GROUP BY window_start, window_end, window_time, GROUPING SETS ({sets_sql})""")
    return "\nUNION ALL".join(parts)


def links_sql(source: str) -> str:
    """The pairs once per direction: how much of the parent's calls, tokens, errors and spend
    went through the child, in that window.

    One pass over the pairs: each row unnests into the directions of its grouping set (the
    others are NULL and dropped). A UNION ALL of one filtered query per direction made the
    planner push each filter into its own copy of the pairs aggregation (4 aggregations)."""
    names = ", ".join(name for name, _ in WEIGHTS)
    directions = []
    for cols, pairs in LINKS:
        pair = " AND ".join(
            f"g_{c} = {0 if c in cols else 1}" for c in ("model_id", "app_id", "user_id")
        )
        for parent_dim, parent_key, child_dim, child_key in pairs:
            directions.append(
                f"CASE WHEN {pair} THEN ROW(CAST('{parent_dim}' AS STRING), {parent_key}, "
                f"CAST('{child_dim}' AS STRING), {child_key}) END"
            )
    return f"""
SELECT window_time, d.parent_dimension, d.parent_key, d.child_dimension, d.child_key, {names}
FROM {source}
CROSS JOIN UNNEST(ARRAY[{", ".join(directions)}])
  AS d (parent_dimension, parent_key, child_dimension, child_key)
WHERE d.parent_dimension IS NOT NULL"""


def _weight(alias: str, metric: str) -> str:
    """The WEIGHTS column of ``alias`` that measures traffic for the metric named ``metric``."""
    return (
        "CASE "
        + " ".join(f"WHEN {metric} = '{m.name}' THEN {alias}.{m.weight}" for m in METRICS)
        + " END"
    )


def explanations_sql(
    s: AnomalySettings,
    hot: str = "anomaly_hot",
    links: str = "anomaly_links",
    alarmed: str = "anomaly_alarmed",
) -> str:
    """Every (hot key, key in ALARM that explains it) pair of a window, with the share.

    Key P (hot in a window, its top metric M) is explained by key C (in ALARM, another
    dimension) when C carries at least ``explain_share`` of P's traffic as M measures it (its
    tokens, successful calls, errors or spend; for a p99, C must hold P's largest value) and,
    if P also carries that share of C's, C scores at least as high: a user's huge prompts
    explain the spend of the model they go through, an app's prompt spike explains its
    models' token p99s, a model's latency regression explains its apps' latency; of two keys
    that explain each other the stronger anomaly is the root. Interval joins on the window's
    time keep state to one window."""
    tails = ", ".join(f"'{m.name}'" for m in METRICS if m.weight in TAIL_WEIGHTS)
    sigma = f"CASE WHEN p.metric IN ({tails}) THEN 1.0 ELSE {float(s.explain_share)!r} END"
    share_cp = f"{_weight('l', 'p.metric')} / NULLIF({_weight('p', 'p.metric')}, 0)"
    share_pc = f"{_weight('l', 'p.metric')} / NULLIF({_weight('c', 'p.metric')}, 0)"
    return f"""
SELECT p.window_time AS hot_time, p.dimension, p.`key`,
  CONCAT(c.dimension, ' ', c.`key`) AS explained_by,
  {share_cp} AS explained_share
FROM {hot} AS p
JOIN {links} AS l
  ON l.parent_dimension = p.dimension AND l.parent_key = p.`key`
  AND l.window_time BETWEEN p.window_time AND p.window_time
JOIN {alarmed} AS c
  ON c.dimension = l.child_dimension AND c.`key` = l.child_key
  AND c.window_time BETWEEN l.window_time AND l.window_time
WHERE {share_cp} >= {sigma}
  AND (p.dimension = 'model_app' OR c.alarm_score >= p.score
       OR COALESCE({share_pc}, 0.0) < {sigma})"""


def best_explanation_sql(source: str, w: Window) -> str:
    """One explanation per key and window: the explaining key with the largest share (a
    window Top-N, whose state ends with the window)."""
    return f"""
SELECT window_start, window_end, window_time, dimension, `key`, explained_by, explained_share
FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end, dimension, `key`
    ORDER BY explained_share DESC, explained_by) AS rn
  FROM TABLE({w.tvf(source, "hot_time")})
)
WHERE rn = 1"""


def incidents_sql(transitions: str, explained: str) -> str:
    """ANOMALY_COLUMNS: the open and close events, an open one with its explanation by
    another key when there is one. A left interval join on the window's time: an event without
    an explanation leaves as soon as the watermark passes its window."""
    cols = ", ".join(
        f"t.`{n}`" if n != "explained_by" else "x.explained_by" for n, _ in ANOMALY_COLUMNS
    ).replace(
        "t.`explanation`",
        "CASE WHEN x.explained_by IS NULL THEN t.explanation ELSE CONCAT(t.explanation, "
        "'; explained by ', x.explained_by, ' (', "
        f"{_num('100 * x.explained_share', 0)}, '% of its traffic for ', t.metric, ')') END "
        "AS explanation",
    )
    return f"""
SELECT {cols}
FROM {transitions} AS t
LEFT JOIN {explained} AS x
  ON x.dimension = t.dimension AND x.`key` = t.`key`
  AND x.window_time BETWEEN t.window_time AND t.window_time"""


def unexplained_sql(transitions: str) -> str:
    """ANOMALY_COLUMNS: the open and close events without attribution (explained_by NULL)."""
    cols = ", ".join(
        f"`{n}`" if n != "explained_by" else "CAST(NULL AS STRING) AS explained_by"
        for n, _ in ANOMALY_COLUMNS
    )
    return f"SELECT {cols} FROM {transitions}"


def counts_sql(source: str, w: Window) -> str:
    """Per window: incidents open among the keys seen in it (a CloudWatch gauge)."""
    return f"""
SELECT CAST(window_start AS TIMESTAMP_LTZ(3)) AS window_start,
  CAST(window_end AS TIMESTAMP_LTZ(3)) AS window_end,
  COUNT(*) FILTER (WHERE state = '{ALARM}') AS open_incidents,
  COUNT(*) FILTER (WHERE state <> '{WARMUP}') AS keys_evaluated,
  COUNT(*) FILTER (WHERE state = '{WARMUP}') AS keys_warming_up,
  MAX(score) AS max_score
FROM TABLE({w.tvf(source, "row_time")})
GROUP BY window_start, window_end"""


EVENT_METRICS = minutes.OUTLIER_INPUTS
OUTLIER_SD_FLOOR = 0.05  # in log space: a reference this steady still needs x > 1.35 x typical


def outlier_views(s: AnomalySettings) -> list[tuple[str, str]]:
    """Per-call outliers: successful calls whose tokens or latency are far above their app's
    recent calls, as (view name, SQL), the last in ANOMALY_COLUMNS (event 'outlier').

    The reference of a call is every successful call of its app in the
    ``anomalies.outlier_range_minutes`` one-minute windows up to the last one closed before it,
    in log space: tokens and latencies are multiplicative (log-normal-like), so the mean and
    sd of their logarithms describe the bulk, and z = (ln(x + 1) - mean) / sd >=
    ``anomalies.outlier_threshold`` is a call many times its app's typical size (a 60k-token
    prompt where the app's p99 is 2k). One event per call and metric that crosses it.

    Why not an OVER aggregation per call (RANGE of the last N minutes): Flink's bounded OVER
    operators scan every buffered timestamp of the key on each new one, so a call cost
    O(calls in range): at 6 calls/s per app and 10 minutes that was 1k events/s for the
    whole job (bench/flight.py). Here each call costs a lookup: sums of the logs and their
    squares per app and minute (a window aggregation), rolled over the range per minute row
    (an OVER on one row per app and minute), kept as a versioned view (latest row per app)
    and joined to each call as of its event time (an event-time temporal join, whose state
    is the latest reference per app and the calls not yet passed by the watermark)."""
    r, z, n = int(s.outlier_range_minutes), s.outlier_threshold, int(s.outlier_min_calls)
    sums = ",\n    ".join(f"{m}_ln_{x} AS {m}_{x}" for m in EVENT_METRICS for x in ("n", "s", "q"))
    rolled = ",\n    ".join(
        f"SUM({m}_{x}) OVER w AS {m}_{x}" for m in EVENT_METRICS for x in ("n", "s", "q")
    )
    stats = ",\n    ".join(
        f"r.{m}_n AS {m}_ref_n, r.{m}_s / r.{m}_n AS {m}_mu, "
        f"SQRT(GREATEST(r.{m}_q / r.{m}_n - (r.{m}_s / r.{m}_n) * (r.{m}_s / r.{m}_n), 0.0)) "
        f"AS {m}_sigma"
        for m in EVENT_METRICS
    )
    # one row per call and metric, from one join: a UNION ALL of a query per metric planned
    # the temporal join, and kept its state, once per metric
    per_metric = ", ".join(
        f"ROW(CAST('{m}' AS STRING), CAST(s.{m} AS DOUBLE), s.{m}_ref_n, s.{m}_mu, s.{m}_sigma)"
        for m in EVENT_METRICS
    )
    alerts = f"""
SELECT alert_time, 'outlier' AS event, 'EVENT' AS state, CAST(NULL AS STRING) AS previous_state,
  'app' AS dimension, app_id AS `key`, metric AS metrics, metric,
  observed, baseline, robust_sd, score AS deviation, score,
  CASE WHEN score >= {2 * z!r} THEN 'critical' ELSE 'warning' END AS severity,
  CONCAT('app ', app_id, ' request ', COALESCE(request_id, '?'), ': ', metric, ' ',
    {_num("observed")}, ' vs typical ', {_num("baseline")}, ' (+',
    {_num("score", 1)}, ' log-sd over {r} min)') AS explanation,
  CAST(NULL AS STRING) AS explained_by, CAST(1 AS BIGINT) AS requests, 'event' AS `window`,
  alert_time AS window_start, alert_time AS window_end
FROM (
  SELECT s.alert_time, s.app_id, s.request_id, u.metric, u.observed,
    EXP(u.mu) - 1 AS baseline, u.sigma AS robust_sd,
    (LN(u.observed + 1) - u.mu) / GREATEST(u.sigma, {OUTLIER_SD_FLOOR!r}) AS score
  FROM outlier_stats AS s
  CROSS JOIN UNNEST(ARRAY[{per_metric}]) AS u (metric, observed, ref_n, mu, sigma)
  WHERE u.ref_n >= {n}
)
WHERE score >= {z!r}"""
    return [
        (
            "outlier_calls",
            """
SELECT event_ts, app_id, request_id, input_tokens, output_tokens, latency_ms
FROM minute_events WHERE ok""",
        ),
        (
            # per app and minute, from the shared 1-minute rollup (jobs/minutes.py)
            "outlier_minutes",
            f"""
SELECT app_id, window_time,
    {sums}
FROM {minutes.rollup_name(ONE_MINUTE)} WHERE `level` = {minutes.APP}""",
        ),
        (
            "outlier_rolled",
            f"""
SELECT app_id, window_time AS ref_time,
    {rolled}
FROM outlier_minutes
WINDOW w AS (PARTITION BY app_id ORDER BY window_time
  RANGE BETWEEN INTERVAL '{r - 1}' MINUTE PRECEDING AND CURRENT ROW)""",
        ),
        (
            # a versioned view: the latest reference of each app, as of any event time
            "outlier_reference",
            """
SELECT * FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY app_id ORDER BY ref_time DESC) AS row_num
  FROM outlier_rolled)
WHERE row_num = 1""",
        ),
        (
            "outlier_stats",
            f"""
SELECT CAST(c.event_ts AS TIMESTAMP_LTZ(3)) AS alert_time, c.app_id, c.request_id,
    c.input_tokens, c.output_tokens, c.latency_ms,
    {stats}
FROM outlier_calls AS c
JOIN outlier_reference FOR SYSTEM_TIME AS OF c.event_ts AS r ON c.app_id = r.app_id
-- an app silent for the whole range has no reference left
WHERE c.event_ts < r.ref_time + INTERVAL '{r}' MINUTE""",
        ),
        ("anomaly_outliers", alerts),
    ]


def register_shared(
    t_env,
    settings: Settings,
    cost_expression: str,
    dimensions: tuple = DIMENSIONS,
    attribution: bool = True,
) -> None:
    """The views every detector reads: anomaly_windows (metrics per window and key of
    ``dimensions``), anomaly_links (the traffic pairs of keys share, for attribution) and the
    per-call outliers, none of which depend on the detector's settings."""
    s, w = settings.anomalies, window(settings)
    minutes.register(t_env, settings, cost_expression)
    if s.outliers:
        minutes.rollup(t_env, settings, ONE_MINUTE)
    views = (
        ("anomaly_windows", window_rows_sql(w, s, minutes.gamma(settings), dimensions)),
        *(
            (("anomaly_pairs", pairs_sql(w)), ("anomaly_links", links_sql("anomaly_pairs")))
            if attribution
            else ()
        ),
        # views are validated when created: without outliers the 1-minute rollup they read
        # is not registered
        *(outlier_views(s) if s.outliers else ()),
    )
    for name, sql in views:
        create_view(t_env, name, sql)


def register_detector(
    t_env,
    settings: Settings,
    prefix: str = "",
    metrics: Metrics = METRICS,
    attribution: bool = True,
) -> None:
    """One detector's stages over anomaly_windows and anomaly_links: ``prefix``anomaly_states
    (each key's evaluation per window), ..._incidents (open and close events) and ..._counts.
    Several detectors with different prefixes share one job's windows (the evaluation runs
    three side by side over one source). An evaluation on single-valued series (NAB) judges
    only the metric that carries them and skips attribution (``explained_by`` NULL): the same
    openings for a fraction of the work."""
    s, w = settings.anomalies, window(settings)

    def v(name: str) -> str:
        return prefix + name

    attributed = (
        ("anomaly_hot", f"SELECT * FROM {v('anomaly_states')} WHERE hot"),
        ("anomaly_alarmed", f"SELECT * FROM {v('anomaly_states')} WHERE state = '{ALARM}'"),
        (
            "anomaly_explanations",
            explanations_sql(s, v("anomaly_hot"), "anomaly_links", v("anomaly_alarmed")),
        ),
        ("anomaly_explained", best_explanation_sql(v("anomaly_explanations"), w)),
        ("anomaly_incidents", incidents_sql(v("anomaly_transitions"), v("anomaly_explained"))),
    )
    evaluations = v("anomaly_evaluations")
    views = (
        ("anomaly_quartiles", quartiles_sql("anomaly_windows", s, metrics)),
        *(
            (
                (
                    "anomaly_seasonal_quartiles",
                    seasonal_quartiles_sql(v("anomaly_quartiles"), s, metrics),
                ),
                (
                    "anomaly_seasonal",
                    seasonal_baseline_sql(v("anomaly_seasonal_quartiles"), metrics),
                ),
            )
            if s.seasonal_days
            else ()
        ),
        (
            "anomaly_baselines",
            baseline_sql(
                v("anomaly_seasonal" if s.seasonal_days else "anomaly_quartiles"), s, metrics
            ),
        ),
        ("anomaly_evaluations", evaluation_sql(v("anomaly_baselines"), s, metrics)),
        *(
            (("anomaly_history", history_sql(evaluations, s, metrics)),)
            if s.history_windows
            else ()
        ),
        (
            "anomaly_states",
            state_sql(v("anomaly_history") if s.history_windows else evaluations, s, metrics),
        ),
        ("anomaly_transitions", transitions_sql(v("anomaly_states"), w, s)),
        *(
            attributed
            if attribution
            else (("anomaly_incidents", unexplained_sql(v("anomaly_transitions"))),)
        ),
        # the TVF adds its own window columns: the state rows' rowtime, renamed
        (
            "anomaly_state_times",
            f"SELECT window_time AS row_time, state, score FROM {v('anomaly_states')}",
        ),
        ("anomaly_counts", counts_sql(v("anomaly_state_times"), w)),
    )
    for name, sql in views:
        create_view(t_env, v(name), sql)


def register_views(t_env, settings: Settings, cost_expression: str) -> None:
    """anomaly_windows (metrics per window and key), anomaly_states (each key's evaluation
    per window), anomaly_incidents and anomaly_counts."""
    register_shared(t_env, settings, cost_expression)
    register_detector(t_env, settings)


WINDOW_COLUMNS = (
    ("window_start", "TIMESTAMP_LTZ(3)"),
    ("window_end", "TIMESTAMP_LTZ(3)"),
    ("dimension", "STRING"),
    ("key", "STRING"),
    ("requests", "BIGINT"),
    *((m.name, "DOUBLE") for m in METRICS),
)


def configure(t_env, settings: Settings) -> None:
    # OVER and LAG state per key expires after this long without a row: bounded memory with
    # churning keys (users), at the price of a fresh warm-up for a key silent that long.
    # It is a job-wide option: in a combined job it also expires other analytics' state.
    t_env.get_config().set("table.exec.state.ttl", f"{int(settings.anomalies.state_ttl_hours)} h")


def assemble(t_env, settings: Settings, statements, sinks: Sinks, *, windows: bool = False) -> None:
    """Add the anomaly inserts over the registered `invocations` view to ``statements``;
    ``windows`` also writes the per-window metrics as JSON lines under the tables path
    (anomaly_windows: tests and scoring)."""
    from genai_apm import pricing as prices
    from genai_apm.connectors.files import partition_values

    table = prices.load(settings.cost.pricing_file)  # a bad file fails before Flink runs
    configure(t_env, settings)
    register_views(t_env, settings, prices.cost_sql(table))
    columns = ", ".join(f"`{n}`" for n, _ in ANOMALY_COLUMNS)
    sources = ["anomaly_incidents"] + (["anomaly_outliers"] if settings.anomalies.outliers else [])
    # one INSERT per table: two sinks of one exactly-once Kafka table would share its
    # transactional ids, which the connector refuses
    events = " UNION ALL ".join(f"SELECT {columns} FROM {source}" for source in sources)
    out = sinks.events("anomalies", "anomaly_events", ANOMALY_COLUMNS, key=["dimension", "key"])
    statements.add_insert_sql(f"INSERT INTO `{out}` {events}")
    statements.add_insert_sql(
        f"INSERT INTO `{sinks.parquet('anomalies', ANOMALY_COLUMNS)}` "
        f"SELECT *, {partition_values('alert_time')} FROM ({events})"
    )
    counts = sinks.events("anomaly_counts", "anomaly_counts", COUNT_COLUMNS)
    statements.add_insert_sql(f"INSERT INTO `{counts}` SELECT * FROM anomaly_counts")
    if windows:
        cols = ", ".join(f"`{n}`" for n, _ in WINDOW_COLUMNS)
        out = sinks.files("anomaly_windows", WINDOW_COLUMNS)
        statements.add_insert_sql(
            f"INSERT INTO `{out}` SELECT {cols} FROM ("
            "SELECT CAST(window_start AS TIMESTAMP_LTZ(3)) AS window_start, "
            "CAST(window_end AS TIMESTAMP_LTZ(3)) AS window_end, dimension, `key`, requests, "
            f"{', '.join(m.name for m in METRICS)} FROM anomaly_windows)"
        )


SPEC = Job(JOB, (assemble,))
run, backfill, main = SPEC.run, SPEC.backfill, SPEC.main


if __name__ == "__main__":
    sys.exit(main())
