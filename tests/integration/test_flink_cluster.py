"""A real standalone Flink cluster: submit detached, list, cancel, stop."""

from __future__ import annotations

import time

import pytest

from genai_apm.flink.cluster import FlinkRest, LocalFlinkCluster, submit_to_cluster
from genai_apm.kafka import io as kafka_io
from genai_apm.stack.process import free_port

pytestmark = pytest.mark.integration


def _wait_state(rest: FlinkRest, job_id: str, states: set[str], timeout_s: float = 60) -> str:
    deadline = time.monotonic() + timeout_s
    state = "?"
    while time.monotonic() < deadline:
        state = next((j["state"] for j in rest.jobs() if j["jid"] == job_id), "MISSING")
        if state in states:
            return state
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} stayed {state}, wanted {states}")


def test_submit_list_cancel_on_standalone_cluster(settings, monkeypatch, tmp_path):
    address = f"127.0.0.1:{free_port()}"
    settings = settings.replace(flink={"rest_address": address, "taskmanager_memory": "1280m"})
    # a Kafka source fails (and restarts) when its topic does not exist yet
    topics = settings.topics
    kafka_io.ensure_topics(
        settings.kafka,
        [topics.invocations, topics.latency, topics.late, topics.late_counts, topics.deadletter],
    )
    cluster = LocalFlinkCluster(settings)
    assert cluster.up()
    try:
        # the job's own settings travel to the `flink run` driver as environment variables
        monkeypatch.setenv("GENAI_APM_KAFKA_BOOTSTRAP_SERVERS", settings.kafka.bootstrap_servers)
        monkeypatch.setenv("GENAI_APM_TOPICS_INVOCATIONS", settings.topics.invocations)
        monkeypatch.setenv("GENAI_APM_TOPICS_LATENCY", settings.topics.latency)
        monkeypatch.setenv("GENAI_APM_TOPICS_DEADLETTER", settings.topics.deadletter)
        monkeypatch.setenv("GENAI_APM_TOPICS_LATE", settings.topics.late)
        monkeypatch.setenv("GENAI_APM_TOPICS_LATE_COUNTS", settings.topics.late_counts)
        monkeypatch.setenv("GENAI_APM_OUTPUT_TABLES_PATH", str(tmp_path / "tables"))
        job_id = submit_to_cluster(address, "genai_apm.jobs.latency", [])
        rest = FlinkRest(address)
        assert _wait_state(rest, job_id, {"RUNNING"}) == "RUNNING"
        job = next(j for j in rest.jobs() if j["jid"] == job_id)
        assert job["name"] == "genai-apm latency"
        rest.cancel(job_id)
        assert _wait_state(rest, job_id, {"CANCELED"}) == "CANCELED"
    finally:
        assert cluster.down()
    assert cluster.status() == "stopped"
