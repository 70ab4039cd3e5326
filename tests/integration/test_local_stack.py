"""The local stack: real broker and moto answer; clashes give one clear line."""

from __future__ import annotations

import subprocess
import sys

import boto3
import pytest

from genai_apm.errors import GenaiApmError
from genai_apm.kafka import io as kafka_io
from genai_apm.stack.local import LocalStack

pytestmark = pytest.mark.integration


def test_broker_round_trip(settings, unique):
    topic = f"it.{unique}.roundtrip"
    kafka_io.ensure_topics(settings.kafka, [topic], partitions=3)
    sent = [{"n": i} for i in range(50)]
    assert kafka_io.produce_json(settings.kafka, topic, sent) == 50
    got = kafka_io.consume_json(settings.kafka, topic, until_end=True)
    assert sorted(r["n"] for r in got) == list(range(50))


def test_moto_serves_s3_cloudwatch_kinesis(stack, unique):
    args = dict(
        endpoint_url=stack.moto.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    s3 = boto3.client("s3", **args)
    s3.create_bucket(Bucket=f"it-{unique}")
    s3.put_object(Bucket=f"it-{unique}", Key="k", Body=b"v")
    assert s3.get_object(Bucket=f"it-{unique}", Key="k")["Body"].read() == b"v"
    cw = boto3.client("cloudwatch", **args)
    cw.put_metric_data(
        Namespace=f"it/{unique}", MetricData=[{"MetricName": "m", "Value": 1.0, "Unit": "Count"}]
    )
    assert cw.list_metrics(Namespace=f"it/{unique}")["Metrics"][0]["MetricName"] == "m"
    kinesis = boto3.client("kinesis", **args)
    kinesis.create_stream(StreamName=f"it-{unique}", ShardCount=1)
    names = kinesis.list_streams()["StreamNames"]
    assert f"it-{unique}" in names


def test_status_reports_running_services(stack):
    status = stack.status()
    assert status["kafka"].startswith("running") and stack.kafka.bootstrap in status["kafka"]
    assert status["moto"].startswith("running")


def test_second_stack_on_taken_port_fails_with_one_line(stack_settings, tmp_path):
    other = stack_settings.replace(stack={"state_dir": str(tmp_path / "other")})
    with pytest.raises(GenaiApmError, match=rf"port {other.stack.kafka_port} .* in use"):
        LocalStack(other).up()


def test_cli_port_clash_is_one_line_on_stderr(stack_settings, tmp_path):
    env = {
        "PATH": "/usr/bin:/bin",
        "GENAI_APM_STACK_STATE_DIR": str(tmp_path / "cli"),
        "GENAI_APM_STACK_KAFKA_PORT": str(stack_settings.stack.kafka_port),
    }
    result = subprocess.run(
        [sys.executable, "-m", "genai_apm.cli", "stack", "up"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert "in use" in result.stderr and "Traceback" not in result.stderr


def test_submit_with_a_missing_input_topic_is_one_line(settings, unique):
    env = {
        "PATH": "/usr/bin:/bin",
        "GENAI_APM_KAFKA_BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
        "GENAI_APM_TOPICS_INVOCATIONS": f"it.{unique}.nothing-here",
    }
    result = subprocess.run(
        [sys.executable, "-m", "genai_apm.cli", "submit", "latency"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert f"input topic 'it.{unique}.nothing-here' does not exist" in result.stderr
