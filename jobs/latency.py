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
value/count distributions, see genai_apm/export/cloudwatch.py).

Late events (behind the watermark when they arrive) never reach a window; they are written
to the late-events topic and table with the window they missed, and counted per window.
"""

from __future__ import annotations

import bisect
import itertools
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from genai_apm.config import Settings
from genai_apm.flink_env import create_view
from genai_apm.jobs import minutes
from genai_apm.jobs.runner import entry_points
from genai_apm.jobs.windows import Window
from genai_apm.schemas.outputs import (  # noqa: F401  (histogram_gamma: tests, bench)
    ALL,
    LATE_COLUMNS,
    LATE_COUNT_COLUMNS,
    histogram_gamma,
    percentile_name,
)
from genai_apm.schemas.outputs import latency_columns as output_columns
from genai_apm.schemas.outputs import latency_windows as windows

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


@dataclass(frozen=True)
class Sinks:
    """Registered sink tables; None skips that output (e.g. no Kafka during a backfill)."""

    metrics_topic: str | None
    tables: dict[str, str]  # window name -> Parquet table
    late_topic: str | None
    late_table: str | None
    late_counts: str | None


def build(t_env, settings: Settings, sinks: Sinks, statements=None):
    """Add every insert over the registered `invocations` views to ``statements`` (a new
    statement set when None) and return it. Dead letters are the job's business
    (jobs/sources.add_deadletters), so analytics can share one job and one source."""
    from genai_apm.connectors.files import partition_values

    minutes.register(t_env, settings)
    statements = statements if statements is not None else t_env.create_statement_set()
    for window in windows(settings):
        minutes.rollup(t_env, settings, window)
        view = f"latency_{window.name}"
        create_view(t_env, view, aggregate_sql(settings, window))
        if sinks.metrics_topic:
            statements.add_insert_sql(f"INSERT INTO `{sinks.metrics_topic}` SELECT * FROM {view}")
        if window.name in sinks.tables:
            statements.add_insert_sql(
                f"INSERT INTO `{sinks.tables[window.name]}` "
                f"SELECT *, {partition_values('window_start')} FROM {view}"
            )
    late = """
SELECT tumble_start AS missed_window_start, event_ts AS event_time, `watermark`, request_id,
  model_id, app_id, status, latency_ms
FROM minute_calls WHERE is_late"""
    if sinks.late_topic:
        statements.add_insert_sql(f"INSERT INTO `{sinks.late_topic}` {late}")
    if sinks.late_table:
        statements.add_insert_sql(
            f"INSERT INTO `{sinks.late_table}` SELECT *, {partition_values('event_time')} "
            f"FROM ({late})"
        )
    if sinks.late_counts:
        # an updating count: the topic is compacted by (window, model), latest value wins
        statements.add_insert_sql(f"""
INSERT INTO `{sinks.late_counts}`
SELECT tumble_start, model_id, COUNT(*) FROM minute_calls WHERE is_late
GROUP BY tumble_start, model_id""")
    return statements


def register_sinks(t_env, settings: Settings, *, kafka_outputs: bool, tables_path: str) -> Sinks:
    from genai_apm.connectors import files, kafka
    from genai_apm.flink_env import sink_delivery

    topics, k = settings.topics, settings.kafka
    tables = {}
    for window in windows(settings):
        name = f"latency_{window.name}"
        t_env.execute_sql(
            files.parquet_table_ddl(
                f"{name}_table", f"{tables_path}/{name}", output_columns(settings)
            )
        )
        tables[window.name] = f"{name}_table"
    t_env.execute_sql(
        files.parquet_table_ddl("late_events_table", f"{tables_path}/late_events", LATE_COLUMNS)
    )
    if kafka_outputs:
        t_env.execute_sql(
            kafka.json_sink_ddl(
                "latency_out",
                topics.latency,
                k,
                output_columns(settings),
                key_fields=["model_id"],
                delivery=sink_delivery(t_env, settings),
            )
        )
        t_env.execute_sql(
            kafka.json_sink_ddl(
                "late_out",
                topics.late,
                k,
                LATE_COLUMNS,
                key_fields=["model_id"],
                delivery=sink_delivery(t_env, settings),
            )
        )
        t_env.execute_sql(
            kafka.upsert_sink_ddl(
                "late_counts_out",
                topics.late_counts,
                k,
                LATE_COUNT_COLUMNS,
                primary_key=["missed_window_start", "model_id"],
                delivery=sink_delivery(t_env, settings),
            )
        )
    return Sinks(
        metrics_topic="latency_out" if kafka_outputs else None,
        tables=tables,
        late_topic="late_out" if kafka_outputs else None,
        late_table="late_events_table",
        late_counts="late_counts_out" if kafka_outputs else None,
    )


def assemble(
    t_env, settings: Settings, statements, *, kafka_outputs: bool, tables_path: str
) -> None:
    sinks = register_sinks(t_env, settings, kafka_outputs=kafka_outputs, tables_path=tables_path)
    build(t_env, settings, sinks, statements)


run, backfill, main = entry_points(JOB, assemble)


if __name__ == "__main__":
    sys.exit(main())
