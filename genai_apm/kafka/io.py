"""kafka-python helpers for producing, consuming and topic administration, with clear errors."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress

from genai_apm.errors import GenaiApmError
from genai_apm.settings.config import KafkaSettings

PASSWORD_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def client_args(kafka: KafkaSettings) -> dict:
    # fail in seconds, not kafka-python's 30 s default, when no broker answers
    args: dict = {
        "bootstrap_servers": kafka.bootstrap_servers.split(","),
        "bootstrap_timeout_ms": int(kafka.connect_timeout_s * 1000),
    }
    if kafka.security_protocol != "PLAINTEXT":
        args["security_protocol"] = kafka.security_protocol
    if kafka.sasl_mechanism:
        args["sasl_mechanism"] = kafka.sasl_mechanism
    # AWS_MSK_IAM signs with the AWS credential chain (botocore) and takes no password
    if kafka.sasl_mechanism in PASSWORD_MECHANISMS:
        args |= {
            "sasl_plain_username": kafka.sasl_username,
            "sasl_plain_password": kafka.sasl_password,
        }
    if "SSL" in kafka.security_protocol:
        args["ssl_check_hostname"] = kafka.ssl_check_hostname
        if kafka.ssl_ca_file:
            args["ssl_cafile"] = kafka.ssl_ca_file
        if kafka.ssl_cert_file:
            # the key sits in the certificate file (see KafkaSettings); ssl.load_cert_chain
            # reads it from there when no key file is given
            args["ssl_certfile"] = kafka.ssl_cert_file
            args["ssl_password"] = kafka.ssl_key_password
    return args


# Why a connection failed, as kafka-python logs it: it retries the bootstrap until its timeout
# and then raises a bare KafkaTimeoutError, so the cause is only in its log records.
CONNECTION_FAILURES = (
    (
        "SaslAuthenticationFailedError",
        "authentication failed: the broker refused kafka.sasl_username / kafka.sasl_password "
        "(with kafka.sasl_mechanism)",
    ),
    (
        "CERTIFICATE_VERIFY_FAILED",
        "TLS handshake failed: the broker's certificate is not trusted (set kafka.ssl_ca_file "
        "to its CA) or does not name the host (kafka.ssl_check_hostname)",
    ),
    ("Handshake failed", "TLS handshake failed (is kafka.security_protocol right?)"),
)


# A broker that fails a SASL login answers with the error and then closes the connection; over
# TLS kafka-python sometimes sees the close before the answer and logs only "socket
# disconnected". With SASL on, a connection that the broker accepted and then closed is most
# often a refused login; the other cause is a listener of another protocol.
CLOSED_BEFORE_LOGIN = (
    "the broker closed the connection before the client was logged in: wrong "
    "kafka.sasl_username / kafka.sasl_password or kafka.sasl_mechanism, or "
    "kafka.security_protocol does not match the listener"
)


class _FailureCause(logging.Handler):
    def __init__(self, sasl: bool) -> None:
        super().__init__(logging.WARNING)
        self.sasl = sasl
        self.named: str | None = None
        self.closed_by_broker = False

    @property
    def cause(self) -> str | None:
        if self.named is None and self.closed_by_broker:
            return CLOSED_BEFORE_LOGIN
        return self.named

    def emit(self, record: logging.LogRecord) -> None:
        if self.named is not None:
            return
        text = record.getMessage()
        self.named = next((why for mark, why in CONNECTION_FAILURES if mark in text), None)
        if "KafkaConnectionError" in text:  # the latest failure decides (refused: broker down)
            self.closed_by_broker = self.sasl and "socket disconnected" in text


@contextmanager
def kafka_errors(kafka: KafkaSettings):
    from kafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError

    cause = _FailureCause(sasl=kafka.security_protocol.startswith("SASL"))
    client_log = logging.getLogger("kafka")
    client_log.addHandler(cause)
    try:
        yield
    except (KafkaConnectionError, KafkaTimeoutError):
        if cause.cause:
            raise GenaiApmError(f"Kafka at {kafka.bootstrap_servers}: {cause.cause}") from None
        raise GenaiApmError(
            f"cannot reach Kafka at {kafka.bootstrap_servers} (local stack: `genai-apm stack up`)"
        ) from None
    except KafkaError as e:
        raise GenaiApmError(f"Kafka at {kafka.bootstrap_servers}: {e}") from None
    finally:
        client_log.removeHandler(cause)


def ensure_topics(
    kafka: KafkaSettings, topics: Iterable[str], partitions: int | None = None
) -> None:
    """Create the topics that do not exist yet; existing ones are left as they are."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    with kafka_errors(kafka):
        admin = KafkaAdminClient(**client_args(kafka), request_timeout_ms=10_000)
        try:
            existing = set(admin.list_topics())
            wanted = [t for t in dict.fromkeys(topics) if t not in existing]
            if wanted:
                # another client may create one between our listing and our request
                with suppress(TopicAlreadyExistsError):
                    admin.create_topics(
                        [NewTopic(t, partitions or kafka.partitions, 1) for t in wanted]
                    )
        finally:
            admin.close()


def produce_json(
    kafka: KafkaSettings, topic: str, events: Iterable[dict], key_field: str | None = None
) -> int:
    """Send events as JSON; returns how many were acknowledged by the broker."""
    from kafka import KafkaProducer

    with kafka_errors(kafka):
        producer = KafkaProducer(
            **client_args(kafka),
            acks="all",
            linger_ms=20,
            compression_type="lz4" if _has_lz4() else None,
        )
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

    with kafka_errors(kafka):
        producer = KafkaProducer(**client_args(kafka), acks="all")
        sent = 0
        try:
            for payload in payloads:
                producer.send(topic, payload)
                sent += 1
            producer.flush(timeout=60)
        finally:
            producer.close(timeout=10)
        return sent


def consume(
    kafka: KafkaSettings,
    topic: str,
    *,
    start: dict[int, int] | None = None,
    from_beginning: bool = True,
    idle_timeout_s: float = 3.0,
    until_end: bool = False,
) -> Iterator[bytes]:
    """Committed values of ``topic`` until none arrived for ``idle_timeout_s``.

    Reads from ``start`` (partition -> offset, as from ``end_offsets``) when given, else from
    the beginning or the end. With ``until_end`` it also stops as soon as it has read up to
    the end offsets seen when it began: what a finished job wrote, without waiting.
    No consumer group: reading never moves anyone's offsets.
    """
    from kafka import KafkaConsumer, TopicPartition

    with kafka_errors(kafka):
        consumer = KafkaConsumer(
            **client_args(kafka),
            enable_auto_commit=False,
            isolation_level="read_committed",
        )
        try:
            partitions = consumer.partitions_for_topic(topic)
            if partitions is None:
                raise GenaiApmError(f"topic {topic!r} does not exist on {kafka.bootstrap_servers}")
            tps = [TopicPartition(topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            if start is not None:
                for tp in tps:
                    consumer.seek(tp, start.get(tp.partition, 0))
            elif from_beginning:
                consumer.seek_to_beginning(*tps)
            else:
                consumer.seek_to_end(*tps)
            stop_at = consumer.end_offsets(tps) if until_end else None

            def reached_end() -> bool:
                return stop_at is not None and all(
                    consumer.position(tp) >= off for tp, off in stop_at.items()
                )

            if reached_end():
                return
            # polled, not iterated: a read_committed consumer passes the transaction markers
            # after a topic's last records only in a poll that returns no record, and the
            # iterator would wait out idle_timeout_s there (3 s a topic in `make run`)
            idle_since = time.monotonic()
            while True:
                polled = consumer.poll(timeout_ms=100)
                for records in polled.values():
                    for message in records:
                        yield message.value
                if reached_end():
                    return
                if polled:
                    idle_since = time.monotonic()
                elif time.monotonic() - idle_since >= idle_timeout_s:
                    return
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


def end_offsets(kafka: KafkaSettings, topic: str) -> dict[int, int]:
    """Partition -> next offset: the position from which only newer records are read."""
    from kafka import KafkaConsumer, TopicPartition

    with kafka_errors(kafka):
        consumer = KafkaConsumer(**client_args(kafka))
        try:
            partitions = consumer.partitions_for_topic(topic) or set()
            tps = [TopicPartition(topic, p) for p in partitions]
            return {tp.partition: off for tp, off in consumer.end_offsets(tps).items()}
        finally:
            consumer.close()


def require_topics(kafka: KafkaSettings, topics: Iterable[str]) -> None:
    """One clear line naming the first topic that does not exist."""
    from kafka import KafkaAdminClient

    with kafka_errors(kafka):
        admin = KafkaAdminClient(**client_args(kafka))
        try:
            existing = set(admin.list_topics())
        finally:
            admin.close()
    for topic in topics:
        if topic not in existing:
            raise GenaiApmError(
                f"input topic {topic!r} does not exist on {kafka.bootstrap_servers} "
                "(produce to it first, e.g. `genai-apm generate`, or create it)"
            )
