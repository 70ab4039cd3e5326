from __future__ import annotations

import json
import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genai_apm import traffic
from genai_apm.adapters import AdapterError, decode
from genai_apm.adapters.bedrock import (
    ROUND_TRIP_FIELDS,
    bedrock_log_from_invocation,
    invocation_from_bedrock_log,
    normalise_model_id,
)
from genai_apm.schemas.invocation import INVOCATION_V1

FIXTURES = Path(__file__).parents[1] / "fixtures" / "bedrock"
SAMPLES = sorted(p.name.removesuffix(".expected.json") for p in FIXTURES.glob("*.expected.json"))


def sample(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def expected(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.expected.json").read_text())


def test_there_are_samples_for_every_operation():
    operations = {sample(name)["operation"] for name in SAMPLES}
    assert operations == {
        "Converse",
        "ConverseStream",
        "InvokeModel",
        "InvokeModelWithResponseStream",
    }


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_gives_the_hand_checked_event(name):
    event = invocation_from_bedrock_log(sample(name))
    assert event == expected(name)
    assert list(event) == list(INVOCATION_V1.names)


@pytest.mark.parametrize("name", SAMPLES)
def test_decode_reads_the_sample_as_written_to_s3(name):
    raw = (FIXTURES / f"{name}.json").read_bytes()
    assert decode("bedrock", raw) == [("InvocationEvent", expected(name))]


@pytest.mark.parametrize("name", SAMPLES)
def test_no_prompt_or_response_text_reaches_the_event(name):
    assert "SECRET" in (FIXTURES / f"{name}.json").read_text()
    assert "SECRET" not in json.dumps(invocation_from_bedrock_log(sample(name)))


@pytest.mark.parametrize(
    ("model_id", "expected_id"),
    [
        ("anthropic.claude-3-haiku-20240307-v1:0", "anthropic.claude-3-haiku-20240307-v1:0"),
        (
            "us.anthropic.claude-3-5-sonnet-20240620-v1:0",
            "us.anthropic.claude-3-5-sonnet-20240620-v1:0",
        ),
        (
            "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0",
            "anthropic.claude-3-haiku-20240307-v1:0",
        ),
        (
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/"
            "eu.anthropic.claude-3-5-sonnet-20240620-v1:0",
            "eu.anthropic.claude-3-5-sonnet-20240620-v1:0",
        ),
        (
            "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6",
            "a1b2c3d4e5f6",
        ),
        ("arn:aws-us-gov:bedrock:us-gov-west-1:123456789012:provisioned-model/k3x9", "k3x9"),
        # an ARN without a resource id is still the best name there is
        (
            "arn:aws:bedrock:us-east-1:123456789012:weird",
            "arn:aws:bedrock:us-east-1:123456789012:weird",
        ),
    ],
)
def test_model_arns_become_their_id(model_id, expected_id):
    assert normalise_model_id(model_id) == expected_id


def converse(**changes) -> dict:
    log = sample("converse")
    log.update(changes)
    return log


@pytest.mark.parametrize(
    ("log", "reason"),
    [
        (converse(schemaType="ModelInvocationMetrics"), "schemaType"),
        (converse(requestId=None), "requestId is required"),
        (converse(modelId=""), "modelId is required"),
        (converse(timestamp="yesterday SECRET"), "timestamp is not an ISO 8601"),
        (converse(timestamp="2024-05-01T12:00:00"), "timestamp has no time zone"),
        (converse(timestamp=1714564800), "timestamp must be a string"),
        (converse(operation=["Converse"]), "operation must be a string"),
        (converse(input="SECRET"), "input must be an object"),
        (converse(input={"inputTokenCount": "35"}), "input.inputTokenCount must be an integer"),
        (converse(input={"inputTokenCount": True}), "input.inputTokenCount must be an integer"),
        (
            converse(output={"outputBodyJson": "SECRET"}),
            "outputBodyJson must be an object or an array",
        ),
        (converse(output={"outputBodyJson": ["SECRET"]}), "outputBodyJson[0] must be an object"),
        (
            converse(output={"outputBodyJson": {"metrics": {"latencyMs": "fast"}}}),
            "metrics.latencyMs must be a finite number",
        ),
        (
            converse(output={"outputBodyJson": {"metrics": {"latencyMs": float("inf")}}}),
            "metrics.latencyMs must be a finite number",
        ),
        (converse(output={"outputBodyJson": {"stopReason": 3}}), "stopReason must be a string"),
        (
            converse(output={"outputBodyJson": {"usage": {"outputTokens": 1.5}}}),
            "usage.outputTokens must be an integer",
        ),
        (converse(requestMetadata=["SECRET"]), "requestMetadata must be an object"),
        (converse(requestMetadata={"user_id": 42}), "requestMetadata.user_id must be a string"),
        (converse(errorCode={"code": "SECRET"}), "errorCode must be a string"),
    ],
)
def test_bad_logs_are_rejected_with_the_field_not_the_value(log, reason):
    with pytest.raises(AdapterError) as raised:
        invocation_from_bedrock_log(log)
    assert reason in str(raised.value)
    assert str(raised.value).startswith("bedrock log: ")
    assert "SECRET" not in str(raised.value)


def test_a_log_that_is_not_an_object_is_rejected():
    with pytest.raises(AdapterError, match="must be a JSON object"):
        invocation_from_bedrock_log(["not", "a", "log"])


def test_usage_in_the_body_fills_in_missing_counts():
    log = converse(
        input={"inputBodyJson": {}},
        output={"outputBodyJson": {"usage": {"inputTokens": 7, "outputTokens": 9}}},
    )
    event = invocation_from_bedrock_log(log)
    assert (event["input_tokens"], event["output_tokens"]) == (7, 9)


def test_unknown_operations_are_lower_cased_and_not_guessed_streaming():
    event = invocation_from_bedrock_log(converse(operation="CountTokens"))
    assert (event["operation"], event["streaming"]) == ("counttokens", None)


def test_content_filtered_calls_are_successes_with_their_own_class():
    log = converse()
    log["output"]["outputBodyJson"]["stopReason"] = "content_filtered"
    event = invocation_from_bedrock_log(log)
    assert (event["status"], event["error_class"]) == ("success", "content_filtered")
    assert event["guardrail_intervened"] is False


# --- encoder -------------------------------------------------------------------------------

STREAMED_EVENT = {
    "schema_version": 1,
    "event_time": 1_767_225_600_123,
    "request_id": "req-1",
    "session_id": "s-1",
    "app_id": "support-bot",
    "user_id": "u-1",
    "tenant_id": "t-1",
    "feature": "chat",
    "provider": "aws.bedrock",
    "model_id": "anthropic.claude-3-haiku-20240307-v1:0",
    "operation": "chat",
    "region": "eu-west-1",
    "streaming": True,
    "latency_ms": 812.6,
    "ttft_ms": 120.0,
    "input_tokens": 900,
    "output_tokens": 250,
    "cache_read_input_tokens": 100,
    "cache_write_input_tokens": 0,
    "status": "success",
    "error_type": None,
    "error_class": None,
    "http_status": 200,
    "finish_reason": "end_turn",
    "guardrail_intervened": False,
}


def test_encoder_writes_a_log_in_the_documented_shape():
    log = bedrock_log_from_invocation(STREAMED_EVENT, account_id="111122223333")
    assert log["schemaType"] == "ModelInvocationLog"
    assert log["timestamp"] == "2026-01-01T00:00:00.123Z"
    assert log["accountId"] == "111122223333"
    assert log["identity"]["arn"].startswith("arn:aws:sts::111122223333:")
    assert (log["operation"], log["region"], log["requestId"]) == (
        "ConverseStream",
        "eu-west-1",
        "req-1",
    )
    assert log["input"]["inputTokenCount"] == 900
    assert log["input"]["cacheReadInputTokenCount"] == 100
    assert log["output"]["outputTokenCount"] == 250
    stream = log["output"]["outputBodyJson"]
    assert {"messageStop": {"stopReason": "end_turn"}} in stream
    assert stream[-1]["metadata"]["metrics"] == {"latencyMs": 813}
    assert stream[-1]["metadata"]["usage"]["totalTokens"] == 1150
    assert log["requestMetadata"] == {
        "session_id": "s-1",
        "app_id": "support-bot",
        "user_id": "u-1",
        "tenant_id": "t-1",
        "feature": "chat",
    }
    assert "errorCode" not in log


def test_encoder_writes_no_text_of_the_event_into_bodies():
    bodies = json.dumps(bedrock_log_from_invocation(STREAMED_EVENT)["output"])
    assert "support-bot" not in bodies and "req-1" not in bodies


def test_encoder_names_an_error_class_by_a_representative_code():
    event = STREAMED_EVENT | {"status": "error", "error_type": None, "error_class": "throttle"}
    log = bedrock_log_from_invocation(event)
    assert log["errorCode"] == "ThrottlingException"
    assert "outputBodyJson" not in log["output"]


def test_encoder_writes_a_blocked_call_the_way_bedrock_logs_it():
    event = STREAMED_EVENT | {
        "streaming": False,
        "status": "error",
        "error_type": "GuardrailIntervention",
        "error_class": "content_filtered",
        "finish_reason": None,
    }
    log = bedrock_log_from_invocation(event)
    assert "errorCode" not in log
    assert log["output"]["outputBodyJson"]["stopReason"] == "guardrail_intervened"


def test_encoder_accepts_an_rfc3339_event_time():
    event = STREAMED_EVENT | {"event_time": "2026-01-01T01:00:00.5+01:00"}
    assert bedrock_log_from_invocation(event)["timestamp"] == "2026-01-01T00:00:00.500Z"


@pytest.mark.parametrize("missing", ["event_time", "request_id", "model_id"])
def test_encoder_needs_the_required_fields(missing):
    with pytest.raises(AdapterError, match=missing):
        bedrock_log_from_invocation(STREAMED_EVENT | {missing: None})


def test_generated_traffic_survives_the_round_trip():
    events = list(traffic.invocations(traffic.TrafficSpec(error_rate=0.3), 400))
    assert {e["error_class"] for e in events} >= {None, "throttle", "content_filtered"}
    for event in events:
        log = json.loads(json.dumps(bedrock_log_from_invocation(event)))
        back = invocation_from_bedrock_log(log)
        assert back["operation"] == "converse"  # the generator's "chat" is Converse on Bedrock
        for name in ("event_time", "request_id", "model_id", "app_id", "input_tokens"):
            assert back[name] == event[name]
        assert back["error_class"] == event["error_class"]
        if event["error_class"] == "content_filtered":
            # Bedrock logs a blocked call as completed; the stop reason tells
            assert (back["status"], back["error_type"]) == ("success", None)
            assert back["finish_reason"] == event["finish_reason"]
        else:
            assert (back["status"], back["error_type"]) == (event["status"], event["error_type"])
        if back["status"] == "success":
            assert back["latency_ms"] == round(event["latency_ms"])
            assert back["output_tokens"] == event["output_tokens"]


# --- round trip property ---------------------------------------------------------------------

ids = st.text(string.ascii_letters + string.digits + "-_.:", min_size=1, max_size=24)
counts = st.none() | st.integers(0, 10**9)
# error codes with the class the taxonomy documents for them
ERROR_CODES = [
    ("ThrottlingException", "throttle"),
    ("ValidationException", "client"),
    ("ModelTimeoutException", "timeout"),
    ("ModelStreamErrorException", "server"),
    ("SomeFutureException", None),
]
STOP_REASONS = [
    ("end_turn", None),
    ("max_tokens", None),
    ("tool_use", None),
    ("guardrail_intervened", "content_filtered"),
    ("content_filtered", "content_filtered"),
]


@st.composite
def bedrock_events(draw) -> dict:
    failed = draw(st.booleans())
    operation = draw(st.sampled_from(["converse", "invoke"]))
    error_type, error_class = draw(st.sampled_from(ERROR_CODES)) if failed else (None, None)
    finish_reason = None
    if not failed:
        finish_reason, error_class = draw(st.none() | st.sampled_from(STOP_REASONS)) or (None, None)
    return {
        "schema_version": 1,
        "event_time": draw(st.integers(0, 4_102_444_800_000)),
        "request_id": draw(ids),
        **{
            name: draw(st.none() | ids)
            for name in ("session_id", "app_id", "user_id", "tenant_id", "feature")
        },
        "provider": "aws.bedrock",
        "model_id": draw(ids.filter(lambda m: not m.startswith("arn:"))),
        "operation": operation,
        "region": draw(st.none() | ids),
        "streaming": draw(st.booleans()),
        "latency_ms": draw(st.none() | st.floats(0, 1e7)),
        "input_tokens": draw(counts),
        "output_tokens": draw(counts),
        "cache_read_input_tokens": draw(counts),
        "cache_write_input_tokens": draw(counts),
        "status": "error" if failed else "success",
        "error_type": error_type,
        "error_class": error_class,
        "finish_reason": finish_reason,
        "guardrail_intervened": None
        if finish_reason is None
        else finish_reason == "guardrail_intervened",
    }


@settings(deadline=None)
@given(bedrock_events())
def test_round_trip_keeps_every_mappable_field(event):
    log = json.loads(json.dumps(bedrock_log_from_invocation(event)))
    back = invocation_from_bedrock_log(log)
    want = {name: event[name] for name in ROUND_TRIP_FIELDS}
    # only a successful Converse response body carries latency, in whole milliseconds
    kept = event["operation"] == "converse" and event["status"] == "success"
    want["latency_ms"] = (
        float(round(event["latency_ms"])) if kept and event["latency_ms"] is not None else None
    )
    assert {name: back[name] for name in ROUND_TRIP_FIELDS} == want
