"""Generator -> Kafka -> latency job with its Parquet tables on the moto S3 -> `genai-apm
query` (DuckDB) agrees with numpy -> CloudWatch exporter -> the datums in moto agree too,
across more than 1000 datums and injected throttling."""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter, defaultdict

import numpy as np
import pytest
from botocore.exceptions import ClientError

from genai_apm import aws, cli, traffic
from genai_apm.export import cloudwatch
from genai_apm.jobs import latency
from genai_apm.kafka import io as kafka_io
from genai_apm.serve import query

pytestmark = pytest.mark.integration

BUCKET = "genai-apm-it"
MINUTE_MS = 60_000


@pytest.fixture
def s3_settings(settings, unique):
    return settings.replace(
        kafka={"partitions": 1},
        flink={"watermark_emit": "on-event"},
        topics={"late": f"it.{unique}.late", "late_counts": f"it.{unique}.late-counts"},
        aws={"access_key_id": "testing", "secret_access_key": "testing"},
        output={"tables_path": f"s3://{BUCKET}/{unique}"},
        cloudwatch={
            "namespace": f"IT/{unique}",
            "consumer_group": f"cw-{unique}",
            # the fixed 2026 epoch is older than the two weeks CloudWatch takes; moto takes it
            "max_age_hours": 0,
        },
    )


class ThrottledFirst:
    """The moto client, answering Throttling to the first ``failures`` PutMetricData calls
    and recording the size of every request that gets through."""

    def __init__(self, client, failures: int):
        self.client, self.failures = client, failures
        self.meta = client.meta
        self.sizes: list[int] = []
        self.sent: list[dict] = []

    def put_metric_data(self, **kw):
        if self.failures:
            self.failures -= 1
            error = {"Code": "Throttling", "Message": "Rate exceeded"}
            raise ClientError({"Error": error, "ResponseMetadata": {"HTTPStatusCode": 400}}, "Put")
        answer = self.client.put_metric_data(**kw)
        self.sizes.append(len(kw["MetricData"]))
        self.sent += kw["MetricData"]
        return answer


def _events() -> list[dict]:
    # 3 minutes at 25 calls/s, in event-time order: nothing is late
    spec = traffic.TrafficSpec(rate_per_s=25, seed=21)
    return [
        e
        for e in traffic.invocations(spec, 4_600)
        if e["event_time"] < spec.start_ms + 3 * MINUTE_MS
    ]


def _groups(events: list[dict]) -> dict[tuple, list[dict]]:
    """(minute start ms, model_id, app_id) -> calls, for every rollup level."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for e in events:
        minute = e["event_time"] // MINUTE_MS * MINUTE_MS
        app = e.get("app_id") or latency.UNKNOWN_APP
        for key in ((e["model_id"], app), (e["model_id"], "*"), ("*", "*")):
            groups[(minute, *key)].append(e)
    return groups


def test_parquet_on_s3_query_and_cloudwatch(s3_settings, monkeypatch, capsys):
    s = s3_settings
    events = _events()
    s3 = aws.client(s.aws, "s3")
    s3.create_bucket(Bucket=BUCKET)
    topics = s.topics
    kafka_io.ensure_topics(
        s.kafka,
        [topics.invocations, topics.latency, topics.late, topics.late_counts, topics.deadletter],
    )
    kafka_io.produce_json(s.kafka, topics.invocations, events)

    latency.run(s, bounded=True, wait=True)

    # committed Parquet files (and only those) are in the bucket, Hive-partitioned
    keys = [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
        for o in page.get("Contents", [])
    ]
    prefix = s.output.tables_path.removeprefix(f"s3://{BUCKET}/")
    partition = f"{prefix}/latency_1m/dt=2026-01-01/hour=00/"
    names = [k.removeprefix(partition) for k in keys if k.startswith(partition)]
    parts = [n for n in names if not n.startswith((".", "_"))]
    assert parts, keys
    # auto-compaction: every committed file is the merge of one checkpoint's files, and no
    # uncompacted or in-progress file is left once the bounded run has ended
    assert all(n.startswith("compacted-part-") for n in parts), names
    assert not [k for k in keys if ".inprogress" in k or ".uncompacted-" in k], keys
    # every multipart upload of the S3 writer was completed by a checkpoint
    assert not s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads")

    # DuckDB over the same tables: counts exact, percentiles within the histograms' relative
    # error of numpy's
    groups = _groups(events)
    columns, rows = query.run(
        s,
        "SELECT epoch_ms(window_start) AS start_ms, model_id, app_id, requests, errors, "
        'latency_p99_ms, input_tokens_sum, dt, "hour" FROM latency_1m',
    )
    got = {(r[0], r[1], r[2]): dict(zip(columns, r, strict=True)) for r in rows}
    assert got.keys() == groups.keys()
    for key, calls in groups.items():
        ok = [c["latency_ms"] for c in calls if c["status"] == "success"]
        row = got[key]
        assert row["requests"] == len(calls), key
        assert row["errors"] == sum(c["status"] == "error" for c in calls), key
        assert row["input_tokens_sum"] == sum(c["input_tokens"] for c in calls), key
        exact = float(np.percentile(ok, 99))
        bound = s.latency.histogram_relative_error * (1 + 1e-9)
        assert abs(row["latency_p99_ms"] - exact) <= bound * exact, key
        assert (row["dt"], row["hour"]) == ("2026-01-01", "00")  # strings, as in Athena

    # the CLI prints the same numbers as a table
    monkeypatch.setenv("GENAI_APM_OUTPUT_TABLES_PATH", s.output.tables_path)
    monkeypatch.setenv("GENAI_APM_AWS_ENDPOINT_URL", s.aws.endpoint_url)
    monkeypatch.setenv("GENAI_APM_AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("GENAI_APM_AWS_SECRET_ACCESS_KEY", "testing")
    assert (
        cli.main(
            [
                "query",
                "SELECT model_id, SUM(requests) AS calls FROM latency_1m "
                "WHERE app_id = '*' AND model_id <> '*' GROUP BY model_id ORDER BY model_id",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    per_model: dict[str, int] = defaultdict(int)
    for e in events:
        per_model[e["model_id"]] += 1
    for model, calls in per_model.items():
        assert any(line.split() == [model, f"{calls:,}"] for line in printed.splitlines()), printed
    assert f"({len(per_model)} rows)" in printed

    # CloudWatch: a malformed row goes to the dead letters; the rest arrives, retried
    kafka_io.produce_raw(s.kafka, topics.latency, [b"{not json"])
    client = ThrottledFirst(aws.client(s.aws, "cloudwatch"), failures=2)
    sleeps: list[float] = []
    stats = cloudwatch.export(s, once=True, client=client, sleep=sleeps.append)

    # four counts per row, plus a latency and a TTFT distribution when there are values
    expected_datums = sum(
        4
        + any(c["status"] == "success" for c in calls)
        + any(
            c["status"] == "success" and c["streaming"] and c["ttft_ms"] is not None for c in calls
        )
        for calls in groups.values()
    )
    assert expected_datums > 1000, "the scenario must need more than one request"
    assert stats.datums == expected_datums
    assert stats.retries == 2 and len(sleeps) == 2
    assert max(client.sizes) <= cloudwatch.MAX_DATUMS and sum(client.sizes) == expected_datums
    assert len(client.sizes) >= 2
    assert stats.dead_letters == 1
    dead = kafka_io.consume_json(s.kafka, topics.deadletter, until_end=True)
    assert [d["format"] for d in dead] == ["cloudwatch"]
    assert dead[0]["reason"].startswith("unreadable metric row")
    assert dead[0]["source"].startswith(f"{topics.latency}/0@")

    cw = aws.client(s.aws, "cloudwatch")
    names = {m["MetricName"] for m in cw.list_metrics(Namespace=s.cloudwatch.namespace)["Metrics"]}
    assert names == {
        "Invocations",
        "InvocationErrors",
        "InputTokenCount",
        "OutputTokenCount",
        "InvocationLatency",
        "TimeToFirstToken",
    }
    # what CloudWatch accepted, at every rollup level: counts, and distributions whose
    # percentiles are those of the calls within the (possibly merged) histogram's error
    sent = {
        (
            d["MetricName"],
            tuple((x["Name"], x["Value"]) for x in d["Dimensions"]),
            int(d["Timestamp"].timestamp() * 1000),
        ): d
        for d in client.sent
    }
    assert len(sent) == expected_datums  # one datum per metric, key and minute
    gamma = latency.histogram_gamma(s.latency.histogram_relative_error)
    for (minute, model, app), calls in groups.items():
        dims = tuple(
            (name, value) for name, value in (("ModelId", model), ("AppId", app)) if value != "*"
        )
        assert sent[("Invocations", dims, minute)]["Value"] == len(calls)
        assert sent[("InvocationErrors", dims, minute)]["Value"] == sum(
            c["status"] == "error" for c in calls
        )
        ok = np.array([c["latency_ms"] for c in calls if c["status"] == "success"])
        dist = sent[("InvocationLatency", dims, minute)]
        assert sum(dist["Counts"]) == len(ok)
        assert len(dist["Values"]) <= cloudwatch.MAX_VALUES
        # the job's buckets, recomputed here, merged as the exporter does
        buckets = Counter(math.ceil(math.log(max(x, 0.001)) / math.log(gamma)) for x in ok)
        values, counts, factor = cloudwatch.distribution(
            {str(b): n for b, n in buckets.items()}, gamma
        )
        assert (dist["Values"], dist["Counts"]) == (values, counts), (dims, minute)
        bound = cloudwatch.merge_error(gamma, factor) + 1e-9
        cumulative = np.cumsum(dist["Counts"])
        for q in (0.5, 0.99):
            rank = math.floor(q * (len(ok) - 1))
            estimate = dist["Values"][int(np.searchsorted(cumulative, rank, side="right"))]
            exact = float(np.quantile(ok, q, method="lower"))
            assert abs(estimate - exact) <= bound * exact, (dims, minute, q)

    # and what moto stored (exact dimension match: get_metric_data; moto's
    # get_metric_statistics also matches supersets of the dimensions asked for)
    start = dt.datetime.fromtimestamp(min(k[0] for k in groups) / 1000, tz=dt.UTC)
    for model in sorted(per_model)[:3]:
        queries = [
            {
                "Id": f"q{i}",
                "MetricStat": {
                    "Metric": {
                        "Namespace": s.cloudwatch.namespace,
                        "MetricName": metric,
                        "Dimensions": [{"Name": "ModelId", "Value": model}],
                    },
                    "Period": 60,
                    "Stat": stat,
                },
            }
            for i, (metric, stat) in enumerate(
                (("Invocations", "Sum"), ("InvocationLatency", "SampleCount"))
            )
        ]
        answer = cw.get_metric_data(
            MetricDataQueries=queries,
            StartTime=start,
            EndTime=start + dt.timedelta(minutes=5),
        )
        stored = {
            r["Id"]: {
                int(t.timestamp() * 1000): v
                for t, v in zip(r["Timestamps"], r["Values"], strict=True)
            }
            for r in answer["MetricDataResults"]
        }
        for (minute, m, app), calls in groups.items():
            if m == model and app == "*":
                assert stored["q0"][minute] == len(calls), (model, minute)
                successes = sum(c["status"] == "success" for c in calls)
                assert stored["q1"][minute] == successes, (model, minute)

    # at-least-once: the offsets were committed, a second run has nothing to send
    again = cloudwatch.export(s, once=True, client=client, sleep=sleeps.append)
    assert (again.records, again.datums) == (0, 0)
    assert f"{expected_datums:,} datums" in stats.summary()
