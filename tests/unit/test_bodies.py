"""Prompt and response bodies: extracted only when asked for and redacted; removed (or
redacted) in dead-lettered payloads without changing how the record decodes."""

from __future__ import annotations

import copy
import json

import pytest

from genai_apm.adapters import AdapterError, decode
from genai_apm.adapters.bedrock import bedrock_log_from_invocation
from genai_apm.adapters.bodies import MARKER, NOTE_KEY, deadletter_payload
from genai_apm.adapters.otlp import otlp_from_spans
from genai_apm.privacy import redact
from genai_apm.schemas import validate
from genai_apm.schemas.body import BODY_V1
from genai_apm.traffic import TrafficSpec, traffic

RECORDS = list(traffic(TrafficSpec(count=120, agent_share=0.5, rate_per_s=10, seed=11)))
INVOCATIONS = [r.event for r in RECORDS if r.contract == "InvocationEvent"]
SPANS = [r.event for r in RECORDS if r.contract == "SpanEvent"]
CHAT_SPANS = [s for s in SPANS if s["operation"] == "chat"]

# what a real prompt and answer may hold; none of it may reach a metric or an unredacted store
SECRETS = (
    "jane.doe@example.com",
    "+1 (415) 555-0123",
    "sk-proj-Zq8WmX3nT7yRb2LcK5vJ9hP1sD4fG6aE",
    "AKIAIOSFODNN7EXAMPLE",
    "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl",
)
PROMPT_TEXT = (
    "PROMPT-7f3a: my mail is jane.doe@example.com, call +1 (415) 555-0123, "
    "my key is sk-proj-Zq8WmX3nT7yRb2LcK5vJ9hP1sD4fG6aE and AKIAIOSFODNN7EXAMPLE"
)
ANSWER_TEXT = "ANSWER-7f3a: use header Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl"


def redacted(value):
    """Every string redacted, written here rather than taken from the module under test."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redacted(v) for v in value]
    return value


def bedrock_log_with_text(i: int = 0) -> dict:
    """The traffic generator's Bedrock log, with real text where it writes a placeholder."""
    log = bedrock_log_from_invocation(INVOCATIONS[i])
    log["input"]["inputBodyJson"] = {
        "system": [{"text": "You are helpful. Escalate to ops@example.org."}],
        "messages": [{"role": "user", "content": [{"text": PROMPT_TEXT}]}],
    }
    body = log["output"].get("outputBodyJson")
    if isinstance(body, dict) and "output" in body:
        body["output"]["message"]["content"] = [{"text": ANSWER_TEXT}]
    elif isinstance(body, dict):
        body["content"] = [{"type": "text", "text": ANSWER_TEXT}]
    elif isinstance(body, list):
        body[1]["contentBlockDelta"]["delta"]["text"] = ANSWER_TEXT
    return log


def _attribute(key: str, text: str) -> dict:
    return {"key": key, "value": {"stringValue": text}}


INPUT_MESSAGES = [{"role": "user", "parts": [{"type": "text", "content": PROMPT_TEXT}]}]
OUTPUT_MESSAGES = [
    {"role": "assistant", "parts": [{"type": "text", "content": ANSWER_TEXT}]},
]


def otlp_request_with_text() -> dict:
    """An OTLP request of chat spans recording content the 1.37 way (JSON-string attributes)
    and the older way (a gen_ai.content.prompt span event)."""
    request = otlp_from_spans(CHAT_SPANS[:2])
    spans = request["resourceSpans"][0]["scopeSpans"][0]["spans"]
    spans[0]["attributes"] += [
        _attribute("gen_ai.input.messages", json.dumps(INPUT_MESSAGES)),
        _attribute("gen_ai.output.messages", json.dumps(OUTPUT_MESSAGES)),
    ]
    spans[1]["events"] = [
        {
            "name": "gen_ai.content.prompt",
            "timeUnixNano": spans[1]["startTimeUnixNano"],
            "attributes": [_attribute("gen_ai.prompt", PROMPT_TEXT)],
        },
        {
            "name": "gen_ai.content.completion",
            "timeUnixNano": spans[1]["endTimeUnixNano"],
            "attributes": [_attribute("gen_ai.completion", ANSWER_TEXT)],
        },
    ]
    return request


def _bytes(doc) -> bytes:
    return json.dumps(doc).encode()


def _outcome(fmt: str, payload: bytes):
    try:
        return decode(fmt, payload)
    except AdapterError as e:
        return str(e)


def _bodies(fmt: str, payload: bytes) -> list[dict]:
    return [e for c, e in decode(fmt, payload, bodies=True) if c == BODY_V1.name]


# --- extraction -------------------------------------------------------------------------------


def test_without_bodies_nothing_is_extracted():
    for fmt, payload in (
        ("bedrock", _bytes(bedrock_log_with_text())),
        ("otlp-json", _bytes(otlp_request_with_text())),
    ):
        events = decode(fmt, payload)
        assert {c for c, _ in events} <= {"InvocationEvent", "SpanEvent"}
        assert "7f3a" not in json.dumps(events)


@pytest.mark.parametrize("i", range(6))
def test_bedrock_body_is_the_redacted_request_and_response(i):
    log = bedrock_log_with_text(i)
    (body,) = _bodies("bedrock", _bytes(log))
    (invocation,) = [e for c, e in decode("bedrock", _bytes(log)) if c == "InvocationEvent"]
    assert body["request_id"] == invocation["request_id"] == log["requestId"]
    assert body["event_time"] == invocation["event_time"]
    assert (body["source_format"], body["model_id"]) == ("bedrock", invocation["model_id"])
    assert json.loads(body["prompt"]) == redacted(log["input"]["inputBodyJson"])
    response = log["output"].get("outputBodyJson")
    if response is None:  # a failed call has no response body
        assert body["response"] is None
    else:
        assert json.loads(body["response"]) == redacted(response)
    text = body["prompt"] + (body["response"] or "")
    for secret in (*SECRETS, "ops@example.org"):
        assert secret not in text
    assert "PROMPT-7f3a: my mail is [EMAIL], call [PHONE]" in body["prompt"]
    assert validate.reason(BODY_V1, body) is None


def test_otlp_body_per_span_with_content_attributes_and_events():
    request = otlp_request_with_text()
    events = decode("otlp-json", _bytes(request), bodies=True)
    bodies = [e for c, e in events if c == BODY_V1.name]
    invocations = {e["span_id"]: e for c, e in events if c == "InvocationEvent"}
    assert [b["span_id"] for b in bodies] == [s["span_id"] for s in CHAT_SPANS[:2]]
    first, second = bodies
    # JSON text in an attribute stays JSON text, redacted as the structure it holds
    prompt, response = json.loads(first["prompt"]), json.loads(first["response"])
    assert prompt.keys() == {"gen_ai.input.messages"}
    assert json.loads(prompt["gen_ai.input.messages"]) == redacted(INPUT_MESSAGES)
    assert response.keys() == {"gen_ai.output.messages"}
    assert json.loads(response["gen_ai.output.messages"]) == redacted(OUTPUT_MESSAGES)
    assert json.loads(second["prompt"]) == {
        "event gen_ai.content.prompt": [{"gen_ai.prompt": redact(PROMPT_TEXT)}]
    }
    assert json.loads(second["response"]) == {
        "event gen_ai.content.completion": [{"gen_ai.completion": redact(ANSWER_TEXT)}]
    }
    for body in bodies:
        invocation = invocations[body["span_id"]]
        assert body["request_id"] == invocation["request_id"]
        assert body["trace_id"] == invocation["trace_id"]
        assert body["event_time"] == invocation["event_time"]
        assert validate.reason(BODY_V1, body) is None
        for secret in SECRETS:
            assert secret not in body["prompt"] + body["response"]
    # the generator's spans carry no content: no body
    assert _bodies("otlp-json", _bytes(otlp_from_spans(SPANS[:20]))) == []


# --- dead letters -----------------------------------------------------------------------------


def _mutations() -> list[tuple[str, dict]]:
    """Records of both formats, valid and not, all carrying bodies."""
    out = []
    for i in range(4):
        log = bedrock_log_with_text(i)
        out.append(("bedrock", log))
        negative = copy.deepcopy(log)
        negative["input"]["inputTokenCount"] = -3
        out.append(("bedrock", negative))
        bad_latency = copy.deepcopy(log)
        body = bad_latency["output"].get("outputBodyJson")
        if isinstance(body, dict):
            body["metrics"] = {"latencyMs": "slow: " + PROMPT_TEXT}
            out.append(("bedrock", bad_latency))
        no_time = {k: v for k, v in log.items() if k != "timestamp"}
        out.append(("bedrock", no_time))
        out.append(("bedrock", {**log, "input": "raw " + PROMPT_TEXT}))
    request = otlp_request_with_text()
    out.append(("otlp-json", request))
    bad_id = copy.deepcopy(request)
    bad_id["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["spanId"] = "xyz"
    out.append(("otlp-json", bad_id))
    odd_value = copy.deepcopy(request)
    odd_value["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"].append(
        {"key": "gen_ai.prompt", "value": PROMPT_TEXT}
    )
    out.append(("otlp-json", odd_value))
    numbers = copy.deepcopy(request)
    numbers["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"].append(
        {"key": "gen_ai.prompt.0.tokens", "value": {"intValue": "1234567890"}}
    )
    out.append(("otlp-json", numbers))
    return out


@pytest.mark.parametrize("store_bodies", [False, True], ids=["off", "on"])
def test_deadletter_payload_keeps_what_decodes_and_drops_or_redacts_bodies(store_bodies):
    for fmt, doc in _mutations():
        original = _bytes(doc)
        kept = deadletter_payload(fmt, original, store_bodies=store_bodies)
        # replayable for its metrics: the same events, or the same reason
        assert _outcome(fmt, kept) == _outcome(fmt, original), (fmt, doc)
        text = kept.decode()
        for secret in SECRETS:
            assert secret not in text, (fmt, secret)
        if store_bodies:
            assert "[EMAIL]" in text and "7f3a" in text
        else:
            assert "7f3a" not in text and MARKER in text
        parsed = json.loads(kept)
        assert (
            NOTE_KEY in parsed
            and ("store_bodies is " + ("on" if store_bodies else "off")) in (parsed[NOTE_KEY])
        )


def test_deadletter_payload_of_a_record_without_bodies_is_the_record():
    log = bedrock_log_from_invocation(INVOCATIONS[0])
    del log["input"]["inputBodyJson"]
    log["output"].pop("outputBodyJson", None)
    for fmt, payload in (
        ("bedrock", _bytes(log)),
        ("otlp-json", _bytes(otlp_from_spans(SPANS[:10]))),
        ("bedrock", b'{"schemaType": "SomethingElse"}'),
        ("native", _bytes({"prompt": "native events have no body fields", "model_id": 1})),
    ):
        for store in (False, True):
            assert deadletter_payload(fmt, payload, store_bodies=store) == payload


def test_unreadable_payload_is_withheld_when_off_and_redacted_when_on():
    truncated = _bytes(bedrock_log_with_text())[:-40]
    latin = b"\xff\xfe " + PROMPT_TEXT.encode()
    for payload in (truncated, latin):
        off = deadletter_payload("bedrock", payload, store_bodies=False).decode()
        assert "7f3a" not in off and "withheld" in off and str(len(payload)) in off
        on = deadletter_payload("bedrock", payload, store_bodies=True)
        assert b"7f3a" in on
        for secret in SECRETS[:4]:
            assert secret.encode() not in on
    # bytes that are not UTF-8 survive redaction unchanged
    assert deadletter_payload("otlp-json", latin, store_bodies=True).startswith(b"\xff\xfe ")
    # nested deeper than the adapters read: withheld too
    deep = b'{"input": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    assert b"withheld" in deadletter_payload("bedrock", deep, store_bodies=False)
