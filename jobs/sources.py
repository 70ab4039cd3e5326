"""A job's source by its kind (genai_apm.jobs.SOURCE_KINDS), streaming from Kafka or bounded
from files, registered with the views its analytics read:

  invocations  `invocations` and `invocations_rejected` (jobs/invocations.py)
  spans        `spans` and `spans_rejected` (jobs/spans.py)
  records      `source_0`, `source_1`, ...: one raw table per ``ingest.sources`` entry, read
               by ingest, which checks and dead-letters them itself

Each returns the view of the records that break their contract (None for records), which the
runner sends to the dead-letter topic once per job.
"""

from __future__ import annotations

from genai_apm.settings.config import Settings

RAW_TABLE = "invocations_raw"
SPANS_RAW_TABLE = "spans_raw"


def decoding():
    """Invocation records decoded once by the contract's format, rowtime from event_time."""
    from genai_apm.schemas.flink_format import Decoding
    from genai_apm.schemas.invocation import INVOCATION_V1

    return Decoding(INVOCATION_V1, "event_time")


def span_decoding():
    """Span records decoded once by the contract's format, rowtime from start_time."""
    from genai_apm.schemas.flink_format import Decoding
    from genai_apm.schemas.span import SPAN_V1

    return Decoding(SPAN_V1, "start_time")


def record_tables(settings: Settings) -> list[tuple[str, str]]:
    """(raw table, format) per ``ingest.sources`` entry, as from_kafka registers them."""
    from genai_apm.jobs import parse_sources

    return [
        (f"source_{i}", fmt) for i, (_, fmt) in enumerate(parse_sources(settings.ingest.sources))
    ]


def _register(kind: str, t_env, settings: Settings, table: str) -> str:
    if kind == "spans":
        from genai_apm.jobs import spans

        spans.register(t_env, table)
        return "spans_rejected"
    from genai_apm.jobs import invocations

    invocations.register(t_env, table, privacy=settings.privacy)
    return "invocations_rejected"


def from_kafka(
    kind: str,
    t_env,
    settings: Settings,
    *,
    bounded: bool,
    start_offsets: dict[int, int] | None = None,
) -> str | None:
    from genai_apm.connectors import kafka
    from genai_apm.jobs import parse_sources

    if kind == "records":
        for i, (topic, _) in enumerate(parse_sources(settings.ingest.sources)):
            # dead-letter counts are windowed on the Kafka timestamp: it exists for every
            # record, valid or not, and is what an operator sees as "when it arrived"
            t_env.execute_sql(
                kafka.raw_source_ddl(
                    f"source_{i}",
                    topic,
                    settings.kafka,
                    event_time_sql="CAST(NULL AS TIMESTAMP_LTZ(3))",
                    flink=settings.flink,
                    bounded=bounded,
                )
            )
        return None
    spans = kind == "spans"
    table = SPANS_RAW_TABLE if spans else RAW_TABLE
    t_env.execute_sql(
        kafka.raw_source_ddl(
            table,
            settings.topics.spans if spans else settings.topics.invocations,
            settings.kafka,
            decoding=span_decoding() if spans else decoding(),
            flink=settings.flink,
            bounded=bounded,
            start_offsets=start_offsets,
        )
    )
    return _register(kind, t_env, settings, table)


def from_files(kind: str, t_env, settings: Settings, input_path: str) -> str:
    """Native JSON-lines files of the kind's events (a backfill)."""
    from genai_apm.connectors import files
    from genai_apm.errors import GenaiApmError

    if kind == "records":
        # ingest writes topics for the other jobs, not tables: there is nothing to backfill
        raise GenaiApmError("ingest reads Kafka only: backfill the jobs that read its topics")
    spans = kind == "spans"
    table = SPANS_RAW_TABLE if spans else RAW_TABLE
    t_env.execute_sql(
        files.raw_file_source_ddl(
            table,
            input_path,
            decoding=span_decoding() if spans else decoding(),
            flink=settings.flink,
        )
    )
    return _register(kind, t_env, settings, table)


def add_deadletters(statements, sinks, rejected: str) -> None:
    """The ``rejected`` view into the dead-letter topic, or JSON lines in a backfill."""
    from genai_apm.jobs.deadletters import DEADLETTER_COLUMNS

    sink = sinks.events("deadletter", "deadletters", DEADLETTER_COLUMNS)
    statements.add_insert_sql(f"INSERT INTO `{sink}` SELECT * FROM {rejected}")
