"""What the anomaly detector judges and the threshold math: the metrics of a window (METRICS),
the traffic weights attribution measures shares with (WEIGHTS), the keys (DIMENSIONS), the
robust sd, deviation and severity in Python (tests and scoring) and the SQL helpers every
stage shares."""

from __future__ import annotations

from dataclasses import dataclass

from genai_apm.jobs.windows import Window
from genai_apm.settings.config import Settings

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


def _over(rows: str) -> str:
    return f"(PARTITION BY dimension, `key` ORDER BY window_time{rows})"
