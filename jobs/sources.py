"""The invocation source of a job, streaming from Kafka or bounded from files, registered with
the `invocations` views (jobs/invocations.py) that every analytic reads."""

from __future__ import annotations

from genai_apm.config import Settings

RAW_TABLE = "invocations_raw"


def decoding():
    """Invocation records decoded once by the contract's format, rowtime from event_time."""
    from genai_apm.schemas.flink_format import Decoding
    from genai_apm.schemas.invocation import INVOCATION_V1

    return Decoding(INVOCATION_V1, "event_time")


def kafka_invocations(
    t_env, settings: Settings, *, bounded: bool, start_offsets: dict[int, int] | None = None
) -> None:
    from genai_apm.connectors import kafka
    from genai_apm.jobs import invocations

    t_env.execute_sql(
        kafka.raw_source_ddl(
            RAW_TABLE,
            settings.topics.invocations,
            settings.kafka,
            decoding=decoding(),
            flink=settings.flink,
            bounded=bounded,
            start_offsets=start_offsets,
        )
    )
    invocations.register(t_env, RAW_TABLE, privacy=settings.privacy)


def file_invocations(t_env, settings: Settings, input_path: str) -> None:
    from genai_apm.connectors import files
    from genai_apm.jobs import invocations

    t_env.execute_sql(
        files.raw_file_source_ddl(RAW_TABLE, input_path, decoding=decoding(), flink=settings.flink)
    )
    invocations.register(t_env, RAW_TABLE, privacy=settings.privacy)


def add_deadletters(
    t_env, settings: Settings, statements, *, tables_path: str | None = None
) -> None:
    """Insert the rejected records into the dead-letter topic, or, with ``tables_path`` (a
    backfill), into JSON lines under it. Once per job, whatever analytics it runs."""
    from genai_apm.connectors import files, kafka
    from genai_apm.flink_env import sink_delivery
    from genai_apm.jobs.deadletters import DEADLETTER_COLUMNS

    name = "deadletter_out" if tables_path is None else "deadletter_file"
    if name not in t_env.list_temporary_tables():
        if tables_path is None:
            ddl = kafka.json_sink_ddl(
                name,
                settings.topics.deadletter,
                settings.kafka,
                DEADLETTER_COLUMNS,
                delivery=sink_delivery(t_env, settings),
            )
        else:
            ddl = files.json_lines_table_ddl(name, f"{tables_path}/deadletters", DEADLETTER_COLUMNS)
        t_env.execute_sql(ddl)
    statements.add_insert_sql(f"INSERT INTO `{name}` SELECT * FROM invocations_rejected")
