"""`generate --to kinesis` and `replay` against the local stack: what goes in comes back."""

from __future__ import annotations

import json
import subprocess
import sys

import boto3
import pytest

from genai_apm.adapters import decode
from genai_apm.kafka import io as kafka_io

pytestmark = pytest.mark.integration


def _cli(settings, *args: str) -> subprocess.CompletedProcess:
    env = {
        "PATH": "/usr/bin:/bin",
        "GENAI_APM_KAFKA_BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
        "GENAI_APM_AWS_ENDPOINT_URL": settings.aws.endpoint_url,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
    }
    return subprocess.run(
        [sys.executable, "-m", "genai_apm.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_generate_to_kinesis_in_bedrock_format(settings, unique):
    kinesis = boto3.client(
        "kinesis",
        endpoint_url=settings.aws.endpoint_url,
        region_name=settings.aws.region,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    stream = f"it-{unique}"
    kinesis.create_stream(StreamName=stream, ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName=stream)
    result = _cli(
        settings,
        "generate",
        "--count",
        "1200",
        "--format",
        "bedrock",
        "--to",
        "kinesis",
        "--stream",
        stream,
    )
    assert result.returncode == 0, result.stderr
    shard = kinesis.list_shards(StreamName=stream)["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(
        StreamName=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records = []
    while iterator and len(records) < 1200:
        answer = kinesis.get_records(ShardIterator=iterator, Limit=1000)
        records += answer["Records"]
        iterator = answer.get("NextShardIterator") if answer["Records"] else None
    assert len(records) == 1200  # more than one PutRecords batch of 500
    ids = {decode("bedrock", r["Data"])[0][1]["request_id"] for r in records}
    assert len(ids) == 1200


def test_replay_a_file_to_kafka(settings, unique, tmp_path):
    out = tmp_path / "gen"
    assert (
        _cli(settings, "generate", "--count", "500", "--to", "file", "--out", str(out)).returncode
        == 0
    )
    topic = f"it.{unique}.replayed"
    result = _cli(
        settings, "replay", str(out / "invocations.jsonl"), "--format", "native", "--topic", topic
    )
    assert result.returncode == 0, result.stderr
    sent = [json.loads(line) for line in (out / "invocations.jsonl").read_text().splitlines()]
    got = kafka_io.consume_json(settings.kafka, topic, until_end=True)
    assert sorted(e["request_id"] for e in got) == sorted(e["request_id"] for e in sent)
