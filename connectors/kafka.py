"""Kafka source and sink tables for Flink SQL, with every option taken from settings."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from genai_apm.connectors.ddl import (
    RAW_DOC,
    create_table,
    raw_record_columns,
    source_format,
    typed_columns,
    watermark_options,
)
from genai_apm.errors import GenaiApmError
from genai_apm.schemas.flink_format import Decoding
from genai_apm.schemas.flink_sql import quote_ident
from genai_apm.settings.config import FlinkSettings, KafkaSettings

__all__ = [
    "RAW_DOC",
    "SinkDelivery",
    "client_properties",
    "json_sink_ddl",
    "raw_source_ddl",
    "sink_delivery",
    "ssl_properties",
]

# Where a record came from, so a dead letter can say topic/partition@offset.
SOURCE_METADATA = (
    ("src_name", "STRING", "topic"),
    ("src_partition", "INT", "partition"),
    ("src_offset", "BIGINT", "offset"),
    ("src_timestamp", "TIMESTAMP_LTZ(3)", "timestamp"),
)


# flink-sql-connector-kafka relocates the Kafka client: a login module named by its plain
# class name is "No LoginModule found" in a job (seen against the secured test broker)
SHADED_KAFKA = "org.apache.flink.kafka.shaded.org.apache.kafka"
PLAIN_KAFKA = "org.apache.kafka"


def _jaas_quoted(value: str) -> str:
    # JAAS options are read by a StreamTokenizer: inside quotes a backslash escapes
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


MSK_IAM = "AWS_MSK_IAM"
MSK_IAM_PACKAGE = "software.amazon.msk.auth.iam"


def client_properties(kafka: KafkaSettings) -> dict[str, str]:
    """Connection options shared by sources and sinks, as Flink `properties.*` keys."""
    props = {"properties.bootstrap.servers": kafka.bootstrap_servers}
    if kafka.security_protocol != "PLAINTEXT":
        props["properties.security.protocol"] = kafka.security_protocol
    if kafka.sasl_mechanism == MSK_IAM:
        if kafka.shaded_client:
            raise GenaiApmError(
                "kafka.sasl_mechanism AWS_MSK_IAM needs the plain Kafka client in Flink jobs "
                "(the Managed Flink package, kafka.shaded_client = false); aws-msk-iam-auth cannot "
                'plug into the client flink-sql-connector-kafka relocates (README, "Security")'
            )
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
            "common.security.plain.PlainLoginModule"
            if kafka.sasl_mechanism == "PLAIN"
            else "common.security.scram.ScramLoginModule"
        )
        package = SHADED_KAFKA if kafka.shaded_client else PLAIN_KAFKA
        # Flink masks *jaas.config* values when it prints configuration.
        props["properties.sasl.jaas.config"] = (
            f"{package}.{module} required username={_jaas_quoted(kafka.sasl_username)} "
            f"password={_jaas_quoted(kafka.sasl_password)};"
        )
    if "SSL" in kafka.security_protocol:
        props |= ssl_properties(kafka)
    return props


def ssl_properties(kafka: KafkaSettings) -> dict[str, str]:
    """TLS for the Java client from the same PEM files kafka-python reads (PEM stores: KIP-651)."""
    # an empty algorithm switches the check that the certificate names the host off
    props = {
        "properties.ssl.endpoint.identification.algorithm": "https"
        if kafka.ssl_check_hostname
        else ""
    }
    if kafka.ssl_ca_file:
        props |= {
            "properties.ssl.truststore.type": "PEM",
            "properties.ssl.truststore.location": kafka.ssl_ca_file,
        }
    if kafka.ssl_cert_file:
        # certificate chain and encrypted PKCS#8 key in one file; Flink masks *password* values
        props |= {
            "properties.ssl.keystore.type": "PEM",
            "properties.ssl.keystore.location": kafka.ssl_cert_file,
            "properties.ssl.key.password": kafka.ssl_key_password,
        }
    return props


def raw_source_ddl(
    table: str,
    topic: str,
    kafka: KafkaSettings,
    *,
    flink: FlinkSettings,
    bounded: bool,
    event_time_sql: str | None = None,
    decoding: Decoding | None = None,
    start_offsets: dict[int, int] | None = None,
) -> str:
    """A source of the topic's records, decoded by ``decoding`` (the contract's format) or
    kept as raw bytes with rowtime ``event_time_sql`` (over RAW_DOC): raw_record_columns."""
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
        **source_format(decoding),
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
    columns = raw_record_columns(
        metadata, event_time_sql=event_time_sql, decoding=decoding, flink=flink
    )
    return create_table(table, columns, options)


@dataclass(frozen=True)
class SinkDelivery:
    """How a job's Kafka sinks deliver: flink.delivery_guarantee, and the transaction names
    that keep exactly-once sinks of different jobs and topics from fencing each other."""

    guarantee: str
    job: str
    transactional_id_prefix: str
    transaction_timeout_s: int

    def options(self, table: str, topic: str) -> dict[str, str]:
        if self.guarantee != "exactly-once":
            return {"sink.delivery-guarantee": self.guarantee}
        # unique per deployment, job, sink and topic: the connector aborts the open
        # transactions under its prefix when it starts, so a shared prefix would abort
        # another job's uncommitted output
        name = ".".join((self.transactional_id_prefix, self.job, table, topic))
        return {
            "sink.delivery-guarantee": "exactly-once",
            "sink.transactional-id-prefix": name,
            # the connector's default (1 h) is above the broker's default ceiling
            # (transaction.max.timeout.ms, 15 min), which then refuses every transaction
            "properties.transaction.timeout.ms": str(self.transaction_timeout_s * 1000),
        }


def sink_delivery(flink: FlinkSettings, job: str) -> SinkDelivery:
    """``job`` names the Flink job (its pipeline name); spaces and odd characters dropped."""
    return SinkDelivery(
        guarantee=flink.delivery_guarantee,
        job=re.sub(r"[^A-Za-z0-9_-]+", "-", job).strip("-"),
        transactional_id_prefix=flink.transactional_id_prefix,
        transaction_timeout_s=flink.transaction_timeout_s,
    )


def json_sink_ddl(
    table: str,
    topic: str,
    kafka: KafkaSettings,
    columns: Sequence[tuple[str, str]],
    *,
    key_fields: Sequence[str] = (),
    delivery: SinkDelivery | None = None,
) -> str:
    """An append-only sink writing JSON values, keyed (and so partitioned) by ``key_fields``.

    Without ``delivery`` the connector's default applies (at-least-once)."""
    options = {
        "connector": "kafka",
        "topic": topic,
        **client_properties(kafka),
        **(delivery.options(table, topic) if delivery else {}),
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
    delivery: SinkDelivery | None = None,
) -> str:
    """An updating sink: one record per key change, latest wins (use a compacted topic)."""
    options = {
        "connector": "upsert-kafka",
        "topic": topic,
        **client_properties(kafka),
        **(delivery.options(table, topic) if delivery else {}),
        "key.format": "json",
        "value.format": "json",
        "value.json.timestamp-format.standard": "ISO-8601",
        "key.json.timestamp-format.standard": "ISO-8601",
        "value.fields-include": "ALL",
    }
    pk = "PRIMARY KEY (" + ", ".join(quote_ident(c) for c in primary_key) + ") NOT ENFORCED"
    return create_table(table, [*typed_columns(columns), pk], options)
