"""Latency analytics: percentiles of latency, TTFT, time per output token and token speed,
per model, per model x app and over all models, in tumbling and sliding event-time windows.

Every row derives from the shared per-minute aggregation (jobs/minutes.py), which reads each
call once and keeps mergeable log-bucketed histograms. Percentiles are read from the merged
histograms with linear interpolation between closest ranks (the rule of DuckDB's quantile_cont
and numpy's default), so each is within the histograms' relative error
(``latency.histogram_relative_error``, 1%) of the exact interpolated percentile; counts, sums,
means and maxima are exact. Percentiles are over successful calls only: a throttled call
answering in 20 ms would otherwise pull p50 down exactly when things go wrong. TTFT is over
successful streaming calls. Time per output token (TPOT) is (latency - TTFT) / (tokens - 1)
for streaming calls and latency / tokens otherwise; token speed is 1000 / TPOT tokens/s.

Each row also carries `latency_hist`, a mergeable log-bucketed histogram of successful
latencies (DDSketch-style, bucket i holds values in (gamma^(i-1), gamma^i]), so hourly, daily
or cross-dimension quantiles can be recomputed later by summing buckets (see
docs/latency-rollups.md), and `ttft_hist`, the same over TTFT (CloudWatch gets both as
value/count distributions, see genai_apm/export/cloudwatch/datums.py).

Late events (behind the watermark when they arrive) never reach a window; they are written
to the late-events topic and table with the window they missed, and counted per window.
"""

from __future__ import annotations

import bisect
import itertools
import math
import sys
from collections.abc import Mapping, Sequence

from genai_apm.flink.env import create_view
from genai_apm.jobs import minutes
from genai_apm.jobs.runner import Job
from genai_apm.jobs.sinks import Sinks
from genai_apm.jobs.windows import Window
from genai_apm.schemas.outputs import (  # noqa: F401  (histogram_gamma: tests, bench)
    ALL,
    LATE_COLUMNS,
    LATE_COUNT_COLUMNS,
    histogram_gamma,
    percentile_name,
)
from genai_apm.schemas.outputs import latency_columns as output_columns  # noqa: F401
from genai_apm.schemas.outputs import latency_windows as windows
from genai_apm.settings.config import Settings

JOB = "latency"
UNKNOWN_APP = "unknown"


def bucket_value(index: int, gamma: float) -> float:
    """The DDSketch estimate for bucket ``index``: within the relative error of any member."""
    return 2 * gamma**index / (gamma + 1)


def bucket_index(value: float, log_gamma: float) -> int:
    """The bucket of ``value`` (the twin of the SQL and of GENAI_HIST's Java): values below
    0.001 share the bucket of 0.001."""
    return math.ceil(math.log(max(value, 0.001)) / log_gamma)


def histogram_quantiles(
    hist: Mapping[int, int], ps: Sequence[float], gamma: float
) -> list[float | None]:
    """Quantiles of a histogram, the twin of GENAI_HIST_QUANTILES (docs/latency-rollups.md).

    Interpolated as numpy's default and DuckDB's quantile_cont: rank r = p (n - 1) (0-based),
    v(lo) + (r - lo) (v(hi) - v(lo)) with lo, hi = floor(r), ceil(r) and v(k) the estimate of
    the bucket holding the k-th smallest value. Each v(k) is within the relative error of
    max(k-th value, 0.001), so the result is within it of the exact quantile of the values
    raised to 0.001. None for every p of an empty histogram.
    """
    buckets = sorted((b, n) for b, n in hist.items() if n > 0)
    cumulative = list(itertools.accumulate(n for _, n in buckets))
    if not cumulative:
        return [None] * len(ps)

    def v(rank: int) -> float:
        return bucket_value(buckets[bisect.bisect_right(cumulative, rank)][0], gamma)

    out: list[float | None] = []
    for p in ps:
        if not 0 <= p <= 1:
            raise ValueError(f"histogram quantile: p must be in [0, 1], got {p}")
        rank = p * (cumulative[-1] - 1)
        lo, hi = math.floor(rank), math.ceil(rank)
        out.append(v(lo) + (rank - lo) * (v(hi) - v(lo)))
    return out


METRICS = (  # (column prefix, column suffix, its histogram column of minute_stats)
    ("latency", "_ms", "latency_h"),
    ("ttft", "_ms", "ttft_h"),
    ("tpot", "_ms", "tpot_h"),
    ("output_tokens_per_s", "", "tokens_per_s_h"),
)


def aggregate_sql(settings: Settings, window: Window) -> str:
    """The window's output rows, from the shared per-minute rollup (jobs/minutes.py):
    percentiles read from the merged histograms, within the histograms' relative error."""
    rollup = minutes.rollup_name(window)
    ps = settings.latency.percentiles
    quantiles, picks = [], []
    for prefix, suffix, histogram in METRICS:
        quantiles.append(f"{minutes.quantiles(settings, histogram, ps)} AS {prefix}_p")
        picks += [
            f"{prefix}_p[{i + 1}] AS {prefix}_{percentile_name(p)}{suffix}"
            for i, p in enumerate(ps)
        ]
    return f"""
SELECT
  CAST(window_start AS TIMESTAMP_LTZ(3)) AS window_start,
  CAST(window_end AS TIMESTAMP_LTZ(3)) AS window_end,
  '{window.name}' AS `window`, model_id, app_id, requests, errors,
  {", ".join(picks)},
  latency_max_ms, input_tokens_sum, output_tokens_sum,
  CAST(input_tokens_sum AS DOUBLE) / NULLIF(input_tokens_n, 0) AS input_tokens_mean,
  CAST(output_tokens_sum AS DOUBLE) / NULLIF(output_tokens_n, 0) AS output_tokens_mean,
  GENAI_HIST_MULTISET(latency_h) AS latency_hist,
  GENAI_HIST_MULTISET(ttft_h) AS ttft_hist
FROM (
  SELECT *, {", ".join(quantiles)}
  FROM {rollup}
  -- per model x app, per model and the fleet; the per-app rows are the errors analytic's
  WHERE `level` <> {minutes.APP}
)"""


def assemble(t_env, settings: Settings, statements, sinks: Sinks) -> None:
    """Add every insert over the registered `invocations` views to ``statements``. Dead
    letters are the job's business (jobs/runner.py), so analytics can share one job and one
    source."""
    minutes.register(t_env, settings)
    for window in windows(settings):
        minutes.rollup(t_env, settings, window)
        view = f"latency_{window.name}"
        create_view(t_env, view, aggregate_sql(settings, window))
        sinks.write(statements, sinks.output(view), view)
    late = """
SELECT tumble_start AS missed_window_start, event_ts AS event_time, `watermark`, request_id,
  model_id, app_id, status, latency_ms
FROM minute_calls WHERE is_late"""
    sinks.write(statements, sinks.output("late_events"), f"({late})")
    # an updating count: the topic is compacted by (window, model), latest value wins
    late_counts = sinks.topic(
        "late_counts", LATE_COUNT_COLUMNS, primary_key=["missed_window_start", "model_id"]
    )
    if late_counts:
        statements.add_insert_sql(f"""
INSERT INTO `{late_counts}`
SELECT tumble_start, model_id, COUNT(*) FROM minute_calls WHERE is_late
GROUP BY tumble_start, model_id""")


SPEC = Job(JOB, (assemble,))
run, backfill, main = SPEC.run, SPEC.backfill, SPEC.main


if __name__ == "__main__":
    sys.exit(main())
