"""AWS-side faults on the real stack, each compared with a clean run on the same data:
CloudWatch throttling the exporter's PutMetricData, and the S3 endpoint going away under a
streaming job that writes its Parquet tables there. moto stays up (its state is in memory);
a proxy in front of it injects the fault (tests/integration/proxies.py)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
import time
from collections import Counter
from pathlib import Path

import pytest

from genai_apm import aws
from genai_apm.export import cloudwatch
from genai_apm.flink.cluster import FlinkRest, LocalFlinkCluster
from genai_apm.jobs import latency
from genai_apm.kafka import io as kafka_io
from genai_apm.stack.process import free_port
from tests.integration.faults import (
    clean_rows,
    in_order_stream,
    job_topics,
    sentinel,
    submit,
    wait_for_rows,
    wait_until,
)
from tests.integration.proxies import FaultProxy, ThrottlingProxy

pytestmark = pytest.mark.integration

STATS = ("SampleCount", "Sum", "Minimum", "Maximum")
DAY_MS = 86_400_000


@pytest.fixture
def aws_settings(settings, unique, tmp_path):
    return settings.replace(
        kafka={"partitions": 1},
        flink={"watermark_emit": "on-event"},
        topics={"late": f"it.{unique}.late", "late_counts": f"it.{unique}.late-counts"},
        aws={"access_key_id": "testing", "secret_access_key": "testing"},
        output={"tables_path": str(tmp_path / "tables")},
        stack={"state_dir": str(tmp_path / "state")},
        # the generator's fixed 2026 epoch is older than the two weeks CloudWatch takes
        cloudwatch={"max_age_hours": 0},
    )


METRICS = (
    "Invocations",
    "InvocationErrors",
    "InputTokenCount",
    "OutputTokenCount",
    "InvocationLatency",
    "TimeToFirstToken",
)


def _stored(cw, namespace: str, keys: set[tuple], start, end) -> dict[tuple, float]:
    """(metric, dimensions, statistic, minute) -> value, for every metric the exporter can
    publish for the row keys ``keys`` (dimension tuples).

    Asked one by one with GetMetricStatistics: moto's ListMetrics lists every datum without
    dimensions as a metric of its own, deduplicating the rest in quadratic time, and its
    GetMetricData ignores the namespace of a query with dimensions. Its GetMetricStatistics
    also counts datums whose dimensions are a superset of those asked for; equal answers at
    every level (ModelId+AppId, ModelId, none) still mean equal datums at every level, each
    level being a difference of two answers."""
    stored = {}
    for dims, name in itertools.product(sorted(keys), METRICS):
        answer = cw.get_metric_statistics(
            Namespace=namespace,
            MetricName=name,
            Dimensions=[{"Name": k, "Value": v} for k, v in dims],
            StartTime=start,
            EndTime=end,
            Period=60,
            Statistics=list(STATS),
        )
        for point in answer["Datapoints"]:
            minute = point["Timestamp"].isoformat()
            for stat in STATS:
                stored[(name, dims, stat, minute)] = point[stat]
    return stored


def _row_dims(row: dict) -> tuple:
    """A row's CloudWatch dimensions: ModelId and AppId, '*' (all) left out."""
    return tuple(
        sorted(
            (name, row[column])
            for name, column in (("ModelId", "model_id"), ("AppId", "app_id"))
            if row[column] != "*"
        )
    )


def _minute(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(dt.UTC)


def _expected_invocations(rows: list[dict]) -> dict[tuple, float]:
    """What moto should answer for Invocations if every 1-minute row of the derived topic was
    stored once: per key and minute, SampleCount and Sum over the rows whose dimensions
    include the key's (moto's superset match, above)."""
    expected: dict[tuple, float] = {}
    one_minute = [r for r in rows if r["window"] == "1m"]
    for row in one_minute:
        dims = _row_dims(row)
        minute = _minute(row["window_start"]).isoformat()
        matching = [
            r
            for r in one_minute
            if r["window_start"] == row["window_start"] and set(dims) <= set(_row_dims(r))
        ]
        expected[("Invocations", dims, "SampleCount", minute)] = float(len(matching))
        expected[("Invocations", dims, "Sum", minute)] = float(sum(r["requests"] for r in matching))
    return expected


def test_cloudwatch_throttling_loses_and_doubles_no_datapoint(aws_settings, stack, unique):
    s = aws_settings
    # the derived topic both exports read: the latency job over 3 minutes of traffic
    kafka_io.ensure_topics(s.kafka, job_topics(s))
    # a day after the generator's epoch: moto's GetMetricData ignores the namespace of a
    # query with dimensions, so datums at test_sinks' minutes would leak into its answers
    events = [dict(e, event_time=e["event_time"] + DAY_MS) for e in in_order_stream(4_000, 31)]
    kafka_io.produce_json(s.kafka, s.topics.invocations, events)
    latency.run(s, bounded=True, wait=True)

    clean = s.replace(
        cloudwatch={"namespace": f"IT/{unique}/clean", "consumer_group": f"cw-{unique}-clean"}
    )
    clean_stats = cloudwatch.export(clean, once=True)
    assert clean_stats.retries == 0 and clean_stats.dead_letters == 0

    # the first three PutMetricData calls throttled (one request retried three times), then
    # every fourth: later requests are throttled too, after earlier ones were committed
    proxy = ThrottlingProxy(s.stack.moto_port, throttle=lambda n: n < 3 or n % 4 == 0).start()
    try:
        throttled = s.replace(
            aws={"endpoint_url": proxy.endpoint_url},
            cloudwatch={
                "namespace": f"IT/{unique}/throttled",
                "consumer_group": f"cw-{unique}-throttled",
            },
        )
        stats = cloudwatch.export(throttled, once=True)  # its own client, real backoff
    finally:
        proxy.stop()

    # the throttles happened, in the protocol botocore speaks, and the exporter counted them
    assert proxy.throttled >= 4, (proxy.puts, proxy.throttled)
    assert stats.retries == proxy.throttled
    assert stats.retry_causes == {"Throttling": proxy.throttled}
    assert f"{proxy.throttled} x Throttling" in stats.summary()
    # every datum went through once: no dead letters, no request forwarded twice
    assert stats.dead_letters == 0
    assert stats.records == clean_stats.records and stats.datums == clean_stats.datums
    assert stats.requests == proxy.forwarded_puts >= 2

    rows = kafka_io.consume_json(s.kafka, s.topics.latency, until_end=True)
    stamps = [_minute(r["window_start"]) for r in rows]
    start, end = min(stamps), max(stamps) + dt.timedelta(minutes=1)
    cw = aws.client(s.aws, "cloudwatch")
    keys = {_row_dims(r) for r in rows}
    want = _stored(cw, clean.cloudwatch.namespace, keys, start, end)
    got = _stored(cw, throttled.cloudwatch.namespace, keys, start, end)
    assert got == want  # same metrics, minutes, counts, sums, minima and maxima
    # and that is every 1-minute row of the topic, once: none lost, none doubled
    invocations = _expected_invocations(rows)
    assert {
        k: v for k, v in got.items() if k[0] == "Invocations" and k[2] in ("SampleCount", "Sum")
    } == invocations


# ---- S3 unavailable ---------------------------------------------------------------------------

OUTAGE_S = 15  # several checkpoint intervals (2 s)
TABLES = ("latency_1m", "latency_5m")


def _committed_keys(s3, bucket: str, prefix: str) -> list[str]:
    """Keys of committed part files: in-progress ones are multipart uploads, not objects."""
    return [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for o in page.get("Contents", [])
        if not o["Key"].rsplit("/", 1)[-1].startswith((".", "_"))
    ]


def _table_rows(root: Path, table: str, sentinel_ms: int) -> Counter:
    """Every column of every committed row of a Parquet table under ``root``, minus the
    windows holding the sentinel (a streaming run never closes those)."""
    import duckdb

    files = sorted(str(p) for p in (root / table).glob("dt=*/hour=*/[!._]*"))
    if not files:
        return Counter()
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    result = con.sql(f"SELECT * FROM read_parquet({files!r}, hive_partitioning = true)")
    names = result.columns
    rows: Counter = Counter()
    for values in result.fetchall():
        row = dict(zip(names, values, strict=True))
        start, end = (
            row[k].replace(tzinfo=dt.UTC).timestamp() * 1000 for k in ("window_start", "window_end")
        )
        if not start <= sentinel_ms < end:
            rows[json.dumps(row, sort_keys=True, default=str)] += 1
    return rows


def _download(s3, bucket: str, prefix: str, into: Path) -> Path:
    """The committed part files under ``prefix``, as local files in the same layout."""
    for key in _committed_keys(s3, bucket, prefix):
        target = into / key.removeprefix(prefix).lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, key, str(target))
    return into


def _s3_table_rows(s3, bucket: str, table: str, into: Path, sentinel_ms: int) -> Counter:
    """The committed rows of ``table`` on S3, once they stop changing (the last files are
    committed by the checkpoint after the one that closed their windows)."""
    previous = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        _download(s3, bucket, f"tables/{table}", into / table)
        rows = _table_rows(into, table, sentinel_ms)
        if rows and rows == previous:
            return rows
        previous = rows
        time.sleep(5)  # more than two checkpoint intervals
    return previous or Counter()


def test_s3_unavailable_mid_stream_parquet_and_topics_equal_a_clean_run(
    settings, stack_settings, unique, tmp_path, monkeypatch
):
    proxy = FaultProxy(stack_settings.stack.moto_port).start()
    bucket = f"it-s3-outage-{unique}"
    s = settings.replace(
        # one partition: the order the events were produced in is the order they are read
        kafka={"partitions": 1, "startup_mode": "earliest-offset"},
        topics={"late": f"it.{unique}.late", "late_counts": f"it.{unique}.late-counts"},
        flink={
            "watermark_emit": "on-event",
            "checkpoint_interval_s": 2,
            "rest_address": f"127.0.0.1:{free_port()}",
            "taskmanager_memory": "1280m",
        },
        # the cluster reaches S3 only through the proxy; checkpoints stay on local disk
        aws={
            "endpoint_url": proxy.endpoint_url,
            "access_key_id": "testing",
            "secret_access_key": "testing",
        },
        stack={"state_dir": str(tmp_path / "state")},
        output={"tables_path": f"s3://{bucket}/tables"},
    )
    # the test itself talks to moto directly
    s3 = aws.client(dataclasses.replace(s.aws, endpoint_url=settings.aws.endpoint_url), "s3")
    s3.create_bucket(Bucket=bucket)
    events = in_order_stream(4_000, seed=41)
    last = sentinel(events)
    kafka_io.ensure_topics(s.kafka, job_topics(s))
    cluster = LocalFlinkCluster(s)
    assert cluster.up()
    observed: dict = {}
    try:
        job_id = submit(s, monkeypatch)
        rest = FlinkRest(s.flink.rest_address)
        # 160 s of event time: the first minute closes before the outage (80 s produced),
        # the second in it (130 s), the third after it
        half, in_outage = len(events) // 2, len(events) * 13 // 16
        kafka_io.produce_json(s.kafka, s.topics.invocations, events[:half])
        wait_until(
            lambda: _committed_keys(s3, bucket, "tables/latency_1m/"),
            120,
            "the first Parquet file committed on S3",
        )
        before = rest.checkpoints(job_id)["counts"]

        proxy.cut()
        cut_at = time.monotonic()
        kafka_io.produce_json(s.kafka, s.topics.invocations, events[half:in_outage])
        while time.monotonic() - cut_at < OUTAGE_S:
            time.sleep(1)
        at_restore = rest.checkpoints(job_id)
        observed = {
            "at_restore": at_restore["counts"],
            "latest_failure": (at_restore["latest"] or {}).get("failed"),
            "refused": proxy.refused,
            "reset": proxy.reset,
        }
        proxy.restore()
        restored_at = time.monotonic()
        # the job tried S3 while it was away (else this test proves nothing)
        assert proxy.refused > 0
        kafka_io.produce_json(s.kafka, s.topics.invocations, [*events[in_outage:], last])
        wait_until(
            lambda: (
                rest.checkpoints(job_id)["counts"]["completed"]
                > at_restore["counts"]["completed"] + 1
            ),
            120,
            "checkpoints to complete again",
        )
        back_after_s = time.monotonic() - restored_at

        expected = clean_rows(s, tmp_path, last["event_time"])
        got = wait_for_rows(s, expected, timeout_s=180)
        assert got == expected  # the Kafka topic: same rows, none missing, none twice

        clean_tables = tmp_path / "clean-tables"
        for table in TABLES:
            want = _table_rows(clean_tables, table, last["event_time"])
            assert want, table

            on_s3 = _s3_table_rows(s3, bucket, table, tmp_path / "s3", last["event_time"])
            assert on_s3 == want, table  # every column, none missing, none twice
        after = rest.checkpoints(job_id)
        observed = {
            "before": before,
            "at_restore": at_restore["counts"],
            "after": after["counts"],
            "checkpointing_again_after_s": round(back_after_s, 1),
            "latest_failure": (at_restore["latest"] or {}).get("failed"),
            "proxy": {
                "connections": proxy.connections,
                "refused": proxy.refused,
                "reset": proxy.reset,
            },
        }
        rest.cancel(job_id)
    finally:
        print("S3 outage:", json.dumps(observed, default=str))
        cluster.down()
        proxy.stop()
