"""Latency percentiles of successful calls, per model, per tumbling event-time window.

Percentiles are exact with linear interpolation between closest ranks (Flink's PERCENTILE,
DuckDB's quantile_cont, numpy's default), over successful calls only: a throttled call
answering in 20 ms would otherwise pull p50 down exactly when things are going wrong.
"""

from __future__ import annotations

import sys

from genai_apm.config import Settings

JOB = "latency"


def percentile_name(p: float) -> str:
    """0.5 -> p50, 0.999 -> p99_9: valid column names for every sink and Athena."""
    text = f"{p * 100:g}"
    return "p" + text.replace(".", "_")


def output_columns(settings: Settings) -> list[tuple[str, str]]:
    cols = [
        ("window_start", "TIMESTAMP_LTZ(3)"),
        ("window_end", "TIMESTAMP_LTZ(3)"),
        ("model_id", "STRING"),
        ("requests", "BIGINT"),
        ("errors", "BIGINT"),
    ]
    cols += [(f"latency_ms_{percentile_name(p)}", "DOUBLE") for p in settings.latency.percentiles]
    cols += [("latency_ms_max", "DOUBLE")]
    return cols


def build(t_env, settings: Settings, *, sink: str, deadletter: str):
    """Add the latency and dead-letter inserts over the registered `invocations` views."""
    ps = settings.latency.percentiles
    array = "ARRAY[" + ", ".join(repr(float(p)) for p in ps) + "]"
    picks = ",\n  ".join(
        f"lat[{i + 1}] AS latency_ms_{percentile_name(p)}" for i, p in enumerate(ps)
    )
    window = f"INTERVAL '{int(settings.latency.window_minutes)}' MINUTE"
    statements = t_env.create_statement_set()
    statements.add_insert_sql(f"""
INSERT INTO `{sink}`
SELECT
  CAST(window_start AS TIMESTAMP_LTZ(3)), CAST(window_end AS TIMESTAMP_LTZ(3)),
  model_id, requests, errors,
  {picks},
  latency_ms_max
FROM (
  SELECT window_start, window_end, model_id,
    COUNT(*) AS requests,
    COUNT(*) FILTER (WHERE status = 'error') AS errors,
    PERCENTILE(latency_ms, {array}) FILTER (WHERE status = 'success') AS lat,
    MAX(latency_ms) FILTER (WHERE status = 'success') AS latency_ms_max
  FROM TABLE(TUMBLE(TABLE invocations, DESCRIPTOR(event_ts), {window}))
  GROUP BY window_start, window_end, model_id
)""")
    statements.add_insert_sql(f"INSERT INTO `{deadletter}` SELECT * FROM invocations_rejected")
    return statements


def run(
    settings: Settings,
    *,
    bounded: bool = False,
    wait: bool | None = None,
    start_offsets: dict[int, int] | None = None,
) -> str:
    """Create the Kafka tables from settings, build, and execute; returns the Flink job id."""
    from genai_apm.connectors import kafka
    from genai_apm.flink_env import table_env
    from genai_apm.jobs import invocations
    from genai_apm.jobs.deadletters import DEADLETTER_COLUMNS
    from genai_apm.jobs.runner import execute
    from genai_apm.schemas.flink_sql import typed
    from genai_apm.schemas.invocation import INVOCATION_V1

    t_env = table_env(settings, JOB)
    event_time = typed(INVOCATION_V1.field("event_time"), kafka.RAW_DOC)
    t_env.execute_sql(
        kafka.raw_source_ddl(
            "invocations_raw",
            settings.topics.invocations,
            settings.kafka,
            event_time_sql=event_time,
            watermark_delay_s=settings.flink.watermark_delay_s,
            bounded=bounded,
            start_offsets=start_offsets,
        )
    )
    t_env.execute_sql(
        kafka.json_sink_ddl(
            "latency_out",
            settings.topics.latency,
            settings.kafka,
            output_columns(settings),
            key_fields=["model_id"],
        )
    )
    t_env.execute_sql(
        kafka.json_sink_ddl(
            "deadletter_out",
            settings.topics.deadletter,
            settings.kafka,
            DEADLETTER_COLUMNS,
        )
    )
    invocations.register(t_env, "invocations_raw")
    statements = build(t_env, settings, sink="latency_out", deadletter="deadletter_out")
    return execute(t_env, statements, JOB, wait=wait)


def main(argv: list[str] | None = None) -> int:
    from genai_apm.jobs.runner import job_main

    return job_main(JOB, run, argv)


if __name__ == "__main__":
    sys.exit(main())
