"""The Kinesis -> Kafka bridge against moto's Kinesis (polling) and the session's broker.

What reaches the invocations topic is compared with what was put into the stream, and each
shard's records, read back independently with boto3, with the records the topic holds under
that shard's key: exactly once (read_committed), in shard order, across a shard split and
across a killed and restarted bridge.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter

import pytest

from genai_apm import traffic
from genai_apm.aws import client
from genai_apm.errors import GenaiApmError
from genai_apm.kafka import bridge, publish
from genai_apm.kafka import io as kafka_io

pytestmark = pytest.mark.integration

# bounded waits: a bridge JVM starts in ~10 s on a loaded 2-core machine
ARRIVAL_TIMEOUT_S = 90


@pytest.fixture
def bridge_settings(settings, unique, tmp_path):
    return settings.replace(
        aws={"access_key_id": "testing", "secret_access_key": "testing"},
        bridge={
            "stream": f"it-{unique}",
            "checkpoint_dir": str(tmp_path / "bridge" / "checkpoints"),
            "checkpoint_interval_s": 1,
            "getrecords_interval_ms": 100,
            "shard_discovery_interval_ms": 1000,
            "heap": "384m",
        },
    )


@pytest.fixture
def kinesis(bridge_settings):
    return client(bridge_settings.aws, "kinesis")


@pytest.fixture
def stream(bridge_settings, kinesis):
    name = bridge_settings.bridge.stream
    kinesis.create_stream(StreamName=name, ShardCount=2)
    kinesis.get_waiter("stream_exists").wait(
        StreamName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 50}
    )
    kafka_io.ensure_topics(bridge_settings.kafka, [bridge_settings.topics.invocations])
    return name


@pytest.fixture
def run_bridge(bridge_settings):
    """Start bridges; each is killed at the end of the test if still running."""
    started = []

    def start():
        proc = bridge.start(bridge_settings)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        kill(proc)


def kill(proc) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def payloads(count: int, seed: int) -> list[bytes]:
    spec = traffic.TrafficSpec(rate_per_s=50.0, seed=seed, count=count)
    return [p for _, p in publish.encode(traffic.traffic(spec), "native")]


def put(settings, items: list[bytes]) -> None:
    """Through `genai-apm generate --to kinesis`'s output (PutRecords, 500 a call)."""
    out = publish.KinesisOutput(settings, settings.bridge.stream)
    for item in items:
        out.send("invocations", item)
    out.close()


def topic_records(settings) -> list[tuple[int, bytes, bytes]]:
    """(partition, key, value) of every committed record, in offset order per partition."""
    from kafka import KafkaConsumer, TopicPartition

    topic = settings.topics.invocations
    consumer = KafkaConsumer(
        **kafka_io.client_args(settings.kafka),
        isolation_level="read_committed",
        enable_auto_commit=False,
        consumer_timeout_ms=1_500,
    )
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        found = sorted((m.partition, m.offset, m.key, m.value) for m in consumer)
        return [(p, k, v) for p, _, k, v in found]
    finally:
        consumer.close()


def shard_contents(kinesis, stream: str) -> dict[str, list[bytes]]:
    """Every shard's records from TRIM_HORIZON, in sequence order, read with boto3 alone."""
    out = {}
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        records: list[bytes] = []
        while iterator:
            answer = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            records += [r["Data"] for r in answer["Records"]]
            if not answer["Records"] and answer.get("MillisBehindLatest", 0) == 0:
                break
            iterator = answer.get("NextShardIterator")
        out[shard["ShardId"]] = records
    return out


def wait_for_count(settings, expected: int, proc) -> list[tuple[int, bytes, bytes]]:
    deadline = time.monotonic() + ARRIVAL_TIMEOUT_S
    found: list = []
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the bridge exited with {proc.returncode}"
        found = topic_records(settings)
        if len(found) >= expected:
            return found
        time.sleep(0.5)
    raise AssertionError(f"{len(found)} of {expected} records reached the topic")


def completed_checkpoint(settings) -> int:
    """The id of the bridge's newest complete checkpoint (a chk-N folder with its _metadata;
    ids keep counting up across restores), 0 before the first."""
    done = bridge.checkpoint_dir(settings).glob("*/chk-*/_metadata")
    return max((int(p.parent.name.removeprefix("chk-")) for p in done), default=0)


def wait_for_checkpoints(settings, count: int, proc=None) -> None:
    """Until ``count`` more checkpoints than now have completed: polled, not slept, so a
    loaded machine's slower checkpoints are still waited for. ``proc``: the bridge, whose
    exit ends the wait at once."""
    target = completed_checkpoint(settings) + count
    deadline = time.monotonic() + ARRIVAL_TIMEOUT_S
    while (done := completed_checkpoint(settings)) < target:
        assert proc is None or proc.poll() is None, f"the bridge exited with {proc.returncode}"
        if time.monotonic() > deadline:
            raise AssertionError(
                f"checkpoint {target} not complete after {ARRIVAL_TIMEOUT_S} s (newest: {done})"
            )
        time.sleep(0.2)


def assert_exactly_once_in_shard_order(settings, kinesis, sent: list[bytes], proc=None) -> None:
    # two more checkpoints: a duplicate would be committed by now
    wait_for_checkpoints(settings, 2, proc)
    records = topic_records(settings)
    assert Counter(v for _, _, v in records) == Counter(sent)
    by_key: dict[bytes, list[bytes]] = {}
    partitions: dict[bytes, set[int]] = {}
    for partition, key, value in records:
        by_key.setdefault(key, []).append(value)
        partitions.setdefault(key, set()).add(partition)
    shards = shard_contents(kinesis, settings.bridge.stream)
    assert {k.decode() for k in by_key} == {s for s, items in shards.items() if items}
    for shard, items in shards.items():
        if items:
            # one key per shard, so one partition, in the shard's order
            assert len(partitions[shard.encode()]) == 1, shard
            assert by_key[shard.encode()] == items, shard


def test_two_shards_reach_the_topic_exactly_once_in_shard_order(
    bridge_settings, kinesis, stream, run_bridge
):
    sent = payloads(800, seed=11)
    put(bridge_settings, sent)
    proc = run_bridge()
    wait_for_count(bridge_settings, len(sent), proc)
    assert_exactly_once_in_shard_order(bridge_settings, kinesis, sent, proc)
    # an independent count: what the stream holds, read with boto3
    assert sum(len(v) for v in shard_contents(kinesis, stream).values()) == len(sent)


def test_a_shard_split_mid_run_loses_and_duplicates_nothing(
    bridge_settings, kinesis, stream, run_bridge
):
    before, after = payloads(400, seed=12), payloads(400, seed=13)
    put(bridge_settings, before)
    proc = run_bridge()
    wait_for_count(bridge_settings, 1, proc)
    shard = kinesis.list_shards(StreamName=stream)["Shards"][0]
    low = int(shard["HashKeyRange"]["StartingHashKey"])
    high = int(shard["HashKeyRange"]["EndingHashKey"])
    kinesis.split_shard(
        StreamName=stream,
        ShardToSplit=shard["ShardId"],
        NewStartingHashKey=str((low + high) // 2),
    )
    kinesis.get_waiter("stream_exists").wait(
        StreamName=stream, WaiterConfig={"Delay": 0.2, "MaxAttempts": 50}
    )
    put(bridge_settings, after)
    assert len(kinesis.list_shards(StreamName=stream)["Shards"]) == 4
    wait_for_count(bridge_settings, len(before) + len(after), proc)
    assert_exactly_once_in_shard_order(bridge_settings, kinesis, before + after, proc)


def test_a_killed_bridge_resumes_from_its_checkpoint(bridge_settings, kinesis, stream, run_bridge):
    first, second = payloads(400, seed=14), payloads(400, seed=15)
    put(bridge_settings, first)
    proc = run_bridge()
    wait_for_count(bridge_settings, len(first), proc)
    # a checkpoint after the first batch, then no chance to stop cleanly
    wait_for_checkpoints(bridge_settings, 1, proc)
    kill(proc)
    put(bridge_settings, second)
    again = run_bridge()
    wait_for_count(bridge_settings, len(first) + len(second), again)
    assert_exactly_once_in_shard_order(bridge_settings, kinesis, first + second, again)
    log = (bridge.state_dir(bridge_settings) / "bridge.log").read_text(errors="replace")
    assert "resuming from" in log


def test_a_missing_stream_is_one_clear_error(bridge_settings):
    with pytest.raises(GenaiApmError, match="does not exist"):
        bridge.start(bridge_settings.replace(bridge={"stream": "no-such-stream"}))


def test_an_unreachable_endpoint_is_one_clear_error(bridge_settings):
    from genai_apm.stack.process import free_port

    gone = bridge_settings.replace(aws={"endpoint_url": f"http://127.0.0.1:{free_port()}"})
    with pytest.raises(GenaiApmError, match="cannot reach"):
        bridge.check_stream(gone)


def test_throttled_getrecords_and_an_expired_iterator_lose_and_double_nothing(
    bridge_settings, kinesis, stream
):
    """GetRecords answered with ProvisionedThroughputExceededException (every third of the
    first 30 calls) and ExpiredIteratorException (calls 4 and 11) by a proxy in front of
    moto (which neither throttles nor expires iterators): every record arrives once, in
    shard order."""
    from tests.integration.proxies import KinesisFaultProxy

    def fault(n: int) -> str | None:
        if n in (4, 11):
            return "ExpiredIteratorException"
        if n < 30 and n % 3 == 1:
            return "ProvisionedThroughputExceededException"
        return None

    proxy = KinesisFaultProxy(bridge_settings.stack.moto_port, fault).start()
    try:
        s = bridge_settings.replace(aws={"endpoint_url": proxy.endpoint_url})
        sent = payloads(600, seed=16)
        put(s, sent)
        proc = bridge.start(s)
        try:
            wait_for_count(s, len(sent), proc)
            assert_exactly_once_in_shard_order(s, kinesis, sent)
        finally:
            kill(proc)
        assert proxy.answered == {
            "ExpiredIteratorException": 2,
            "ProvisionedThroughputExceededException": 9,
        }
        # the expired iterator is the connector's PollingRecordPublisher's to handle; a
        # throttled call is retried by the AWS SDK inside the connector (its RetryUtils
        # counts ProvisionedThroughputExceededException as throttling) with backoff, before
        # the connector's own getrecords retries (bridge.max_retries) would be needed
        log = (bridge.state_dir(s) / "bridge.log").read_text(errors="replace")
        assert log.count("refreshing the iterator") == 2
    finally:
        proxy.stop()
