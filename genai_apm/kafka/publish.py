"""Getting records to where the pipeline reads them: encodings (native JSON, Bedrock logs,
OTLP JSON) and outputs (Kafka, Kinesis, files). Used by `generate` and `replay`."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from genai_apm.adapters import FORMATS
from genai_apm.errors import GenaiApmError
from genai_apm.settings.config import Settings

OTLP_BATCH = 50  # spans per ExportTraceServiceRequest, like a collector's batch processor


def _json(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def chat_span(event: dict) -> dict:
    """A model-call span for an invocation that came without one (plain, non-agent calls).

    Ids derive from the request id, so the same event always becomes the same span."""
    digest = hashlib.sha256(str(event["request_id"]).encode()).hexdigest()
    latency = event.get("latency_ms") or 0.0
    start = int(event["event_time"])
    return {
        "schema_version": 1,
        "trace_id": digest[:32],
        "span_id": digest[32:48],
        "parent_span_id": None,
        "name": f"chat {event['model_id']}",
        "kind": "CLIENT",
        "start_time": start,
        "end_time": start + int(round(latency)),
        "duration_ms": float(int(round(latency))),
        "status_code": "ERROR" if event.get("status") == "error" else "UNSET",
        "status_message": None,
        "service_name": event.get("app_id"),
        "operation": "chat",
        "provider": event.get("provider"),
        "model_id": event["model_id"],
        "response_model": event["model_id"],
        "agent_name": None,
        "agent_id": None,
        "tool_name": None,
        "tool_call_id": None,
        "conversation_id": event.get("session_id"),
        "input_tokens": event.get("input_tokens"),
        "output_tokens": event.get("output_tokens"),
        "cache_read_input_tokens": event.get("cache_read_input_tokens"),
        "finish_reasons": event.get("finish_reason"),
        "error_type": event.get("error_type"),
    }


def encode(records: Iterable, fmt: str) -> Iterator[tuple[str, bytes]]:
    """(stream, payload) pairs; stream is invocations, spans, bedrock or otlp.

    native: each record as its contract's JSON. bedrock: each InvocationEvent as a model
    invocation log (spans have no Bedrock form and are skipped). otlp-json: spans batched
    into ExportTraceServiceRequests; invocations without a span get a chat span."""
    from genai_apm.adapters.bedrock import bedrock_log_from_invocation
    from genai_apm.adapters.otlp import otlp_from_spans

    if fmt not in FORMATS:
        raise GenaiApmError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    batch: list[dict] = []
    for contract, event in records:
        if fmt == "native":
            yield ("invocations" if contract == "InvocationEvent" else "spans"), _json(event)
        elif fmt == "bedrock":
            if contract == "InvocationEvent":
                yield "bedrock", _json(bedrock_log_from_invocation(event))
        else:
            if contract == "SpanEvent":
                batch.append(event)
            elif event.get("span_id") is None:  # agent calls already have their chat span
                batch.append(chat_span(event))
            if len(batch) >= OTLP_BATCH:
                yield "otlp", _json(otlp_from_spans(batch))
                batch = []
    if batch:
        yield "otlp", _json(otlp_from_spans(batch))


def topic_for(settings: Settings, stream: str) -> str:
    """Where each stream goes in Kafka: native topics, or the ingest source of its format."""
    if stream == "invocations":
        return settings.topics.invocations
    if stream == "spans":
        return settings.topics.spans
    fmt = {"bedrock": "bedrock", "otlp": "otlp-json"}[stream]
    for entry in settings.ingest.sources:
        topic, _, source_fmt = entry.rpartition("=")
        if source_fmt == fmt:
            return topic
    raise GenaiApmError(f"no ingest.sources entry reads {fmt}; add TOPIC={fmt} or pass --topic")


class KafkaOutput:
    def __init__(self, settings: Settings, topic: str | None = None):
        from kafka import KafkaProducer

        from genai_apm.kafka.io import client_args, kafka_errors

        self.settings, self.topic = settings, topic
        self._errors = kafka_errors(settings.kafka)
        with self._errors:
            self.producer = KafkaProducer(
                **client_args(settings.kafka), acks="all", linger_ms=20, batch_size=256 * 1024
            )
        self.sent = 0

    def topics(self, streams: Iterable[str]) -> list[str]:
        return [self.topic or topic_for(self.settings, s) for s in streams]

    def send(self, stream: str, payload: bytes) -> None:
        self.producer.send(self.topic or topic_for(self.settings, stream), payload)
        self.sent += 1

    def close(self) -> str:
        from genai_apm.kafka.io import kafka_errors

        with kafka_errors(self.settings.kafka):
            self.producer.flush(timeout=120)
            self.producer.close(timeout=10)
        return f"Kafka at {self.settings.kafka.bootstrap_servers}"


class KinesisOutput:
    """PutRecords in batches of 500 (the API's limit); failed entries are retried."""

    def __init__(self, settings: Settings, stream_name: str):
        from genai_apm.aws import client

        # endpoint, region and credentials from [aws], as every other AWS call
        self.client = client(settings.aws, "kinesis")
        self.stream_name, self.pending, self.sent = stream_name, [], 0

    def send(self, stream: str, payload: bytes) -> None:
        key = hashlib.md5(payload).hexdigest()  # noqa: S324 - spreads records, not security
        self.pending.append({"Data": payload, "PartitionKey": key})
        if len(self.pending) == 500:
            self._flush()

    def _flush(self, attempts: int = 5) -> None:
        import time

        entries = self.pending
        for attempt in range(attempts):
            if not entries:
                break
            answer = self.client.put_records(StreamName=self.stream_name, Records=entries)
            results = answer["Records"]
            entries = [e for e, r in zip(entries, results, strict=True) if "ErrorCode" in r]
            self.sent += len(results) - len(entries)
            if entries:
                time.sleep(0.2 * 2**attempt)
        if entries:
            raise GenaiApmError(f"Kinesis refused {len(entries)} records after {attempts} tries")
        self.pending = []

    def close(self) -> str:
        self._flush()
        return f"Kinesis stream {self.stream_name}"


class FileOutput:
    """One JSON-lines file per stream under a directory (gzip when the name ends .gz)."""

    def __init__(self, directory: str):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.files: dict = {}
        self.sent = 0

    def send(self, stream: str, payload: bytes) -> None:
        if stream not in self.files:
            self.files[stream] = open(self.dir / f"{stream}.jsonl", "wb")  # noqa: SIM115
        self.files[stream].write(payload + b"\n")
        self.sent += 1

    def close(self) -> str:
        for f in self.files.values():
            f.close()
        return f"{self.dir} ({', '.join(sorted(f'{s}.jsonl' for s in self.files))})"


def read_lines(path: str, settings: Settings) -> Iterator[bytes]:
    """Every non-empty line of a file, of every file under a directory (sorted), or of every
    object under an s3:// prefix; .gz files are decompressed. A missing local path fails
    here, before anything (a Kafka producer, say) is set up to receive the lines."""
    if path.startswith("s3://"):
        return _read_s3(path, settings)
    root = Path(path)
    if not root.exists():
        raise GenaiApmError(f"{path} does not exist")
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
    return _read_files(files)


def _read_files(files: list[Path]) -> Iterator[bytes]:
    for file in files:
        opener = gzip.open if file.suffix == ".gz" else open
        with opener(file, "rb") as f:
            for line in f:
                if line.strip():
                    yield line.rstrip(b"\r\n")


def _read_s3(url: str, settings: Settings) -> Iterator[bytes]:
    import io

    import boto3

    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    kw = {"region_name": settings.aws.region}
    if settings.aws.endpoint_url:
        kw["endpoint_url"] = settings.aws.endpoint_url
    s3 = boto3.client("s3", **kw)
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    keys = sorted(o["Key"] for page in pages for o in page.get("Contents", []))
    if not keys:
        raise GenaiApmError(f"no objects under {url}")
    for key in keys:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        if key.endswith(".gz"):
            body = gzip.decompress(body)
        for line in io.BytesIO(body):
            if line.strip():
                yield line.rstrip(b"\r\n")
