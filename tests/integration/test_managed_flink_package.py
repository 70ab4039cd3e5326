"""The Managed Flink package, run the way the service runs a Python application.

Managed Flink (FLINK-2_2) runs `flink run` with the run options of the property group
kinesis.analytics.flink.run.options: `-py main.py`, `-pyfs python/` and `-j` the jar, from
the unpacked zip, with the application's properties in /etc/flink/application_properties.json.
Here the same command runs from PyFlink 2.2's own `flink` script against a local MiniCluster
(`-t local`), the properties file named by $GENAI_APM_APP_PROPERTIES, and only the zip's jar
on the job's classpath. As on the service, the job runs with `flink.service_configured` and
sets no checkpoint, state backend, parallelism or restart option itself; the options the
service would set come as `-D` options (RocksDB, as the service uses). Its rows must equal
those of `genai-apm submit` of the same job over the same input topic: every output topic,
and every Parquet table.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from genai_apm import cli
from genai_apm.deploy import aws_templates, managed_flink
from genai_apm.kafka import io as kafka_io
from genai_apm.settings import app_properties

pytestmark = pytest.mark.integration

# topics both runs read or share; every other topic gets a per-run name
SHARED_TOPICS = ("invocations", "spans")
RUN_TIMEOUT_S = 600


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> Path:
    jar = managed_flink.ROOT / managed_flink.JAR
    if not jar.is_file():
        managed_flink.build_jar()
    out = managed_flink.build(tmp_path_factory.mktemp("package") / aws_templates.PACKAGE_ZIP)
    app = out.parent / "app"
    zipfile.ZipFile(out).extractall(app)
    return app


def per_run(settings, run: str, tmp_path: Path):
    topics = {
        name: f"{value}.{run}"
        for name, value in vars(settings.topics).items()
        if name not in SHARED_TOPICS
    }
    return settings.replace(
        topics=topics,
        output={"tables_path": str(tmp_path / run / "tables")},
        stack={"state_dir": str(tmp_path / run / "state")},
        flink={"checkpoint_dir": (tmp_path / run / "checkpoints").as_uri()},
    )


def properties(settings, job: str) -> list[dict]:
    """What pipeline.yaml sets (job group, genai_apm.* groups), with local values."""
    sections = {
        "kafka": {
            "bootstrap_servers": settings.kafka.bootstrap_servers,
            "consumer_group": settings.kafka.consumer_group + ".pkg",
            "startup_mode": settings.kafka.startup_mode,
            # the package bundles the plain Kafka client, as on AWS
            "shaded_client": False,
        },
        "topics": dict(vars(settings.topics)),
        "output": {"tables_path": settings.output.tables_path},
        "stack": {"state_dir": settings.stack.state_dir},
        "flink": {
            "parallelism": settings.flink.parallelism,
            "checkpoint_dir": settings.flink.checkpoint_dir,
            # as the template: the job leaves the service's options to the service, which
            # run_package plays with -D options
            "service_configured": True,
        },
    }
    run_options = {
        "PropertyGroupId": app_properties.RUN_OPTIONS_GROUP,
        "PropertyMap": {
            "python": aws_templates.PACKAGE_MAIN,
            "jarfile": aws_templates.PACKAGE_JAR,
            "pyFiles": aws_templates.PACKAGE_PYTHON,
        },
    }
    job_group = {"PropertyGroupId": app_properties.JOB_GROUP, "PropertyMap": {"job": job}}
    return [run_options, job_group, *app_properties.property_groups(sections)]


def service_options(settings) -> list[str]:
    """What Managed Flink sets from the application's configuration instead of the job
    (docs/aws.md): checkpoints (the template's CUSTOM interval; storage the service's own),
    parallelism, and its RocksDB state backend."""
    options = {
        "execution.checkpointing.interval": f"{settings.flink.bounded_checkpoint_interval_s} s",
        "execution.checkpointing.dir": settings.flink.checkpoint_dir,
        "parallelism.default": str(settings.flink.parallelism),
        "state.backend.type": "rocksdb",
    }
    return [f"-D{key}={value}" for key, value in options.items()]


def run_package(app: Path, props: Path, log: Path, service: list[str]) -> None:
    """`flink run` with the run options, as the service does; `--bounded` so it ends."""
    import pyflink

    flink_home = Path(pyflink.__file__).parent
    options = {g["PropertyGroupId"]: g["PropertyMap"] for g in json.loads(props.read_text())}[
        app_properties.RUN_OPTIONS_GROUP
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENAI_APM_")}
    env |= {
        "FLINK_HOME": str(flink_home),
        app_properties.ENV_VAR: str(props),
        # the TaskManager's Python workers (none unless a job has Python UDFs)
        "PYFLINK_CLIENT_EXECUTABLE": sys.executable,
    }
    command = [
        str(flink_home / "bin" / "flink"),
        "run",
        "-t",
        "local",
        *service,
        "-pyexec",
        sys.executable,
        "-pyclientexec",
        sys.executable,
        "-py",
        str(app / options["python"]),
        "-pyfs",
        str(app / options["pyFiles"]),
        "-j",
        str(app / options["jarfile"]),
        "--bounded",
    ]
    with log.open("wb") as out:
        result = subprocess.run(
            command, cwd=app, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=RUN_TIMEOUT_S
        )
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
    assert result.returncode == 0, f"packaged run failed:\n{tail}"


def same_doubles(value):
    """A row with every double rounded to 12 significant digits. A sum of doubles depends on
    how its additions are grouped, and two runs of one job on one input can group them
    differently (most likely: local pre-aggregation flushes partial sums on checkpoint
    barriers, whose timing differs); the `all` job's cost_usd differed in the last bit,
    0.38891217999999994 vs 0.3889121799999999."""
    if isinstance(value, float):
        return float(f"{value:.12g}")
    if isinstance(value, dict):
        return {k: same_doubles(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(same_doubles(v) for v in value)
    return value


def topic_rows(settings) -> dict[str, Counter]:
    existing = kafka_io_topics(settings)
    out = {}
    for name, topic in vars(settings.topics).items():
        if name in SHARED_TOPICS or topic not in existing:
            continue
        rows = kafka_io.consume(settings.kafka, topic, until_end=True)
        out[name] = Counter(
            # None: an upsert topic's tombstone
            None if r is None else json.dumps(same_doubles(json.loads(r)), sort_keys=True)
            for r in rows
        )
    return out


def kafka_io_topics(settings) -> set[str]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(**kafka_io.client_args(settings.kafka))
    try:
        return set(consumer.topics())
    finally:
        consumer.close()


def table_rows(tables_path: str) -> dict[str, Counter]:
    import duckdb

    out = {}
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for table in sorted(p for p in Path(tables_path).iterdir() if p.is_dir()):
        # committed Parquet files: compaction names them compacted-part-*; in-progress and
        # marker files start with '.' or '_' (docs/sinks.md)
        files = [f for f in table.rglob("*") if f.is_file() and not f.name.startswith((".", "_"))]
        if not files:
            continue
        rows = con.sql(
            f"SELECT * FROM read_parquet('{table}/*/*/[!._]*', hive_partitioning = true)"
        ).fetchall()
        out[table.name] = Counter(repr(same_doubles(r)) for r in rows)
    return out


def differences(got: dict[str, Counter], expected: dict[str, Counter]) -> str:
    lines = [f"topics only in one run: {sorted(set(got) ^ set(expected))}"]
    for name in sorted(set(got) & set(expected)):
        extra, missing = got[name] - expected[name], expected[name] - got[name]
        if extra or missing:
            lines.append(
                f"{name}: packaged only {list(extra)[:2]}; submit only {list(missing)[:2]}"
            )
    return "\n".join(lines)


@pytest.mark.parametrize(
    "job",
    [
        # PERCENTILE (Flink 2.0+): the reason the package needs the FLINK-2_2 runtime
        "latency",
        # what the template deploys by default; its plan takes minutes to build on 2 busy
        # cores, so it runs with the longer tests (make soak)
        pytest.param(aws_templates.DEFAULT_JOB, marks=pytest.mark.soak),
    ],
)
def test_the_packaged_entry_point_gives_the_rows_of_genai_apm_submit(
    job, settings, package, tmp_path, monkeypatch
):
    from tests.integration.faults import in_order_stream, settings_env

    # in event-time order, in one partition: both runs read the same records in the same
    # order, so no event is late in either
    events = in_order_stream(600, seed=21)
    kafka_io.ensure_topics(settings.kafka, [settings.topics.invocations], partitions=1)
    kafka_io.produce_json(settings.kafka, settings.topics.invocations, events)

    # genai-apm submit JOB --bounded, its settings as GENAI_APM_* variables
    submitted = per_run(settings, "submit", tmp_path)
    for name, value in settings_env(
        submitted, ("kafka", "topics", "flink", "output", "stack")
    ).items():
        monkeypatch.setenv(name, value)
    assert cli.main(["submit", job, "--bounded"]) == 0

    packaged = per_run(settings, "pkg", tmp_path)
    props = tmp_path / "application_properties.json"
    props.write_text(json.dumps(properties(packaged, job)), encoding="utf-8")
    run_package(package, props, tmp_path / "package-run.log", service_options(packaged))
    # the job left the service's options alone, and said so
    log = (tmp_path / "package-run.log").read_text(errors="replace")
    assert "the service sets execution.checkpointing.interval;" in log
    assert "the service sets parallelism.default;" in log

    expected, got = topic_rows(submitted), topic_rows(packaged)
    assert sum(expected.get("latency", Counter()).values()) > 0, "the job wrote no latency rows"
    assert got == expected, differences(got, expected)
    expected_tables = table_rows(submitted.output.tables_path)
    assert expected_tables, "the job wrote no Parquet tables"
    assert table_rows(packaged.output.tables_path) == expected_tables
