from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genai_apm.adapters import AdapterError
from genai_apm.adapters.otlp import (
    invocation_from_span,
    otlp_from_spans,
    spans_from_otlp,
    spans_with_attributes,
)
from genai_apm.schemas.invocation import INVOCATION_V1
from genai_apm.schemas.span import SPAN_KINDS, SPAN_V1, STATUS_CODES

FIXTURES = Path(__file__).parents[1] / "fixtures" / "otlp"
SAMPLES = sorted(p.name.removesuffix(".expected.json") for p in FIXTURES.glob("*.expected.json"))


def sample(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def expected(name: str) -> list[list]:
    return json.loads((FIXTURES / f"{name}.expected.json").read_text())


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_gives_the_hand_checked_spans(name):
    spans = spans_from_otlp(sample(name))
    assert spans == [event for contract, event in expected(name) if contract == "SpanEvent"]
    assert all(list(span) == list(SPAN_V1.names) for span in spans)


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_gives_the_hand_checked_invocations(name):
    invocations = [
        invocation_from_span(span, attributes=attributes)
        for span, attributes in spans_with_attributes(sample(name))
    ]
    want = [event for contract, event in expected(name) if contract == "InvocationEvent"]
    assert [i for i in invocations if i is not None] == want
    assert all(list(i) == list(INVOCATION_V1.names) for i in want)


def test_no_captured_prompt_reaches_an_event():
    request = sample("openai_chat")
    assert "SECRET" in json.dumps(request)
    for span, attributes in spans_with_attributes(request):
        assert "SECRET" not in json.dumps([span, invocation_from_span(span, attributes=attributes)])


def test_agent_and_tool_spans_are_not_model_calls():
    spans = {s["operation"]: s for s in spans_from_otlp(sample("agent_trace"))}
    assert invocation_from_span(spans["invoke_agent"]) is None
    assert invocation_from_span(spans["execute_tool"]) is None
    http_span = spans_from_otlp(sample("openai_chat"))[1]
    assert invocation_from_span(http_span) is None


def test_without_attributes_an_invocation_has_only_what_the_span_event_holds():
    span = spans_from_otlp(sample("openai_chat"))[0]
    event = invocation_from_span(span)
    assert event["request_id"] == "eee19b7ec3c1b174"  # the span id, not gen_ai.response.id
    assert (event["streaming"], event["ttft_ms"], event["user_id"]) == (None, None, None)
    assert (event["input_tokens"], event["finish_reason"]) == (58, "stop")


def one_span(**changes) -> dict:
    """openai_chat's chat span alone, with top-level span keys replaced."""
    request = sample("openai_chat")
    scope = request["resourceSpans"][0]["scopeSpans"][0]
    scope["spans"][0].update(changes)
    request["resourceSpans"][0]["scopeSpans"] = [scope]
    return request


def with_attribute(key: str, value: dict) -> dict:
    request = one_span()
    span = request["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    span["attributes"] = [a for a in span["attributes"] if a["key"] != key]
    span["attributes"].append({"key": key, "value": value})
    return request


@pytest.mark.parametrize(
    ("kind", "expected_kind"),
    [
        (1, "INTERNAL"),
        (2, "SERVER"),
        (5, "CONSUMER"),
        ("SPAN_KIND_PRODUCER", "PRODUCER"),
        ("CLIENT", "CLIENT"),
        (0, None),
        ("SPAN_KIND_UNSPECIFIED", None),
        (None, None),
    ],
)
def test_span_kinds_in_every_spelling(kind, expected_kind):
    assert spans_from_otlp(one_span(kind=kind))[0]["kind"] == expected_kind


@pytest.mark.parametrize(
    ("status", "code"),
    [
        ({"code": 2, "message": "boom"}, "ERROR"),
        ({"code": "STATUS_CODE_OK"}, "OK"),
        ({"code": 0}, "UNSET"),
        ({}, "UNSET"),
        (None, "UNSET"),
    ],
)
def test_status_codes_in_every_spelling(status, code):
    assert spans_from_otlp(one_span(status=status))[0]["status_code"] == code


def test_ids_are_stored_lower_case():
    span = spans_from_otlp(one_span(traceId="5B8EFFF798038103D269B633813FC60C"))[0]
    assert span["trace_id"] == "5b8efff798038103d269b633813fc60c"


def test_integer_attributes_in_every_spelling():
    for value in ({"intValue": "7"}, {"intValue": 7}, {"doubleValue": 7.0}, {"stringValue": "7"}):
        span = spans_from_otlp(with_attribute("gen_ai.usage.output_tokens", value))[0]
        assert span["output_tokens"] == 7, value


def test_current_attribute_names_win_over_older_ones():
    request = with_attribute("gen_ai.provider.name", {"stringValue": "azure.ai.openai"})
    assert spans_from_otlp(request)[0]["provider"] == "azure.ai.openai"  # gen_ai.system: openai


def test_a_repeated_attribute_keeps_its_last_value():
    request = one_span()
    span = request["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    span["attributes"].append({"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}})
    assert spans_from_otlp(request)[0]["model_id"] == "gpt-4o"


def test_nested_attribute_values_decode():
    request = with_attribute(
        "app.extra",
        {
            "kvlistValue": {
                "values": [
                    {
                        "key": "a",
                        "value": {
                            "arrayValue": {"values": [{"intValue": "1"}, {"boolValue": False}]}
                        },
                    },
                    {"key": "b", "value": {"bytesValue": "AAE="}},
                    {"key": "c", "value": {"doubleValue": "NaN"}},
                    {"key": "d", "value": {}},
                ]
            }
        },
    )
    ((_, attributes),) = spans_with_attributes(request)
    extra = attributes["app.extra"]
    assert extra["a"] == [1, False] and extra["b"] == "AAE=" and extra["d"] is None
    assert extra["c"] != extra["c"]  # NaN


def test_an_empty_request_has_no_spans():
    assert spans_from_otlp({}) == []
    assert spans_from_otlp({"resourceSpans": []}) == []


def test_a_failed_call_without_error_type_is_an_unclassified_error():
    request = one_span(status={"code": 2})
    ((span, attributes),) = spans_with_attributes(request)
    event = invocation_from_span(span, attributes=attributes)
    assert (event["status"], event["error_type"], event["error_class"]) == ("error", None, None)


def test_error_type_alone_marks_a_failed_call():
    request = with_attribute("error.type", {"stringValue": "openai.RateLimitError"})
    ((span, attributes),) = spans_with_attributes(request)
    event = invocation_from_span(span, attributes=attributes)
    assert (event["status"], event["error_class"]) == ("error", "throttle")


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        ({"resourceSpans": {"SECRET": 1}}, "resourceSpans must be an array"),
        ({"resourceSpans": ["SECRET"]}, "resourceSpans[0] must be an object"),
        (one_span(traceId="SECRET"), "traceId must be 32 hex digits"),
        (one_span(traceId="5b8efff798038103d269b633813fc60"), "traceId must be 32 hex digits"),
        (one_span(traceId=None), "traceId is required"),
        (one_span(spanId="zzzzzzzzzzzzzzzz"), "spanId must be 16 hex digits"),
        (one_span(parentSpanId=12), "parentSpanId must be 16 hex digits"),
        (one_span(kind=9), "kind is not a known span_kind"),
        (one_span(kind="SECRET"), "kind is not a known span_kind"),
        (one_span(status={"code": 3}), "status.code is not a known status_code"),
        (one_span(status={"message": ["SECRET"]}), "status.message must be a string"),
        (one_span(startTimeUnixNano=None), "needs startTimeUnixNano"),
        (one_span(startTimeUnixNano="12.5"), "startTimeUnixNano must be an integer"),
        (one_span(endTimeUnixNano=True), "endTimeUnixNano must be an integer"),
        # a JSON number has no 64-bit bound (found by test_adapters_hostile: it overflowed
        # the float arithmetic of duration_ms)
        (one_span(startTimeUnixNano=10**40), "startTimeUnixNano is outside the 64-bit"),
        (one_span(endTimeUnixNano=str(10**19 * 2)), "endTimeUnixNano is outside the 64-bit"),
        (one_span(name=["SECRET"]), "name must be a string"),
        (one_span(attributes={"SECRET": 1}), "attributes must be an array"),
        (
            one_span(attributes=[{"key": 5, "value": {"stringValue": "SECRET"}}]),
            "key must be a string",
        ),
        (with_attribute("x", {"stringValue": 5}), "stringValue must be a string"),
        (with_attribute("x", {"intValue": "SECRET"}), "intValue must be an integer"),
        (with_attribute("x", {"doubleValue": "SECRET"}), "doubleValue must be a number"),
        (with_attribute("x", {"arrayValue": {"values": "SECRET"}}), "arrayValue must be an array"),
        (
            with_attribute("gen_ai.usage.input_tokens", {"stringValue": "SECRET"}),
            "attributes[gen_ai.usage.input_tokens] must be an integer",
        ),
        (
            with_attribute(
                "gen_ai.request.model", {"arrayValue": {"values": [{"stringValue": "SECRET"}]}}
            ),
            "attributes[gen_ai.request.model] must be a single value",
        ),
        (
            with_attribute("gen_ai.response.finish_reasons", {"kvlistValue": {"values": []}}),
            "attributes[gen_ai.response.finish_reasons] must be a single value",
        ),
    ],
)
def test_bad_requests_are_rejected_with_the_field_not_the_value(request_, reason):
    with pytest.raises(AdapterError) as raised:
        spans_from_otlp(request_)
    assert reason in str(raised.value)
    assert str(raised.value).startswith("otlp: ")
    assert "SECRET" not in str(raised.value)


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        (
            "gen_ai.request.stream",
            {"stringValue": "yes"},
            "gen_ai.request.stream must be a boolean",
        ),
        (
            "gen_ai.response.time_to_first_chunk",
            {"stringValue": "0.2"},
            "must be a finite number of seconds",
        ),
        (
            "gen_ai.response.time_to_first_chunk",
            {"doubleValue": "Infinity"},
            "must be a finite number of seconds",
        ),
        (
            "http.response.status_code",
            {"stringValue": "OK"},
            "http.response.status_code must be an integer",
        ),
    ],
)
def test_bad_invocation_attributes_are_rejected(key, value, reason):
    ((span, attributes),) = spans_with_attributes(with_attribute(key, value))
    with pytest.raises(AdapterError, match=reason):
        invocation_from_span(span, attributes=attributes)


def test_errors_name_where_the_bad_span_is():
    request = sample("agent_trace")
    request["resourceSpans"][1]["instrumentationLibrarySpans"][0]["spans"][0]["spanId"] = "xyz"
    with pytest.raises(
        AdapterError,
        match=r"resourceSpans\[1\]\.instrumentationLibrarySpans\[0\]\.spans\[0\]\.spanId",
    ):
        spans_from_otlp(request)


# --- encoder -------------------------------------------------------------------------------


def span_event(**changes) -> dict:
    span = dict.fromkeys(SPAN_V1.names)
    span.update(
        schema_version=1,
        trace_id="5b8efff798038103d269b633813fc60c",
        span_id="eee19b7ec3c1b174",
        name="chat gpt-4o-mini",
        kind="CLIENT",
        start_time=1714564800123,
        end_time=1714564801357,
        duration_ms=1233.543211,
        status_code="ERROR",
        status_message="rate limited",
        service_name="support-bot",
        operation="chat",
        model_id="gpt-4o-mini",
        input_tokens=58,
        finish_reasons="stop,length",
        error_type="RateLimitError",
    )
    span.update(changes)
    return span


def test_encoder_writes_the_otlp_json_encoding():
    assert otlp_from_spans([span_event()]) == {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "support-bot"}}]
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "genai-apm"},
                        "spans": [
                            {
                                "traceId": "5b8efff798038103d269b633813fc60c",
                                "spanId": "eee19b7ec3c1b174",
                                "name": "chat gpt-4o-mini",
                                "kind": 3,
                                # the earliest start in 1714564800123 ms whose end,
                                # 1233.543211 ms later, falls in 1714564801357 ms
                                "startTimeUnixNano": "1714564800123456789",
                                "endTimeUnixNano": "1714564801357000000",
                                "attributes": [
                                    {
                                        "key": "gen_ai.operation.name",
                                        "value": {"stringValue": "chat"},
                                    },
                                    {
                                        "key": "gen_ai.request.model",
                                        "value": {"stringValue": "gpt-4o-mini"},
                                    },
                                    {
                                        "key": "gen_ai.usage.input_tokens",
                                        "value": {"intValue": "58"},
                                    },
                                    {
                                        "key": "gen_ai.response.finish_reasons",
                                        "value": {
                                            "arrayValue": {
                                                "values": [
                                                    {"stringValue": "stop"},
                                                    {"stringValue": "length"},
                                                ]
                                            }
                                        },
                                    },
                                    {
                                        "key": "error.type",
                                        "value": {"stringValue": "RateLimitError"},
                                    },
                                ],
                                "status": {"code": 2, "message": "rate limited"},
                            }
                        ],
                    }
                ],
            }
        ]
    }


def test_encoder_keeps_order_across_interleaved_services():
    spans = [
        span_event(span_id=f"{i:016x}", service_name=service)
        for i, service in enumerate(["a", "a", "b", "a", None])
    ]
    request = otlp_from_spans(spans)
    assert [len(r["scopeSpans"][0]["spans"]) for r in request["resourceSpans"]] == [2, 1, 1, 1]
    assert request["resourceSpans"][-1]["resource"] == {"attributes": []}
    assert spans_from_otlp(request) == spans


def test_encoder_refuses_times_that_disagree():
    with pytest.raises(AdapterError, match="end_time is not start_time"):
        otlp_from_spans([span_event(end_time=1714564809999)])
    with pytest.raises(AdapterError, match="epoch ms integers"):
        otlp_from_spans([span_event(start_time="2024-05-01T12:00:00Z")])


def test_encoder_refuses_unknown_kinds():
    with pytest.raises(AdapterError, match="kind must be one of"):
        otlp_from_spans([span_event(kind="SIDEWAYS")])


def test_samples_survive_a_round_trip():
    for name in SAMPLES:
        spans = spans_from_otlp(sample(name))
        assert spans_from_otlp(json.loads(json.dumps(otlp_from_spans(spans)))) == spans


# --- round trip property ---------------------------------------------------------------------

hex_ids = lambda size: st.binary(min_size=size, max_size=size).map(bytes.hex)  # noqa: E731
texts = st.text(max_size=20)
NAMED = ("operation", "provider", "model_id", "response_model", "agent_name", "agent_id")
NAMED += ("tool_name", "tool_call_id", "conversation_id", "error_type", "finish_reasons")


@st.composite
def span_events(draw) -> dict:
    start_ns = draw(st.integers(0, 2**62))
    end_ns = start_ns + draw(st.integers(0, 10**13))
    span = {
        "schema_version": 1,
        "trace_id": draw(hex_ids(16)),
        "span_id": draw(hex_ids(8)),
        "parent_span_id": draw(st.none() | hex_ids(8)),
        "name": draw(texts),
        "kind": draw(st.none() | st.sampled_from(SPAN_KINDS)),
        "start_time": start_ns // 10**6,
        "end_time": end_ns // 10**6,
        "duration_ms": (end_ns - start_ns) / 10**6,
        "status_code": draw(st.sampled_from(STATUS_CODES)),
        "status_message": draw(st.none() | st.text(min_size=1, max_size=20)),
        "service_name": draw(st.none() | st.sampled_from(["support-bot", "agent", ""])),
    }
    for name in (n for n in SPAN_V1.names if n not in span):
        counts = st.integers(0, 2**62)
        span[name] = draw(st.none() | (texts if name in NAMED else counts))
    return span


@settings(deadline=None)
@given(st.lists(span_events(), max_size=6))
def test_round_trip_gives_the_spans_back(spans):
    encoded = json.dumps(otlp_from_spans(spans))
    assert spans_from_otlp(json.loads(encoded)) == spans
