"""One real Kafka broker and one moto server for the whole test session (for each
pytest-xdist worker under `make test`), on free ports.

If Java, the jars or a server is missing, the fixture errors with the reason: the suite
goes red, it never skips.
"""

from __future__ import annotations

import pytest

from genai_apm.settings import config
from genai_apm.stack.local import LocalStack
from genai_apm.stack.process import free_port

# CPU minutes per test file (2-worker run of this suite, busy machine): `make test` runs the
# files on two pytest-xdist workers (--dist loadfile, so a module-scoped fixture is made
# once), handed out in the order collected; the costliest go first, so none starts last
# while the other worker idles. A file not listed counts as 1.
FILE_MINUTES = {
    "test_aws_faults.py": 3.5,
    "test_errors_cost_job.py": 2.2,
    "test_managed_flink_package.py": 2.1,
    "test_fault_recovery.py": 2.0,
    "test_kafka_security.py": 1.5,
    "test_kinesis_bridge.py": 1.4,
    "test_ingest_bodies.py": 1.4,
    "test_flink_cluster.py": 1.2,
    "test_latency_job.py": 1.2,
    "test_demo.py": 1.1,
    "test_anomalies_job.py": 1.0,
    "test_slo_job.py": 1.0,
    "test_ingest_job.py": 0.8,
    "test_sinks.py": 0.7,
    "test_hostile_input.py": 0.6,
    "test_agents_job.py": 0.6,
    "test_anomaly_outliers.py": 0.6,
    "test_plan_cache.py": 0.9,
    "test_codesplit_cache.py": 0.1,
    "test_local_stack.py": 0.2,
    "test_publish.py": 0.1,
    "test_consume_report_cli.py": 0.1,
}


def pytest_collection_modifyitems(config, items):
    def minutes(item: pytest.Item) -> float:
        if item.get_closest_marker("integration") is None:
            return 0
        return FILE_MINUTES.get(item.path.name, 1)

    items.sort(key=minutes, reverse=True)  # stable: a file's tests keep their order


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
