"""Undeliverable datums and unreadable metric rows -> the dead-letter topic, with a reason."""

from __future__ import annotations

import base64
import datetime as dt
import json

from genai_apm.export.cloudwatch.pending import Source
from genai_apm.export.cloudwatch.stats import Stats
from genai_apm.settings.config import Settings


class DeadLetters:
    """Undeliverable datums and unreadable records -> topics.deadletter, in the shape every
    job uses (jobs/deadletters.py), flushed before any offset is committed."""

    def __init__(self, settings: Settings, stats: Stats):
        from kafka import KafkaProducer

        from genai_apm.kafka.io import client_args

        self.topic, self.stats = settings.topics.deadletter, stats
        self.producer = KafkaProducer(**client_args(settings.kafka), acks="all")

    def send(self, source: Source, reason: str, datum: dict | None = None) -> None:
        record = {
            "payload": source.payload.decode("utf-8", errors="replace"),
            "payload_base64": base64.b64encode(source.payload).decode(),
            "event": json.dumps(_printable(datum), default=str) if datum is not None else None,
            "source": source.name,
            "format": "cloudwatch",
            "contract": None,
            "reason": reason,
            "rejected_at": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
        }
        self.producer.send(self.topic, json.dumps(record).encode())
        self.stats.dead_letters += 1
        self.stats.reasons[reason.split(":")[0]] += 1

    def flush(self) -> None:
        self.producer.flush(timeout=60)

    def close(self) -> None:
        self.producer.close(timeout=10)


def _printable(datum: dict) -> dict:
    return {k: v.isoformat() if isinstance(v, dt.datetime) else v for k, v in datum.items()}
