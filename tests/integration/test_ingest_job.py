"""Good and bad records of all three input formats go through Kafka into the ingest job:
every good record comes out normalised, every bad one lands in the dead-letter topic with
its reason, and the counts match exactly."""

from __future__ import annotations

import base64
import json
from collections import Counter

import pytest

from genai_apm.adapters import decode
from genai_apm.adapters.bedrock import bedrock_log_from_invocation
from genai_apm.adapters.bodies import deadletter_payload
from genai_apm.adapters.otlp import otlp_from_spans
from genai_apm.jobs import ingest
from genai_apm.kafka import io as kafka_io
from genai_apm.traffic import TrafficSpec, traffic

pytestmark = pytest.mark.integration


def _bytes(obj) -> bytes:
    return json.dumps(obj).encode()


def test_three_formats_to_native_topics_and_dead_letters(settings, unique):
    records = list(traffic(TrafficSpec(count=600, agent_share=0.3, rate_per_s=20, seed=5)))
    invocations = [r.event for r in records if r.contract == "InvocationEvent"]
    spans = [r.event for r in records if r.contract == "SpanEvent"]
    native_events, bedrock_events = invocations[:300], invocations[300:]
    assert spans, "the traffic must contain agent traces"

    good_native = [_bytes(e) for e in native_events]
    good_bedrock = [_bytes(bedrock_log_from_invocation(e)) for e in bedrock_events]
    good_otlp = [_bytes(otlp_from_spans(spans[i : i + 25])) for i in range(0, len(spans), 25)]

    valid_log = bedrock_log_from_invocation(bedrock_events[0])
    negative = json.loads(json.dumps(valid_log))
    negative["input"]["inputTokenCount"] = -3
    bad_span_request = otlp_from_spans([dict(spans[0], span_id="")])
    # (topic key, payload, expected reason fragment)
    bad = [
        ("native", b'{"event_time": 1767225600000, "model_id": "m"', "not a JSON object"),
        ("native", b"\xff\xfe\x00garbage", "not a JSON object"),
        (
            "native",
            _bytes(dict(native_events[0], input_tokens="many")),
            "input_tokens: not a valid long",
        ),
        ("native", _bytes(dict(native_events[0], latency_ms=-5)), "latency_ms: below 0"),
        (
            "native",
            _bytes({k: v for k, v in native_events[0].items() if k != "model_id"}),
            "model_id: required",
        ),
        ("bedrock", b"not json at all", ""),
        ("bedrock", _bytes({"schemaType": "SomethingElse"}), ""),
        ("bedrock", _bytes(negative), ""),
        ("otlp", b"[1, 2", ""),
        ("otlp", _bytes({"resourceSpans": "nope"}), ""),
        ("otlp", _bytes(bad_span_request), ""),
    ]
    topics = {fmt: f"it.{unique}.{fmt}" for fmt in ("native", "bedrock", "otlp")}
    s = settings.replace(
        ingest={
            "sources": (
                f"{topics['native']}=native",
                f"{topics['bedrock']}=bedrock",
                f"{topics['otlp']}=otlp-json",
            )
        }
    )
    out = s.topics
    kafka_io.ensure_topics(
        s.kafka, [*topics.values(), out.invocations, out.spans, out.deadletter, out.pipeline]
    )
    payloads = {"native": good_native, "bedrock": good_bedrock, "otlp": good_otlp}
    for fmt, payload, _ in bad:
        payloads[fmt] = [*payloads[fmt], payload]
    for fmt, values in payloads.items():
        kafka_io.produce_raw(s.kafka, topics[fmt], values)

    ingest.run(s, bounded=True, wait=True)

    # what the adapters make of the good records, computed outside Flink
    expected_inv, expected_spans = [], []
    for fmt, values in (
        ("native", good_native),
        ("bedrock", good_bedrock),
        ("otlp-json", good_otlp),
    ):
        for value in values:
            for contract, event in decode(fmt, value):
                (expected_inv if contract == "InvocationEvent" else expected_spans).append(event)

    got_inv = kafka_io.consume_json(s.kafka, out.invocations, until_end=True)
    got_spans = kafka_io.consume_json(s.kafka, out.spans, until_end=True)
    dead = kafka_io.consume_json(s.kafka, out.deadletter, until_end=True)

    assert Counter(e["request_id"] for e in got_inv) == Counter(
        e["request_id"] for e in expected_inv
    )
    assert Counter((e["trace_id"], e["span_id"]) for e in got_spans) == Counter(
        (e["trace_id"], e["span_id"]) for e in expected_spans
    )
    by_id = {e["request_id"]: e for e in expected_inv}
    for row in got_inv:  # values survive normalisation, not just ids
        want = by_id[row["request_id"]]
        for field in (
            "model_id",
            "app_id",
            "status",
            "error_class",
            "input_tokens",
            "output_tokens",
            "latency_ms",
            "finish_reason",
        ):
            assert row[field] == want.get(field), (row["request_id"], field)

    assert len(dead) == len(bad)
    # the payload as sent, with Bedrock and OTLP bodies removed (privacy.store_bodies is off)
    formats = {"native": "native", "bedrock": "bedrock", "otlp": "otlp-json"}
    bad_by_payload = {
        deadletter_payload(formats[fmt], payload, store_bodies=False): (fmt, reason)
        for fmt, payload, reason in bad
    }
    for record in dead:
        payload = base64.b64decode(record["payload_base64"])
        fmt, reason = bad_by_payload[payload]  # the kept bytes, whatever the format
        assert record["reason"], record
        assert reason in record["reason"], (record["reason"], reason)
        assert record["source"].startswith(topics[fmt] + "/")

    metrics = kafka_io.consume_json(s.kafka, out.pipeline, until_end=True)
    accepted, rejected = Counter(), Counter()
    for m in metrics:
        accepted[m["source_topic"]] += m["accepted"]
        rejected[m["source_topic"]] += m["deadletters"]
    assert sum(accepted.values()) == len(got_inv) + len(got_spans)
    assert rejected == Counter(
        {topics[fmt]: n for fmt, n in Counter(fmt for fmt, _, _ in bad).items()}
    )
