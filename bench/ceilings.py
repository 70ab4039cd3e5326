"""Ceilings outside Flink: Kafka's own consumer performance tool, and kafka-python."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOL_TIMEOUT_S = 300


class CeilingError(Exception):
    pass


def consumer_performance(bootstrap: str, topic: str, events: int) -> dict:
    """Kafka's own ConsumerPerformance tool; fetch.nMsg.sec leaves out the group join."""
    classpath = str(ROOT / ".cache" / "jars" / "kafka" / "*")
    argv = [
        "java",
        "-Xmx512m",
        "-cp",
        classpath,
        "org.apache.kafka.tools.ConsumerPerformance",
        "--bootstrap-server",
        bootstrap,
        "--topic",
        topic,
        "--messages",
        str(events),
        "--timeout",
        "30000",
    ]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise CeilingError(f"ConsumerPerformance: no result after {TOOL_TIMEOUT_S}s") from None
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    header = next((i for i, ln in enumerate(lines) if "nMsg.sec" in ln), None)
    if proc.returncode != 0 or header is None or header + 1 >= len(lines):
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise CeilingError(f"ConsumerPerformance: exit {proc.returncode}: {tail[:200]}")
    keys = [k.strip() for k in lines[header].split(",")]
    values = [v.strip() for v in lines[header + 1].split(",")]
    row = dict(zip(keys, values, strict=False))
    consumed = int(float(row["data.consumed.in.nMsg"]))
    if consumed < events:
        raise CeilingError(f"ConsumerPerformance read {consumed} of {events} records")
    return {
        "events": consumed,
        "events_per_s": float(row["fetch.nMsg.sec"]),
        "fetch_time_ms": float(row["fetch.time.ms"]),
        "rebalance_time_ms": float(row["rebalance.time.ms"]),
        "measured": "fetch.nMsg.sec: records / fetch time (group join excluded)",
    }


def kafka_python_read(kafka_settings, topic: str, events: int, *, check_crcs: bool = True) -> dict:
    """kafka-python reading the raw values (no JSON decoding), first record to last.

    kafka-python verifies each batch's CRC-32C in pure Python unless the optional `crc32c`
    package is installed (it is not a dependency here); ``check_crcs=False`` shows that cost."""
    from kafka import KafkaConsumer, TopicPartition

    from genai_apm.kafka.io import client_args, kafka_errors

    with kafka_errors(kafka_settings):
        consumer = KafkaConsumer(
            **client_args(kafka_settings), enable_auto_commit=False, check_crcs=check_crcs
        )
        try:
            partitions = consumer.partitions_for_topic(topic) or set()
            tps = [TopicPartition(topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            for tp in tps:
                consumer.position(tp)  # connect and look the offsets up before the clock runs
            count, size = 0, 0
            first = time.perf_counter()
            deadline = time.monotonic() + TOOL_TIMEOUT_S
            while count < events:
                if time.monotonic() > deadline:
                    raise CeilingError(f"kafka-python read {count} of {events} records in time")
                for records in consumer.poll(timeout_ms=1000).values():
                    count += len(records)
                    size += sum(len(r.value) for r in records)
            seconds = time.perf_counter() - first
        finally:
            consumer.close()
    return {
        "events": count,
        "events_per_s": count / seconds,
        "seconds": seconds,
        "mean_value_bytes": size / count,
        "check_crcs": check_crcs,
        "measured": "first poll (connected, offsets known) to the last record; values not decoded",
    }
