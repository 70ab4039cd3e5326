"""kafka-python helpers for producing, consuming and topic administration, with clear errors."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from genai_apm.config import KafkaSettings
from genai_apm.errors import GenaiApmError


def _client_args(kafka: KafkaSettings) -> dict:
    args: dict = {"bootstrap_servers": kafka.bootstrap_servers.split(",")}
    if kafka.security_protocol != "PLAINTEXT":
        args["security_protocol"] = kafka.security_protocol
    if kafka.sasl_mechanism:
        args |= {
            "sasl_mechanism": kafka.sasl_mechanism,
            "sasl_plain_username": kafka.sasl_username,
            "sasl_plain_password": kafka.sasl_password,
        }
    return args


@contextmanager
def _kafka_errors(kafka: KafkaSettings):
    from kafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError

    try:
        yield
    except (KafkaConnectionError, KafkaTimeoutError):
        raise GenaiApmError(
            f"cannot reach Kafka at {kafka.bootstrap_servers} "
            "(local stack: `genai-apm stack up`)"
        ) from None
    except KafkaError as e:
        raise GenaiApmError(f"Kafka at {kafka.bootstrap_servers}: {e}") from None


def ensure_topics(kafka: KafkaSettings, topics: Iterable[str], partitions: int | None = None) -> None:
    """Create the topics that do not exist yet; existing ones are left as they are."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    with _kafka_errors(kafka):
        admin = KafkaAdminClient(**_client_args(kafka), request_timeout_ms=10_000)
        try:
            existing = set(admin.list_topics())
            wanted = [t for t in dict.fromkeys(topics) if t not in existing]
            if wanted:
                try:
                    admin.create_topics(
                        [NewTopic(t, partitions or kafka.partitions, 1) for t in wanted]
                    )
                except TopicAlreadyExistsError:
                    pass
        finally:
            admin.close()


def produce_json(kafka: KafkaSettings, topic: str, events: Iterable[dict],
                 key_field: str | None = None) -> int:
    """Send events as JSON; returns how many were acknowledged by the broker."""
    from kafka import KafkaProducer

    with _kafka_errors(kafka):
        producer = KafkaProducer(**_client_args(kafka), acks="all", linger_ms=20,
                                 compression_type="lz4" if _has_lz4() else None)
        sent = 0
        try:
            for event in events:
                key = str(event.get(key_field, "")).encode() if key_field else None
                producer.send(topic, json.dumps(event, separators=(",", ":")).encode(), key=key)
                sent += 1
            producer.flush(timeout=60)
        finally:
            producer.close(timeout=10)
        return sent


def produce_raw(kafka: KafkaSettings, topic: str, payloads: Iterable[bytes]) -> int:
    from kafka import KafkaProducer

    with _kafka_errors(kafka):
        producer = KafkaProducer(**_client_args(kafka), acks="all")
        sent = 0
        try:
            for payload in payloads:
                producer.send(topic, payload)
                sent += 1
            producer.flush(timeout=60)
        finally:
            producer.close(timeout=10)
        return sent


def consume(kafka: KafkaSettings, topic: str, *, idle_timeout_s: float = 3.0,
            from_beginning: bool = True) -> Iterator[bytes]:
    """Values of ``topic`` until no record arrived for ``idle_timeout_s``."""
    from kafka import KafkaConsumer

    with _kafka_errors(kafka):
        consumer = KafkaConsumer(
            topic, **_client_args(kafka),
            auto_offset_reset="earliest" if from_beginning else "latest",
            enable_auto_commit=False, consumer_timeout_ms=int(idle_timeout_s * 1000),
            isolation_level="read_committed",
        )
        try:
            for message in consumer:
                yield message.value
        finally:
            consumer.close()


def consume_json(kafka: KafkaSettings, topic: str, **kw) -> list[dict]:
    return [json.loads(v) for v in consume(kafka, topic, **kw)]


def _has_lz4() -> bool:
    try:
        import lz4  # noqa: F401
    except ImportError:
        return False
    return True
