"""CloudWatch exporter without servers: histograms to Values/Counts, datums per rollup level,
API limits, batching by count and size, retries and dead letters, EMF."""

from __future__ import annotations

import datetime as dt
import io
import json
import math
import random

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from genai_apm.export import cloudwatch
from genai_apm.jobs.latency import histogram_gamma
from genai_apm.settings.config import Settings

GAMMA = histogram_gamma(0.01)
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
NOW = T0 + dt.timedelta(hours=1)


def row(model="m1", app="a1", window="1m", hist=None, ttft=None, **extra):
    return {
        "window_start": "2026-01-01T00:00:00Z",
        "window_end": "2026-01-01T00:01:00Z",
        "window": window,
        "model_id": model,
        "app_id": app,
        "requests": 12,
        "errors": 2,
        "input_tokens_sum": 1000,
        "output_tokens_sum": 500,
        "latency_hist": {"300": 6, "310": 4} if hist is None else hist,
        "ttft_hist": {"200": 5} if ttft is None else ttft,
        **extra,
    }


def test_small_histograms_keep_every_bucket():
    values, counts, factor = cloudwatch.distribution({"300": 6, "310": 4}, GAMMA)
    assert factor == 1
    assert counts == [6.0, 4.0]
    assert values[0] == pytest.approx(2 * GAMMA**300 / (GAMMA + 1))


def test_wide_histograms_merge_to_150_values_within_the_documented_error():
    rng = random.Random(5)
    hist = {str(i): rng.randint(1, 50) for i in range(-40, 400, 1)}  # 440 buckets
    values, counts, factor = cloudwatch.distribution(hist, GAMMA)
    assert len(values) <= cloudwatch.MAX_VALUES
    assert factor == 3
    assert sum(counts) == sum(hist.values())
    bound = cloudwatch.merge_error(GAMMA, factor)
    assert bound == pytest.approx(0.03, rel=0.01)
    by_value = dict(zip(range(len(values)), values, strict=True))
    merged = sorted({-(-int(i) // factor) for i in hist})
    for i in map(int, hist):
        representative = by_value[merged.index(-(-i // factor))]
        for member in (GAMMA ** (i - 1) * (1 + 1e-12), GAMMA**i):  # the bucket's extremes
            assert abs(representative - member) / member <= bound + 1e-12


def test_empty_and_nonpositive_buckets_give_no_values():
    assert cloudwatch.distribution({}, GAMMA) == ([], [], 1)
    assert cloudwatch.distribution({"5": 0}, GAMMA) == ([], [], 1)


@pytest.mark.parametrize(
    ("model", "app", "dimensions"),
    [
        ("m1", "a1", [{"Name": "ModelId", "Value": "m1"}, {"Name": "AppId", "Value": "a1"}]),
        ("m1", "*", [{"Name": "ModelId", "Value": "m1"}]),
        ("*", "*", []),
    ],
)
def test_latency_rows_become_datums_per_rollup_level(model, app, dimensions):
    datums = cloudwatch.latency_datums(row(model, app), Settings())
    by_name = {d["MetricName"]: d for d in datums}
    assert set(by_name) == {
        "Invocations",
        "InvocationErrors",
        "InputTokenCount",
        "OutputTokenCount",
        "InvocationLatency",
        "TimeToFirstToken",
    }
    # what the exporter declares (and the CloudFormation templates alarm on) is what it sends
    assert {n: d["Unit"] for n, d in by_name.items()} == cloudwatch.latency_metric_units()
    assert all(d["Dimensions"] == dimensions for d in datums)
    assert all(d["Timestamp"] == T0 and d["StorageResolution"] == 60 for d in datums)
    assert by_name["Invocations"]["Value"] == 12.0
    assert by_name["Invocations"]["Unit"] == "Count"
    assert by_name["InvocationLatency"]["Counts"] == [6.0, 4.0]
    assert by_name["InvocationLatency"]["Unit"] == "Milliseconds"


def test_sliding_windows_and_empty_histograms_are_not_published():
    assert cloudwatch.latency_datums(row(window="5m"), Settings()) == []
    names = {d["MetricName"] for d in cloudwatch.latency_datums(row(ttft={}), Settings())}
    assert "TimeToFirstToken" not in names


def test_high_resolution_option():
    settings = Settings().replace(cloudwatch={"high_resolution": True})
    assert {d["StorageResolution"] for d in cloudwatch.latency_datums(row(), settings)} == {1}


def test_anomaly_counts_become_fleet_gauges_cloudwatch_accepts():
    from genai_apm.jobs import anomalies

    counts = {
        "window_start": "2026-01-01T00:00:00Z",
        "window_end": "2026-01-01T00:01:00Z",
        "open_incidents": 3,
        "keys_evaluated": 40,
        "keys_warming_up": 2,
        "max_score": 11.5,
    }
    assert set(counts) == {n for n, _ in anomalies.COUNT_COLUMNS}  # the job's own row
    datums = cloudwatch.anomaly_count_datums(counts, Settings())
    by_name = {d["MetricName"]: d for d in datums}
    assert by_name[cloudwatch.OPEN_INCIDENTS]["Value"] == 3.0
    assert by_name[cloudwatch.ANOMALY_SCORE]["Value"] == 11.5
    assert all(d["Dimensions"] == [] and d["Timestamp"] == T0 for d in datums)
    assert all(cloudwatch.problems(d, NOW, dt.timedelta(days=14)) == [] for d in datums)
    # a window nobody scored yet (no key past warm-up) has no score to publish
    quiet = cloudwatch.anomaly_count_datums(counts | {"max_score": None}, Settings())
    assert [d["MetricName"] for d in quiet] == [cloudwatch.OPEN_INCIDENTS]
    # the exporter reads the counts topic beside the latency topic
    assert Settings().topics.anomaly_counts in cloudwatch.topic_translators(Settings())


def _job_row(columns, **values) -> dict:
    """A row of a job's output columns, each number column a distinct value."""
    out = {}
    for i, (name, sql_type) in enumerate(columns):
        if sql_type in ("BIGINT", "DOUBLE"):
            out[name] = i + 1 if sql_type == "BIGINT" else i + 0.25
    return out | {"window_start": "2026-01-01T00:00:00Z", **values}


def test_error_rows_become_a_count_per_error_type_with_zeros():
    from genai_apm.jobs import errors

    r = _job_row(errors.output_columns(), window="1m", model_id="m1", app_id="*")
    r["throttles"] = 0  # a quiet minute is a 0, not missing data
    datums = cloudwatch.error_datums(r, Settings())
    by_name = {d["MetricName"]: d for d in datums}
    failures = {o: c for o, c, _ in errors.OUTCOMES if o != "success"}
    assert set(by_name) == {cloudwatch.ERROR_METRICS[o] for o in failures}
    for outcome, column in failures.items():
        assert by_name[cloudwatch.ERROR_METRICS[outcome]]["Value"] == float(r[column])
    assert by_name["Throttles"]["Value"] == 0.0
    # the all-apps rollup: {ModelId} only, as the latency rows of the same key
    assert all(d["Dimensions"] == [{"Name": "ModelId", "Value": "m1"}] for d in datums)
    assert all(d["Unit"] == "Count" and d["Timestamp"] == T0 for d in datums)
    assert all(cloudwatch.problems(d, NOW, dt.timedelta(days=14)) == [] for d in datums)
    # no metric name of the latency rows is sent twice
    assert not set(by_name) & {
        d["MetricName"] for d in cloudwatch.latency_datums(row(), Settings())
    }
    assert cloudwatch.error_datums(r | {"window": "5m"}, Settings()) == []


@pytest.mark.parametrize(
    ("dimension", "expected"),
    [("app", "AppId"), ("model", "ModelId"), ("user", None), ("session", None), ("feature", None)],
)
def test_cost_rows_become_spend_per_app_and_model(dimension, expected):
    from genai_apm.jobs import cost

    r = _job_row(cost.output_columns(), window="1h", dimension=dimension, key="k1")
    datums = cloudwatch.cost_datums(r, Settings())
    if expected is None:
        assert datums == []
        return
    by_name = {d["MetricName"]: d for d in datums}
    assert by_name[cloudwatch.ESTIMATED_COST]["Value"] == r["cost_usd"]
    assert by_name[cloudwatch.UNPRICED]["Value"] == float(r["unpriced_requests"])
    assert all(d["Dimensions"] == [{"Name": expected, "Value": "k1"}] for d in datums)
    assert all(cloudwatch.problems(d, NOW, dt.timedelta(days=14)) == [] for d in datums)


def test_the_exporter_reads_the_errors_and_cost_topics():
    s = Settings()
    topics = cloudwatch.topic_translators(s)
    assert topics[s.topics.errors] is cloudwatch.error_datums
    assert topics[s.topics.cost] is cloudwatch.cost_datums


def test_problems_catch_what_cloudwatch_refuses():
    age = dt.timedelta(days=14)
    ok = cloudwatch.latency_datums(row(), Settings())[0]
    assert cloudwatch.problems(ok, NOW, age) == []
    assert cloudwatch.problems({**ok, "Value": math.nan}, NOW, age)
    assert cloudwatch.problems({**ok, "Value": math.inf}, NOW, age)
    old = {**ok, "Timestamp": NOW - dt.timedelta(days=15)}
    assert "older than" in cloudwatch.problems(old, NOW, age)[0]
    assert cloudwatch.problems(old, NOW, dt.timedelta(0)) == []  # 0 disables the age check
    future = {**ok, "Timestamp": NOW + dt.timedelta(hours=3)}
    assert "future" in cloudwatch.problems(future, NOW, age)[0]
    dist = {**ok, "Values": [1.0] * 151, "Counts": [1.0] * 151}
    del dist["Value"]
    assert "more than 150" in cloudwatch.problems(dist, NOW, age)[0]


def _pending(n: int, values: int = 0) -> list[cloudwatch.Pending]:
    source = cloudwatch.Source("t", 0, 0, b"{}")
    out = []
    for i in range(n):
        d = {"MetricName": "M", "Dimensions": [{"Name": "ModelId", "Value": f"m{i}"}]}
        d |= {"Timestamp": T0, "Unit": "Count", "StorageResolution": 60}
        if values:
            d |= {"Values": [float(v) * 1.001 for v in range(1, values + 1)]}
            d |= {"Counts": [float(v) for v in range(1, values + 1)]}
        else:
            d["Value"] = float(i)
        out.append(cloudwatch.Pending(d, source))
    return out


def _client():
    return boto3.client(
        "cloudwatch",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="x",
        aws_secret_access_key="y",
    )


def test_batches_respect_the_datum_count_and_the_payload_size():
    sizer = cloudwatch.RequestSizer(_client(), "GenAI/APM")
    small = _pending(2500)
    assert [len(b) for b in cloudwatch.batches(small, sizer.datum, sizer.base)] == [1000, 1000, 500]
    big = _pending(1000, values=150)
    each = sizer.datum(big[0].datum)
    assert each > 2000  # ~3 KB per 150-value datum: 1000 of them would be ~3 MB
    runs = list(cloudwatch.batches(big, sizer.datum, sizer.base))
    assert sum(map(len, runs)) == 1000 and len(runs) > 2
    limit = cloudwatch.MAX_REQUEST_BYTES - cloudwatch.REQUEST_HEADROOM
    for run in runs:
        assert sizer.base + sum(sizer.datum(p.datum) for p in run) <= limit


def _sender(client, stats, sleeps, **cw):
    settings = Settings().replace(cloudwatch={"max_attempts": 4, "backoff_base_s": 0.5, **cw})
    return cloudwatch.PutMetricDataSender(
        client, settings.cloudwatch, stats, sleep=sleeps.append, rng=lambda: 1.0
    )


def test_throttling_and_5xx_are_retried_with_exponential_backoff():
    client = _client()
    stats, sleeps = cloudwatch.Stats(), []
    with Stubber(client) as stub:
        stub.add_client_error("put_metric_data", "Throttling", "Rate exceeded", 400)
        stub.add_client_error("put_metric_data", "InternalServiceError", "", 500)
        stub.add_response("put_metric_data", {})
        failed = _sender(client, stats, sleeps).send(_pending(3))
        stub.assert_no_pending_responses()
    assert failed == []
    assert (stats.requests, stats.datums, stats.retries) == (1, 3, 2)
    assert sleeps == [0.5, 1.0]  # base * 2^attempt, times the jitter draw (1.0 here)
    assert stats.retry_causes == {"Throttling": 1, "InternalServiceError": 1}
    assert "(2 retries: 1 x Throttling, 1 x InternalServiceError)" in stats.summary()


def test_retry_causes_name_connection_errors_and_bare_statuses():
    from botocore.exceptions import EndpointConnectionError

    bare = ClientError({"Error": {}, "ResponseMetadata": {"HTTPStatusCode": 503}}, "Put")
    assert cloudwatch.retry_cause(bare) == "HTTP 503"
    refused = EndpointConnectionError(endpoint_url="http://127.0.0.1:9")
    assert cloudwatch.retryable(refused)
    assert cloudwatch.retry_cause(refused) == "EndpointConnectionError"
    assert "retries)" in cloudwatch.Stats().summary()  # no causes, no colon


def test_retries_are_bounded_and_what_is_left_is_returned():
    client = _client()
    stats, sleeps = cloudwatch.Stats(), []
    with Stubber(client) as stub:
        for _ in range(4):
            stub.add_client_error("put_metric_data", "Throttling", "Rate exceeded", 400)
        failed = _sender(client, stats, sleeps, backoff_max_s=0.75).send(_pending(2))
    assert len(failed) == 2 and "gave up after 4 attempts: Throttling" in failed[0][1]
    assert sleeps == [0.5, 0.75, 0.75]  # capped
    assert stats.requests == 0


class _RefusesBadDatums:
    """A client that refuses any request holding a datum named Bad (as CloudWatch does)."""

    def __init__(self):
        self.meta = _client().meta
        self.calls: list[int] = []

    def put_metric_data(self, Namespace, MetricData):  # noqa: N803 - boto3's names
        self.calls.append(len(MetricData))
        if any(d["MetricName"] == "Bad" for d in MetricData):
            error = {"Error": {"Code": "InvalidParameterValue", "Message": "bad datum"}}
            raise ClientError(error | {"ResponseMetadata": {"HTTPStatusCode": 400}}, "Put")
        return {}


def test_an_invalid_datum_is_isolated_and_the_rest_is_delivered():
    pending = _pending(40)
    pending[17].datum["MetricName"] = "Bad"
    client, stats = _RefusesBadDatums(), cloudwatch.Stats()
    failed = _sender(client, stats, []).send(pending)
    assert [p.datum["MetricName"] for p, _ in failed] == ["Bad"]
    assert "InvalidParameterValue" in failed[0][1]
    assert stats.datums == 39 and stats.retries == 0
    assert len(client.calls) <= 1 + 2 * math.ceil(math.log2(40))


def test_refusals_no_datum_is_at_fault_for_stop_the_exporter():
    from genai_apm.errors import GenaiApmError

    client = _client()
    with Stubber(client) as stub:
        stub.add_client_error("put_metric_data", "AccessDenied", "not authorized", 403)
        with pytest.raises(GenaiApmError, match="AccessDenied"):
            _sender(client, cloudwatch.Stats(), []).send(_pending(5))


def test_emf_expands_distributions_to_at_most_100_values_per_event():
    out, stats = io.StringIO(), cloudwatch.Stats()
    settings = Settings()
    datums = cloudwatch.latency_datums(row(hist={"300": 150, "301": 70}), settings)
    source = cloudwatch.Source("t", 0, 0, b"{}")
    sender = cloudwatch.EmfSender(settings.cloudwatch, stats, out)
    sender.send([cloudwatch.Pending(d, source) for d in datums])
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(events) == 3  # 220 latency values: 100 + 100 + 20
    first = events[0]
    directive = first["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "GenAI/APM"
    assert directive["Dimensions"] == [["ModelId", "AppId"]]
    assert first["ModelId"] == "m1" and first["Invocations"] == 12.0
    assert first["_aws"]["Timestamp"] == int(T0.timestamp() * 1000)
    latency_values = [v for e in events for v in e.get("InvocationLatency", [])]
    assert len(latency_values) == 220
    assert all(len(e.get("InvocationLatency", [])) <= 100 for e in events)


def test_slo_rows_become_budget_and_a_burn_rate_per_window():
    from genai_apm.jobs import slo

    r = _job_row(slo.SLO_COLUMNS, slo="chat", key="m1")
    r["burn_rate_3d"] = None  # no events in a window: no datum, not a zero
    datums = cloudwatch.slo_datums(r, Settings())
    budget = [d for d in datums if d["MetricName"] == cloudwatch.ERROR_BUDGET_REMAINING]
    assert [d["Value"] for d in budget] == [r["budget_remaining_pct"]]
    assert budget[0]["Unit"] == "Percent"
    assert budget[0]["Dimensions"] == [
        {"Name": "SLO", "Value": "chat"},
        {"Name": "Key", "Value": "m1"},
    ]
    burns = {
        d["Dimensions"][2]["Value"]: d["Value"]
        for d in datums
        if d["MetricName"] == cloudwatch.BURN_RATE
    }
    assert burns == {w: r[slo.burn_column(w)] for w in slo.BURN_WINDOWS if w != "3d"}
    assert all(cloudwatch.problems(d, NOW, dt.timedelta(days=14)) == [] for d in datums)


def test_quota_rows_become_use_and_the_forecast():
    from genai_apm.jobs import slo

    r = _job_row(slo.QUOTA_COLUMNS, provider="aws.bedrock", model_id="m1", region="us-east-1")
    by_name = {d["MetricName"]: d for d in cloudwatch.quota_datums(r, Settings())}
    assert by_name[cloudwatch.QUOTA_USE]["Value"] == r["use_pct"]
    assert by_name[cloudwatch.QUOTA_EXHAUSTION]["Value"] == r["minutes_to_exhaustion"]
    assert [d["Name"] for d in by_name[cloudwatch.QUOTA_USE]["Dimensions"]] == [
        "Provider",
        "ModelId",
        "Region",
    ]
    s = Settings()
    topics = cloudwatch.topic_translators(s)
    assert topics[s.topics.quota] is cloudwatch.quota_datums
    assert topics[s.topics.slo] is cloudwatch.slo_datums
