"""The exporter's loop: consume the metric topics, translate, send, dead-letter what cannot be
delivered, and only then commit the consumer group's offsets (at-least-once)."""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from collections.abc import Callable
from typing import IO

from genai_apm.errors import GenaiApmError
from genai_apm.export.cloudwatch.checks import MAX_DATUMS, problems
from genai_apm.export.cloudwatch.datums import Translator, topic_translators
from genai_apm.export.cloudwatch.deadletters import DeadLetters
from genai_apm.export.cloudwatch.pending import Pending, Source
from genai_apm.export.cloudwatch.senders import EmfSender, PutMetricDataSender
from genai_apm.export.cloudwatch.stats import Stats
from genai_apm.settings.config import Settings


def export(
    settings: Settings,
    *,
    once: bool = False,
    client=None,
    out: IO[str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    flush_interval_s: float = 5.0,
    idle_timeout_s: float = 30.0,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> Stats:
    """Consume the metric topics and publish them until interrupted (or, with ``once``, until
    the end offsets seen at the start are reached and everything read is delivered)."""
    from kafka import KafkaConsumer

    from genai_apm import aws
    from genai_apm.kafka.io import client_args, kafka_errors

    cw = settings.cloudwatch  # its values were checked when the settings loaded
    stats = Stats()
    if cw.output == "api":
        # our retry policy replaces botocore's, so attempts and backoff are ours to count
        client = client or aws.client(
            settings.aws, "cloudwatch", retries={"total_max_attempts": 1, "mode": "standard"}
        )
        sender: PutMetricDataSender | EmfSender = PutMetricDataSender(
            client, cw, stats, sleep=sleep
        )
    else:
        sender = EmfSender(cw, stats, out or sys.stdout)
    translators = topic_translators(settings)
    max_age = dt.timedelta(hours=cw.max_age_hours)
    with kafka_errors(settings.kafka):
        consumer = KafkaConsumer(
            **client_args(settings.kafka),
            group_id=cw.consumer_group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )
        dead = DeadLetters(settings, stats)
        try:
            consumer.subscribe(list(translators))
            pending: list[Pending] = []
            unread = False  # records read whose offsets are not committed yet
            stop_at: dict | None = None  # with once: the end offsets when assigned
            last_flush = idle_since = time.monotonic()
            while True:
                polled = consumer.poll(timeout_ms=500, max_records=2000)
                for tp, records in polled.items():
                    translate = translators[tp.topic]
                    for r in records:
                        stats.records += 1
                        source = Source(tp.topic, tp.partition, r.offset, r.value or b"")
                        pending += _datums(source, translate, settings, dead, now(), max_age)
                        unread = True
                if polled:
                    idle_since = time.monotonic()
                due = time.monotonic() - last_flush >= flush_interval_s
                if unread and (len(pending) >= MAX_DATUMS or due or not polled):
                    for item, reason in sender.send(pending):
                        dead.send(item.source, reason, item.datum)
                    dead.flush()
                    consumer.commit()  # only now: everything read so far is delivered
                    pending, unread, last_flush = [], False, time.monotonic()
                if once:
                    if stop_at is None and consumer.assignment():
                        stop_at = consumer.end_offsets(list(consumer.assignment()))
                    if not unread and stop_at is not None and _reached(consumer, stop_at):
                        break
                    if time.monotonic() - idle_since > idle_timeout_s:
                        raise GenaiApmError(
                            f"nothing to read from {', '.join(translators)} for "
                            f"{idle_timeout_s:.0f} s (do the topics exist?)"
                        )
        finally:
            dead.close()
            consumer.close(autocommit=False)
    return stats


def _datums(
    source: Source,
    translate: Translator,
    settings: Settings,
    dead: DeadLetters,
    now: dt.datetime,
    max_age: dt.timedelta,
) -> list[Pending]:
    try:
        row = json.loads(source.payload)
        if not isinstance(row, dict):
            raise ValueError("not a JSON object")
        datums = translate(row, settings)
    except (ValueError, KeyError, TypeError) as e:
        dead.send(source, f"unreadable metric row: {type(e).__name__}: {e}")
        return []
    kept = []
    for datum in datums:
        found = problems(datum, now, max_age)
        if found:
            dead.send(source, "invalid datum: " + "; ".join(found), datum)
        else:
            kept.append(Pending(datum, source))
    return kept


def _reached(consumer, stop_at: dict) -> bool:
    return all(consumer.position(tp) >= offset for tp, offset in stop_at.items())
