"""Prompt and response bodies through the real ingest job on the session's Kafka broker.

Off (the default): no prompt or response text in ANY output: topics, tables, dead letters.
On: the bodies topic and table hold each call's prompt and response, equal to redact() of
the originals (computed here, independently of the job), and no email, phone number or key
survives anywhere."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from genai_apm.jobs import ingest
from genai_apm.kafka import io as kafka_io
from genai_apm.privacy import redact
from tests.unit.test_bodies import (
    ANSWER_TEXT,
    INVOCATIONS,
    PROMPT_TEXT,
    SECRETS,
    bedrock_log_with_text,
    otlp_request_with_text,
    redacted,
)

pytestmark = pytest.mark.integration
TAG = "7f3a"  # in every prompt and answer of this test, and nowhere else


def _bytes(doc) -> bytes:
    return json.dumps(doc).encode()


def _records() -> tuple[dict[str, list[bytes]], list[dict], dict]:
    """(payloads per format, the Bedrock logs, the OTLP request), bad records included."""
    logs = [bedrock_log_with_text(i) for i in range(6)]
    negative = json.loads(json.dumps(logs[0]))
    negative["requestId"] = "negative-tokens"
    negative["input"]["inputTokenCount"] = -3  # rejected: its dead letter must hold no text
    request = otlp_request_with_text()
    bad_span = json.loads(json.dumps(request))
    bad_span["resourceSpans"][0]["scopeSpans"][0]["spans"][1]["spanId"] = "xyz"
    payloads = {
        "bedrock": [*map(_bytes, logs), _bytes(negative), _bytes(logs[1])[:-30]],
        "otlp-json": [_bytes(request), _bytes(bad_span)],
    }
    return payloads, logs, request


def _run(settings, unique: str, tmp_path: Path, store_bodies: bool):
    topics = {fmt: f"it.{unique}.{fmt}" for fmt in ("bedrock", "otlp-json")}
    s = settings.replace(
        ingest={"sources": tuple(f"{t}={fmt}" for fmt, t in topics.items())},
        topics={
            "invocations": f"it.{unique}.invocations",
            "spans": f"it.{unique}.spans",
            "deadletter": f"it.{unique}.deadletter",
            "pipeline": f"it.{unique}.pipeline",
            "bodies": f"it.{unique}.bodies",
        },
        privacy={"store_bodies": store_bodies},
        output={"tables_path": str(tmp_path / "tables")},
    )
    out = s.topics
    outputs = [out.invocations, out.spans, out.deadletter, out.pipeline, out.bodies]
    kafka_io.ensure_topics(s.kafka, [*topics.values(), *outputs])
    payloads, logs, request = _records()
    for fmt, values in payloads.items():
        kafka_io.produce_raw(s.kafka, topics[fmt], values)
    ingest.run(s, bounded=True, wait=True)
    written = {t: list(kafka_io.consume(s.kafka, t, until_end=True)) for t in outputs}
    return s, written, logs, request


def _files_text(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file())


def test_bodies_off_no_body_text_in_any_output(settings, unique, tmp_path):
    s, written, _, _ = _run(settings, unique, tmp_path, store_bodies=False)
    assert written[s.topics.invocations] and written[s.topics.spans]
    dead = [json.loads(v) for v in written[s.topics.deadletter]]
    assert len(dead) == 3  # negative tokens, truncated log, bad span id
    assert written[s.topics.bodies] == []
    everything = b"".join(v for values in written.values() for v in values)
    everything += _files_text(Path(s.output.tables_path))
    assert TAG.encode() not in everything
    for secret in SECRETS:
        assert secret.encode() not in everything
    # the dead letters stay diagnosable: ids and token counts as sent, bodies marked removed
    by_reason = {d["reason"]: d for d in dead}
    negative = next(d for r, d in by_reason.items() if "input_tokens" in r)
    payload = json.loads(negative["payload"])
    assert payload["requestId"] == "negative-tokens"
    assert payload["input"]["inputTokenCount"] == -3
    assert "store_bodies is off" in payload["genai_apm_bodies"]
    truncated = next(d for r, d in by_reason.items() if "not JSON" in r)
    assert truncated["payload"].startswith("[payload withheld by genai-apm")
    assert not (Path(s.output.tables_path) / "bodies").exists()


def test_bodies_on_redacted_in_their_own_outputs(settings, unique, tmp_path):
    s, written, logs, request = _run(settings, unique, tmp_path, store_bodies=True)
    bodies = [json.loads(v) for v in written[s.topics.bodies]]
    # computed here: what the job must have written for each call
    want = {}
    for log in logs:
        response = log["output"].get("outputBodyJson")
        want[log["requestId"]] = (
            redacted(log["input"]["inputBodyJson"]),
            None if response is None else redacted(response),
        )
    want["negative-tokens"] = want[logs[0]["requestId"]]  # its body is kept; its event is not
    spans = request["resourceSpans"][0]["scopeSpans"][0]["spans"]
    # OTLP: both spans of the good request (the bad one was refused whole); no response id
    # in these spans, so the request id is the span id
    assert {b["request_id"] for b in bodies} == {*want, spans[0]["spanId"], spans[1]["spanId"]}
    for body in bodies:
        if body["source_format"] == "bedrock":
            prompt, response = want[body["request_id"]]
            assert json.loads(body["prompt"]) == prompt
            assert (None if body["response"] is None else json.loads(body["response"])) == (
                response
            )
        elif body["span_id"] == spans[0]["spanId"]:  # content attributes, JSON text
            attributes = {a["key"]: a["value"].get("stringValue") for a in spans[0]["attributes"]}
            sides = (("prompt", "gen_ai.input.messages"), ("response", "gen_ai.output.messages"))
            for side, key in sides:
                got = json.loads(json.loads(body[side])[key])
                assert got == redacted(json.loads(attributes[key])), side
        else:  # content events
            assert json.loads(body["prompt"]) == {
                "event gen_ai.content.prompt": [{"gen_ai.prompt": redact(PROMPT_TEXT)}]
            }
            assert json.loads(body["response"]) == {
                "event gen_ai.content.completion": [{"gen_ai.completion": redact(ANSWER_TEXT)}]
            }
    assert any(redact(PROMPT_TEXT) in b["prompt"] for b in bodies)
    assert any(redact(ANSWER_TEXT) in (b["response"] or "") for b in bodies)
    # the same rows in the Parquet table
    con = duckdb.connect()
    table = con.sql(
        f"SELECT request_id, prompt, response FROM read_parquet("
        f"'{s.output.tables_path}/bodies/*/*/[!._]*', hive_partitioning = true)"
    ).fetchall()
    assert sorted(table) == sorted((b["request_id"], b["prompt"], b["response"]) for b in bodies)
    # nothing unredacted anywhere; body text only in the bodies outputs and the dead letters
    everything = b"".join(v for values in written.values() for v in values)
    everything += _files_text(Path(s.output.tables_path))
    for secret in SECRETS:
        assert secret.encode() not in everything
    for topic in (s.topics.invocations, s.topics.spans, s.topics.pipeline):
        assert TAG.encode() not in b"".join(written[topic])
    dead = [json.loads(v) for v in written[s.topics.deadletter]]
    assert len(dead) == 3
    assert any("[EMAIL]" in d["payload"] for d in dead)
    assert len(INVOCATIONS) > 6
