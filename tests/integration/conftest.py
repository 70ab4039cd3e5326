"""One real Kafka broker and one moto server for the whole test session, on free ports.

If Java, the jars or a server is missing, the fixture errors with the reason: the suite
goes red, it never skips.
"""

from __future__ import annotations

import pytest

from genai_apm import config
from genai_apm.stack.local import LocalStack
from genai_apm.stack.process import free_port


@pytest.fixture(scope="session")
def stack_settings(tmp_path_factory) -> config.Settings:
    state = tmp_path_factory.mktemp("stack")
    return config.load(path=None, environ={}).replace(
        stack={
            "state_dir": str(state),
            "kafka_port": free_port(),
            "controller_port": free_port(),
            "moto_port": free_port(),
            "kafka_heap": "384m",
        },
    )


@pytest.fixture(scope="session")
def stack(stack_settings):
    local = LocalStack(stack_settings)
    started = local.up()  # GenaiApmError here names the missing piece and the log file
    assert started == ["kafka", "moto"], f"expected a fresh stack, got {started}"
    yield local
    local.down()


@pytest.fixture
def settings(stack, stack_settings, unique) -> config.Settings:
    """Session servers, with topics and consumer group unique to the test."""
    return stack_settings.replace(
        kafka={
            "bootstrap_servers": stack.kafka.bootstrap,
            "consumer_group": f"test-{unique}",
            "startup_mode": "earliest-offset",
        },
        topics={
            "invocations": f"it.{unique}.invocations",
            "latency": f"it.{unique}.latency",
            "deadletter": f"it.{unique}.deadletter",
            # what the CloudWatch exporter reads besides the latency topic: no test's export
            # sees another test's rows
            "errors": f"it.{unique}.errors",
            "cost": f"it.{unique}.cost",
            "anomaly_counts": f"it.{unique}.anomaly-counts",
            "slo": f"it.{unique}.slo",
            "quota": f"it.{unique}.quota",
        },
        aws={"endpoint_url": stack.moto.endpoint_url},
        flink={"parallelism": 1},
    )
