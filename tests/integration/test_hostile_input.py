"""Hostile records through the ingest job: oversized, deeply nested, huge attribute maps,
invalid UTF-8, timestamps in 1970 and past 9999, negative token counts, among good records
of all three formats. The job runs to its end; every record the reference (the adapters,
then the Python contract validator) refuses is in the dead-letter topic with that reason,
every one it accepts is in the native topics."""

from __future__ import annotations

import base64
import json
from collections import Counter

import pytest

from genai_apm.adapters import AdapterError, decode
from genai_apm.adapters.bedrock import bedrock_log_from_invocation
from genai_apm.adapters.bodies import deadletter_payload
from genai_apm.adapters.otlp import otlp_from_spans
from genai_apm.jobs import ingest
from genai_apm.kafka import io as kafka_io
from genai_apm.schemas import validate
from genai_apm.schemas.invocation import INVOCATION_V1
from genai_apm.schemas.span import SPAN_V1
from genai_apm.traffic import TrafficSpec, traffic

pytestmark = pytest.mark.integration

CONTRACTS = {c.name: c for c in (INVOCATION_V1, SPAN_V1)}


def _json(obj) -> bytes:
    return json.dumps(obj).encode()


def _deep(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


def hostile_records(invocations: list[dict], spans: list[dict]) -> dict[str, list[bytes]]:
    e = invocations[0]
    native = [
        _json(dict(e, request_id="t-1970", event_time=0)),
        _json(dict(e, request_id="t-1970-text", event_time="1970-01-01T00:00:00Z")),
        _json(dict(e, request_id="t-9999", event_time="9999-12-31T23:59:59.999Z")),
        _json(dict(e, request_id="t-10000", event_time="10000-01-01T00:00:00Z")),
        _json(dict(e, request_id="t-far", event_time=253402300800000)),
        _json(dict(e, request_id="neg-in", input_tokens=-5)),
        _json(dict(e, request_id="neg-out", output_tokens=-(2**62))),
        # oversized: 300 kB of prompt text, once valid and once without a request id
        _json(dict(e, request_id="big", prompt="é" * 150_000)),
        _json({k: v for k, v in dict(e, prompt="x" * 300_000).items() if k != "request_id"}),
        _json(dict(e, request_id="wide", attributes={f"k{i}": i for i in range(20_000)})),
        _json(dict(e, request_id="deep-ok", extra="x"))[:-1]
        + b', "n": '
        + _deep(900).encode()
        + b"}",
        _json(dict(e, request_id="deep"))[:-1] + b', "n": ' + _deep(5_000).encode() + b"}",
        b"\xff\xfe" + _json(dict(e, request_id="bom")),
        _json(dict(e, request_id="utf8"))[:-1] + b', "note": "caf\xc3"}',
        b'{"request_id": "r", "event_time": ' + b"9" * 2_000 + b"}",
    ]
    log = bedrock_log_from_invocation(invocations[1])
    negative = json.loads(json.dumps(log))
    negative["input"]["inputTokenCount"] = -7
    far = dict(log, timestamp="9999-12-31T23:59:59Z")
    beyond = dict(log, timestamp="10000-01-01T00:00:00Z")
    epoch = dict(log, timestamp="1970-01-01T00:00:00Z")
    bedrock = [_json(negative), _json(far), _json(beyond), _json(epoch)]
    bedrock.append(_json(log)[:-1] + b', "x": ' + _deep(5_000).encode() + b"}")
    bedrock.append(_json(log).replace(b'"input"', b'"input\xed\xa0\x80"', 1))
    request = otlp_from_spans(spans[:3])
    wide = json.loads(json.dumps(request))
    span = wide["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    span["attributes"] += [
        {"key": f"attr.{i}", "value": {"stringValue": "v" * 20}} for i in range(10_000)
    ]
    deep_attribute = json.loads(json.dumps(request))
    deep_attribute["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"].append(
        {"key": "deep", "value": {"stringValue": "@DEEP@"}}
    )
    deep_text = _json(deep_attribute).replace(b'{"stringValue": "@DEEP@"}', _deep(3_000).encode())
    otlp = [_json(wide), deep_text, b"\xc0\xaf" + _json(request)]
    return {"native": native, "bedrock": bedrock, "otlp-json": otlp}


def expected_outcome(fmt: str, payload: bytes) -> tuple[list[dict], list[str]]:
    """(accepted events, dead-letter reasons) as the reference computes them, no Flink."""
    if fmt == "native":
        reason = validate.reason(INVOCATION_V1, validate.parse(payload))
        return ([], [reason]) if reason else ([{"contract": "InvocationEvent"}], [])
    try:
        events = decode(fmt, payload)
    except AdapterError as e:
        return [], [str(e)]
    accepted, reasons = [], []
    for contract, event in events:
        reason = validate.reason(CONTRACTS[contract], event)
        (reasons.append(reason) if reason else accepted.append({"contract": contract}))
    return accepted, reasons


def test_hostile_records_are_dead_lettered_with_reasons_and_good_ones_pass(settings, unique):
    records = list(traffic(TrafficSpec(count=200, agent_share=0.4, rate_per_s=20, seed=8)))
    invocations = [r.event for r in records if r.contract == "InvocationEvent"]
    spans = [r.event for r in records if r.contract == "SpanEvent"]
    good = {
        "native": [_json(e) for e in invocations[2:60]],
        "bedrock": [_json(bedrock_log_from_invocation(e)) for e in invocations[60:90]],
        "otlp-json": [_json(otlp_from_spans(spans[i : i + 10])) for i in range(0, 40, 10)],
    }
    hostile = hostile_records(invocations, spans)
    topics = {fmt: f"it.{unique}.{fmt}" for fmt in good}
    s = settings.replace(
        ingest={"sources": tuple(f"{topics[f]}={f}" for f in good)},
        # the session's other tests read these topics whole: keep this test's output apart
        topics={"spans": f"it.{unique}.spans", "pipeline": f"it.{unique}.pipeline"},
    )
    out = s.topics
    kafka_io.ensure_topics(
        s.kafka, [*topics.values(), out.invocations, out.spans, out.deadletter, out.pipeline]
    )
    want_accepted: Counter = Counter()
    want_reasons: Counter = Counter()
    for fmt in good:
        kafka_io.produce_raw(s.kafka, topics[fmt], good[fmt] + hostile[fmt])
        for payload in good[fmt] + hostile[fmt]:
            accepted, reasons = expected_outcome(fmt, payload)
            want_accepted[topics[fmt]] += len(accepted)
            # dead letters keep the payload with its bodies removed (store_bodies is off)
            kept = deadletter_payload(fmt, payload, store_bodies=False)
            want_reasons.update((topics[fmt], kept, r) for r in reasons)
    for fmt in good:  # the good records are good, and the hostile set is mostly refused
        assert all(not expected_outcome(fmt, p)[1] for p in good[fmt])
    assert sum(want_reasons.values()) >= 12

    ingest.run(s, bounded=True, wait=True)  # raises if the job failed or kept restarting

    dead = kafka_io.consume_json(s.kafka, out.deadletter, until_end=True)
    got_reasons = Counter(
        (
            d["source"].rsplit("/", 1)[0],
            base64.b64decode(d["payload_base64"]),
            d["reason"],
        )
        for d in dead
    )
    assert got_reasons == want_reasons
    pipeline = kafka_io.consume_json(s.kafka, out.pipeline, until_end=True)
    accepted: Counter = Counter()
    for m in pipeline:
        accepted[m["source_topic"]] += m["accepted"]
    assert accepted == +want_accepted
