"""Kafka source and sink tables for Flink SQL, with every option taken from settings."""

from __future__ import annotations

from collections.abc import Sequence

from genai_apm.config import FlinkSettings, KafkaSettings
from genai_apm.connectors.ddl import (
    RAW_DOC,
    create_table,
    raw_record_columns,
    typed_columns,
    watermark_options,
)
from genai_apm.schemas.flink_sql import quote_ident

__all__ = ["RAW_DOC", "client_properties", "json_sink_ddl", "raw_source_ddl"]

# Where a record came from, so a dead letter can say topic/partition@offset.
SOURCE_METADATA = (
    ("src_name", "STRING", "topic"),
    ("src_partition", "INT", "partition"),
    ("src_offset", "BIGINT", "offset"),
    ("src_timestamp", "TIMESTAMP_LTZ(3)", "timestamp"),
)


MSK_IAM = "AWS_MSK_IAM"
MSK_IAM_PACKAGE = "software.amazon.msk.auth.iam"


def client_properties(kafka: KafkaSettings) -> dict[str, str]:
    """Connection options shared by sources and sinks, as Flink `properties.*` keys."""
    props = {"properties.bootstrap.servers": kafka.bootstrap_servers}
    if kafka.security_protocol != "PLAINTEXT":
        props["properties.security.protocol"] = kafka.security_protocol
    if kafka.sasl_mechanism == MSK_IAM:
        # Amazon MSK IAM access control: the role's credentials sign the login, so there is
        # no password; the aws-msk-iam-auth classes ship in the Managed Flink package's jar
        props["properties.sasl.mechanism"] = MSK_IAM
        props["properties.sasl.jaas.config"] = f"{MSK_IAM_PACKAGE}.IAMLoginModule required;"
        props["properties.sasl.client.callback.handler.class"] = (
            f"{MSK_IAM_PACKAGE}.IAMClientCallbackHandler"
        )
    elif kafka.sasl_mechanism:
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
    flink: FlinkSettings,
    bounded: bool,
    start_offsets: dict[int, int] | None = None,
) -> str:
    """A source whose payload is raw bytes, with rowtime ``event_time_sql`` (over RAW_DOC)."""
    metadata = [
        f"{quote_ident(name)} {sql_type} METADATA FROM '{key}' VIRTUAL"
        for name, sql_type, key in SOURCE_METADATA
    ]
    startup = kafka.startup_mode
    options = {
        "connector": "kafka",
        "topic": topic,
        **client_properties(kafka),
        "properties.group.id": kafka.consumer_group,
        "scan.startup.mode": startup,
        "format": "raw",
        **watermark_options(flink),
    }
    if start_offsets is not None:
        options["scan.startup.mode"] = "specific-offsets"
        options["scan.startup.specific-offsets"] = ";".join(
            f"partition:{p},offset:{o}" for p, o in sorted(start_offsets.items())
        )
    elif startup == "group-offsets":
        options["properties.auto.offset.reset"] = "earliest"
    if bounded:
        # stop at the offsets that were latest when the job started: a finite replay
        options["scan.bounded.mode"] = "latest-offset"
    columns = raw_record_columns(metadata, event_time_sql=event_time_sql, flink=flink)
    return create_table(table, columns, options)


def json_sink_ddl(
    table: str,
    topic: str,
    kafka: KafkaSettings,
    columns: Sequence[tuple[str, str]],
    *,
    key_fields: Sequence[str] = (),
) -> str:
    """An append-only sink writing JSON values, keyed (and so partitioned) by ``key_fields``."""
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
    return create_table(table, typed_columns(columns), options)


def upsert_sink_ddl(
    table: str,
    topic: str,
    kafka: KafkaSettings,
    columns: Sequence[tuple[str, str]],
    *,
    primary_key: Sequence[str],
) -> str:
    """An updating sink: one record per key change, latest wins (use a compacted topic)."""
    options = {
        "connector": "upsert-kafka",
        "topic": topic,
        **client_properties(kafka),
        "key.format": "json",
        "value.format": "json",
        "value.json.timestamp-format.standard": "ISO-8601",
        "key.json.timestamp-format.standard": "ISO-8601",
        "value.fields-include": "ALL",
    }
    pk = "PRIMARY KEY (" + ", ".join(quote_ident(c) for c in primary_key) + ") NOT ENFORCED"
    return create_table(table, [*typed_columns(columns), pk], options)
