"""Kafka source and sink tables for Flink SQL, with every option taken from settings."""

from __future__ import annotations

from collections.abc import Sequence

from genai_apm.config import KafkaSettings
from genai_apm.schemas.flink_sql import quote_ident

# Columns every raw source exposes besides the payload, so dead letters can say where they
# came from (topic/partition/offset) and records without a usable event time still have one.
SOURCE_METADATA = (
    ("kafka_topic", "STRING", "topic"),
    ("kafka_partition", "INT", "partition"),
    ("kafka_offset", "BIGINT", "offset"),
    ("kafka_timestamp", "TIMESTAMP_LTZ(3)", "timestamp"),
)


# The payload as text, for JSON functions; computed columns cannot reference each other,
# so expressions over the payload inside the DDL use this rather than the `doc` column.
RAW_DOC = "CAST(`raw` AS STRING)"


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _with(options: dict[str, str]) -> str:
    return ",\n  ".join(f"{_sql_string(k)} = {_sql_string(v)}" for k, v in options.items())


def client_properties(kafka: KafkaSettings) -> dict[str, str]:
    """Connection options shared by sources and sinks, as Flink `properties.*` keys."""
    props = {"properties.bootstrap.servers": kafka.bootstrap_servers}
    if kafka.security_protocol != "PLAINTEXT":
        props["properties.security.protocol"] = kafka.security_protocol
    if kafka.sasl_mechanism:
        props["properties.sasl.mechanism"] = kafka.sasl_mechanism
        module = (
            "org.apache.kafka.common.security.plain.PlainLoginModule"
            if kafka.sasl_mechanism == "PLAIN"
            else "org.apache.kafka.common.security.scram.ScramLoginModule"
        )
        # Flink masks *jaas.config* values when it prints configuration.
        props["properties.sasl.jaas.config"] = (
            f'{module} required username="{kafka.sasl_username}" password="{kafka.sasl_password}";'
        )
    return props


def raw_source_ddl(
    table: str,
    topic: str,
    kafka: KafkaSettings,
    *,
    event_time_sql: str,
    watermark_delay_s: int,
    bounded: bool,
    start_offsets: dict[int, int] | None = None,
) -> str:
    """A source whose payload is raw bytes, with event time computed from it.

    ``event_time_sql`` is an expression over ``RAW_DOC``; records without a
    usable event time fall back to the Kafka record timestamp, because a NULL rowtime fails
    the watermark operator (the record itself still goes to the dead-letter topic).
    """
    metadata = ",\n  ".join(
        f"{quote_ident(name)} {sql_type} METADATA FROM '{key}' VIRTUAL"
        for name, sql_type, key in SOURCE_METADATA
    )
    startup = kafka.startup_mode
    options = {
        "connector": "kafka",
        "topic": topic,
        **client_properties(kafka),
        "properties.group.id": kafka.consumer_group,
        "scan.startup.mode": startup,
        "format": "raw",
    }
    if start_offsets is not None:
        startup = "specific-offsets"
        options["scan.startup.mode"] = startup
        options["scan.startup.specific-offsets"] = ";".join(
            f"partition:{p},offset:{o}" for p, o in sorted(start_offsets.items())
        )
    if startup == "group-offsets":
        options["properties.auto.offset.reset"] = "earliest"
    if bounded:
        # stop at the offsets that were latest when the job started: a finite replay
        options["scan.bounded.mode"] = "latest-offset"
    return f"""CREATE TEMPORARY TABLE {quote_ident(table)} (
  `raw` BYTES,
  {metadata},
  `doc` AS {RAW_DOC},
  `event_ts` AS COALESCE({event_time_sql}, `kafka_timestamp`),
  WATERMARK FOR `event_ts` AS `event_ts` - INTERVAL '{int(watermark_delay_s)}' SECOND
) WITH (
  {_with(options)}
)"""


def json_sink_ddl(
    table: str,
    topic: str,
    kafka: KafkaSettings,
    columns: Sequence[tuple[str, str]],
    *,
    key_fields: Sequence[str] = (),
) -> str:
    """An append-only sink writing JSON values, keyed (and so partitioned) by ``key_fields``."""
    cols = ",\n  ".join(f"{quote_ident(n)} {t}" for n, t in columns)
    options = {
        "connector": "kafka",
        "topic": topic,
        **client_properties(kafka),
        "value.format": "json",
        "value.json.timestamp-format.standard": "ISO-8601",
        "value.json.encode.ignore-null-fields": "false",
    }
    if key_fields:
        options |= {
            "key.format": "json",
            "key.fields": ";".join(key_fields),
            "value.fields-include": "ALL",
        }
    return f"""CREATE TEMPORARY TABLE {quote_ident(table)} (
  {cols}
) WITH (
  {_with(options)}
)"""
