"""What the fault tests share: an in-order stream, its clean run, and reading a run's output.

A fault run is compared with a clean run of the same job on the same events: the bounded
latency job on a MiniCluster, which nothing interrupts. Events are in event-time order, so
no event is ever late whatever the watermark after a restart (watermarks are not part of a
checkpoint), and a sentinel event ten minutes after the last one closes every window of the
fault run without reaching any of them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
from collections import Counter

from genai_apm import traffic
from genai_apm.flink.cluster import submit_to_cluster
from genai_apm.jobs import latency
from genai_apm.kafka import io as kafka_io
from genai_apm.settings import config

SENTINEL_MODEL = "sentinel-model"


def in_order_stream(count: int, seed: int) -> list[dict]:
    events = list(traffic.invocations(traffic.TrafficSpec(rate_per_s=25, seed=seed), count))
    events.sort(key=lambda e: e["event_time"])
    return events


def sentinel(events: list[dict]) -> dict:
    last = max(e["event_time"] for e in events)
    return dict(
        events[-1], request_id="sentinel", model_id=SENTINEL_MODEL, event_time=last + 600_000
    )


def job_topics(settings: config.Settings) -> list[str]:
    t = settings.topics
    return [t.invocations, t.latency, t.late, t.late_counts, t.deadletter]


def with_outputs(settings: config.Settings, suffix: str) -> config.Settings:
    """The same input topic, output topics of the run's own."""
    t = settings.topics
    return settings.replace(
        topics={
            name: f"{getattr(t, name)}.{suffix}"
            for name in ("latency", "late", "late_counts", "deadletter")
        }
    )


def clean_rows(settings: config.Settings, tmp_path, sentinel_ms: int) -> Counter:
    """The latency rows of an uninterrupted bounded run over the input topic, minus the
    windows holding the sentinel (a streaming run never closes those)."""
    clean = with_outputs(settings, "clean").replace(
        output={"tables_path": str(tmp_path / "clean-tables")},
        stack={"state_dir": str(tmp_path / "clean-state")},
    )
    kafka_io.ensure_topics(clean.kafka, job_topics(clean))
    latency.run(clean, bounded=True, wait=True)
    rows = kafka_io.consume_json(clean.kafka, clean.topics.latency, until_end=True)
    return Counter(_row(r) for r in rows if not _holds(r, sentinel_ms))


def _holds(row: dict, ms: int) -> bool:
    start, end = (
        dt.datetime.fromisoformat(row[k]).timestamp() * 1000 for k in ("window_start", "window_end")
    )
    return start <= ms < end


def _row(r: dict) -> str:
    return json.dumps(r, sort_keys=True)


def committed_rows(settings: config.Settings) -> Counter:
    rows = kafka_io.consume_json(settings.kafka, settings.topics.latency, until_end=True)
    return Counter(_row(r) for r in rows)


def record_count(settings: config.Settings, isolation: str) -> int:
    """Data records in the latency topic as a consumer with ``isolation`` sees them:
    read_uncommitted also counts those of open and aborted transactions."""
    from kafka import KafkaConsumer, TopicPartition

    topic = settings.topics.latency
    consumer = KafkaConsumer(
        **kafka_io.client_args(settings.kafka),
        isolation_level=isolation,
        enable_auto_commit=False,
        consumer_timeout_ms=2_000,
    )
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        return sum(1 for _ in consumer)
    finally:
        consumer.close()


def in_flight(settings: config.Settings) -> bool:
    """Whether the latency topic holds records of a transaction not yet committed: the end a
    read_uncommitted consumer sees (high watermark) is past the last stable offset."""
    from kafka import KafkaConsumer, TopicPartition

    topic = settings.topics.latency
    ends = {}
    for isolation in ("read_committed", "read_uncommitted"):
        consumer = KafkaConsumer(**kafka_io.client_args(settings.kafka), isolation_level=isolation)
        try:
            tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
            ends[isolation] = sum(consumer.end_offsets(tps).values())
        finally:
            consumer.close()
    return ends["read_uncommitted"] > ends["read_committed"]


def parquet_rows(path: str) -> Counter:
    """(window_start, model_id, app_id, requests) of every committed row of a Parquet table."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    rows = con.sql(
        "SELECT strftime(window_start, '%Y-%m-%dT%H:%M:%SZ'), model_id, app_id, requests "
        f"FROM read_parquet('{path}/*/*/[!._]*', hive_partitioning = true)"
    ).fetchall()
    return Counter(rows)


def row_keys(rows: Counter, window: str) -> Counter:
    keys: Counter = Counter()
    for text, n in rows.items():
        r = json.loads(text)
        if r["window"] == window:
            keys[(r["window_start"], r["model_id"], r["app_id"], r["requests"])] += n
    return keys


def wait_for_rows(
    settings: config.Settings, expected: Counter, timeout_s: float, each_poll=None
) -> Counter:
    """Committed output until it holds every expected row (or the time is up); ``each_poll``
    is called before each look (a test that checkpoints by hand commits there)."""
    deadline = time.monotonic() + timeout_s
    got: Counter = Counter()
    while time.monotonic() < deadline:
        if each_poll is not None:
            each_poll()
        got = committed_rows(settings)
        if sum(got.values()) >= sum(expected.values()) and not (expected - got):
            return got
        time.sleep(2)
    return got


def settings_env(settings: config.Settings, sections: tuple[str, ...]) -> dict[str, str]:
    """GENAI_APM_* variables carrying ``sections`` to a job started by `flink run`."""
    env = {}
    for section in sections:
        for key, value in dataclasses.asdict(getattr(settings, section)).items():
            text = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
            env[f"GENAI_APM_{section.upper()}_{key.upper()}"] = text
    return env


# the settings a latency job submitted to a cluster needs
JOB_SECTIONS = ("kafka", "topics", "flink", "output", "stack", "latency")


def submit(settings: config.Settings, monkeypatch) -> str:
    """Submit the latency job to the cluster at flink.rest_address; return its id."""
    # the job's settings travel to the `flink run` driver as environment variables
    for name, value in settings_env(settings, JOB_SECTIONS).items():
        monkeypatch.setenv(name, value)
    return submit_to_cluster(settings.flink.rest_address, "genai_apm.jobs.latency", [])


def wait_until(predicate, timeout_s: float, what: str):
    """``predicate()``'s first truthy value, polled; an AssertionError naming ``what`` after
    ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")
