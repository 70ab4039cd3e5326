"""Faults on the real stack, each run compared with a clean run on the same events: the
latency job on a standalone Flink cluster loses its TaskManager mid-stream, or is stopped
with a savepoint and resumed by a new submission; its committed output must equal the
clean run's, row for row, with nothing missing and nothing twice."""

from __future__ import annotations

import dataclasses
import os
import signal
import time

import pytest

from genai_apm.errors import GenaiApmError
from genai_apm.flink.cluster import FlinkRest, LocalFlinkCluster
from genai_apm.kafka import io as kafka_io
from genai_apm.stack.kafka_broker import KafkaBroker
from genai_apm.stack.process import free_port
from tests.integration.faults import (
    clean_rows,
    in_flight,
    in_order_stream,
    job_topics,
    parquet_rows,
    record_count,
    row_keys,
    sentinel,
    submit,
    wait_for_rows,
    wait_until,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def fault_settings(settings, tmp_path):
    return settings.replace(
        # one partition: the order the events were produced in is the order they are read
        kafka={"partitions": 1, "startup_mode": "earliest-offset"},
        flink={
            "watermark_emit": "on-event",
            "checkpoint_interval_s": 2,
            "rest_address": f"127.0.0.1:{free_port()}",
            "taskmanager_memory": "1280m",
        },
        stack={"state_dir": str(tmp_path / "state")},
        output={"tables_path": str(tmp_path / "tables")},
    )


@pytest.fixture
def cluster(fault_settings):
    local = LocalFlinkCluster(fault_settings)
    assert local.up()
    yield local
    local.down()


def _feed_until_output_is_in_flight(s, events: list[dict]) -> list[dict]:
    """Produce ``events`` in slices until window results sit in an open Kafka transaction
    (written, not yet committed by a checkpoint); return the events not produced yet."""
    for i in range(0, len(events), 100):
        kafka_io.produce_json(s.kafka, s.topics.invocations, events[i : i + 100])
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if in_flight(s):
                return events[i + 100 :]
            time.sleep(0.05)
    raise AssertionError("no window result was ever written ahead of a checkpoint")


def _commit(rest: FlinkRest, job_id: str) -> bool:
    """Checkpoint by hand; False while the job cannot (restarting, no TaskManager yet)."""
    try:
        rest.checkpoint(job_id, timeout_s=30)
    except GenaiApmError:
        return False
    return True


def test_taskmanager_killed_mid_stream_recovers_with_no_loss_and_no_duplicates(
    fault_settings, cluster, monkeypatch, tmp_path
):
    # Checkpoints only when the test takes them: results written after one stay in an open
    # transaction until the kill, however slow the machine (a periodic checkpoint could commit
    # them between seeing them in flight and the kill, and the run would test nothing).
    s = fault_settings.replace(flink={"checkpoint_interval_s": 600})
    events = in_order_stream(4_000, seed=21)
    last = sentinel(events)
    kafka_io.ensure_topics(s.kafka, job_topics(s))
    job_id = submit(s, monkeypatch)
    rest = FlinkRest(s.flink.rest_address)

    half = len(events) // 2
    kafka_io.produce_json(s.kafka, s.topics.invocations, events[:half])
    wait_until(
        lambda: _commit(rest, job_id) and record_count(s, "read_committed"),
        120,
        "the first committed results",
    )
    remaining = _feed_until_output_is_in_flight(s, events[half:])

    (victim,) = cluster.taskmanager_pids()
    os.kill(victim, signal.SIGKILL)
    cluster.start_taskmanager()
    kafka_io.produce_json(s.kafka, s.topics.invocations, [*remaining, last])

    expected = clean_rows(s, tmp_path, last["event_time"])
    got = wait_for_rows(s, expected, timeout_s=120, each_poll=lambda: _commit(rest, job_id))
    assert got == expected  # same rows, none missing, none twice
    # the kill did catch results in flight: they were written, then aborted
    assert record_count(s, "read_uncommitted") > sum(got.values())
    stats = rest.checkpoints(job_id)
    assert stats["counts"]["restored"] >= 1, "the job must have resumed from a checkpoint"

    # Parquet is committed on checkpoints too: the 1-minute table holds each row once
    want_1m = row_keys(expected, "1m")
    wait_until(
        lambda: (
            (
                _commit(rest, job_id)
                and parquet_rows(f"{s.output.tables_path}/latency_1m") == want_1m
            )
            or None
        ),
        30,
        "the Parquet table to match",
    )
    rest.cancel(job_id)


@pytest.mark.soak
def test_stop_with_savepoint_then_a_new_version_resumes_with_equal_results(
    fault_settings, cluster, monkeypatch, tmp_path
):
    s = fault_settings
    events = in_order_stream(4_000, seed=22)  # half of it closes at least one window
    last = sentinel(events)
    kafka_io.ensure_topics(s.kafka, job_topics(s))
    rest = FlinkRest(s.flink.rest_address)
    first = submit(s, monkeypatch)

    half = len(events) // 2
    kafka_io.produce_json(s.kafka, s.topics.invocations, events[:half])
    wait_until(lambda: record_count(s, "read_committed"), 120, "the first committed results")
    savepoint = rest.stop_with_savepoint(first, (tmp_path / "savepoints").as_uri())
    assert wait_until(
        lambda: next((j["state"] for j in rest.jobs() if j["jid"] == first), None) == "FINISHED",
        60,
        "the stopped job to finish",
    )
    # traffic goes on while the job is down; the new version must pick it up where the
    # savepoint left off (its startup mode, earliest-offset, would re-read everything)
    kafka_io.produce_json(s.kafka, s.topics.invocations, [*events[half:], last])

    # the new version: other runtime settings and another transactional-id prefix, the same
    # SQL, so the same operators; restored from the savepoint
    upgraded = s.replace(
        flink={
            "restore_from": savepoint,
            "idle_timeout_s": 30,
            "transactional_id_prefix": "genai-apm-v2",
        }
    )
    second = submit(upgraded, monkeypatch)

    expected = clean_rows(s, tmp_path, last["event_time"])
    got = wait_for_rows(s, expected, timeout_s=120)
    assert got == expected
    restored = rest.checkpoints(second)["latest"]["restored"]
    assert restored["is_savepoint"] and restored["external_path"].rstrip("/") == (
        savepoint.rstrip("/")
    )
    rest.cancel(second)


@pytest.fixture
def own_broker(stack_settings, tmp_path):
    """A broker of this test's own, so restarting it disturbs no other test."""
    stack = dataclasses.replace(
        stack_settings.stack, kafka_port=free_port(), controller_port=free_port()
    )
    broker = KafkaBroker(stack, tmp_path / "broker")
    assert broker.up()
    yield broker
    broker.down()


@pytest.mark.soak
def test_kafka_broker_restarted_mid_stream_loses_and_repeats_nothing(
    fault_settings, own_broker, monkeypatch, tmp_path
):
    s = fault_settings.replace(kafka={"bootstrap_servers": own_broker.bootstrap})
    cluster = LocalFlinkCluster(s)
    assert cluster.up()
    try:
        events = in_order_stream(4_000, seed=23)
        last = sentinel(events)
        kafka_io.ensure_topics(s.kafka, job_topics(s))
        job_id = submit(s, monkeypatch)
        half = len(events) // 2
        kafka_io.produce_json(s.kafka, s.topics.invocations, events[:half])
        wait_until(lambda: record_count(s, "read_committed"), 120, "the first committed results")

        assert own_broker.down()
        time.sleep(5)  # long enough for the job's clients to fail their requests
        assert own_broker.up()
        kafka_io.produce_json(s.kafka, s.topics.invocations, [*events[half:], last])

        expected = clean_rows(s, tmp_path, last["event_time"])
        got = wait_for_rows(s, expected, timeout_s=180)
        assert got == expected
        FlinkRest(s.flink.rest_address).cancel(job_id)
    finally:
        cluster.down()
