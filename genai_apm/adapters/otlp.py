"""OTLP/JSON traces <-> SpanEvent v1, and GenAI model-call spans -> InvocationEvent v1.

Input is one ExportTraceServiceRequest in the OTLP/JSON encoding, as OTLP/HTTP exporters post
it and the Collector's Kafka exporter writes it with ``encoding: otlp_json``: lowerCamelCase
keys (the protobuf snake_case names are accepted too), hex trace and span ids, 64-bit integers
as strings or numbers, enums as integers or their names.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from functools import cache
from typing import NoReturn

from genai_apm.adapters.base import AdapterError, finite_number
from genai_apm.adapters.bedrock import normalise_model_id
from genai_apm.adapters.taxonomy import classify
from genai_apm.schemas.contract import Kind
from genai_apm.schemas.invocation import INVOCATION_V1
from genai_apm.schemas.span import SPAN_KINDS, SPAN_V1, STATUS_CODES

# gen_ai.operation.name values that are one call to a model (agents and tools are not)
MODEL_CALL_OPERATIONS = ("chat", "text_completion", "generate_content", "embeddings")
SERVICE_NAME = "service.name"
# spellings from GenAI semantic conventions before 1.37, read when the current one is absent
OLDER_ATTRIBUTES = {
    "gen_ai.provider.name": ("gen_ai.system",),
    "gen_ai.usage.input_tokens": ("gen_ai.usage.prompt_tokens",),
    "gen_ai.usage.output_tokens": ("gen_ai.usage.completion_tokens",),
}
# SpanEvent field -> the span attributes it comes from, current spelling first
SPAN_ATTRIBUTES = {
    f.name: (f.otel, *OLDER_ATTRIBUTES.get(f.otel, ()))
    for f in SPAN_V1.fields
    if f.otel and f.otel != SERVICE_NAME
}
LIST_FIELDS = ("finish_reasons",)  # string[] attributes, kept comma-separated
LONG_FIELDS = tuple(f.name for f in SPAN_V1.fields if f.kind is Kind.LONG and f.otel)
GUARDRAIL_FINISH_REASON = "guardrail_intervened"
# the scope name otlp_from_spans writes; decoding ignores scopes
ENCODER_SCOPE = "genai-apm"
NANOS_PER_MS = 1_000_000

_INT64 = re.compile(r"-?[0-9]{1,20}")
_HEX = re.compile(r"[0-9a-fA-F]*")


def _fail(where: str, problem: str) -> NoReturn:
    raise AdapterError(f"otlp: {where} {problem}")


@cache
def _snake(camel: str) -> str:
    return re.sub(r"([A-Z])", r"_\1", camel).lower()


def _get(message: dict, camel: str) -> object:
    # protobuf JSON readers must accept the original (snake_case) field names as well
    value = message.get(camel)
    return message.get(_snake(camel)) if value is None else value


def _object(value: object, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        _fail(where, "must be an object")
    return value


def _list(value: object, where: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        _fail(where, "must be an array")
    return value


def _int64(value: object, where: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _INT64.fullmatch(value):
        number = int(value)
    else:
        _fail(where, "must be an integer or a string of digits")
    # proto3 int64 / fixed64: a JSON number has no such bound, and a longer one would
    # overflow the float arithmetic on times downstream
    if not -(2**63) <= number < 2**64:
        _fail(where, "is outside the 64-bit integer range")
    return number


def _double(value: object, where: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and len(value) <= 40:
        # proto3 JSON writes NaN and infinities, and may write any double, as a string
        try:
            return float(value)
        except ValueError:
            pass
    _fail(where, "must be a number")


def _any_value(value: object, where: str) -> object:
    """An OTLP AnyValue -> the Python value it holds (None for an empty AnyValue)."""
    value = _object(value, where)
    if (text := _get(value, "stringValue")) is not None:
        if not isinstance(text, str):
            _fail(where, "stringValue must be a string")
        return text
    if (flag := _get(value, "boolValue")) is not None:
        if not isinstance(flag, bool):
            _fail(where, "boolValue must be a boolean")
        return flag
    if (number := _get(value, "intValue")) is not None:
        return _int64(number, f"{where}.intValue")
    if (number := _get(value, "doubleValue")) is not None:
        return _double(number, f"{where}.doubleValue")
    if (array := _get(value, "arrayValue")) is not None:
        values = _list(_get(_object(array, f"{where}.arrayValue"), "values"), f"{where}.arrayValue")
        return [_any_value(v, f"{where}.arrayValue.values[{i}]") for i, v in enumerate(values)]
    if (kvlist := _get(value, "kvlistValue")) is not None:
        pairs = _get(_object(kvlist, f"{where}.kvlistValue"), "values")
        return _attributes(pairs, f"{where}.kvlistValue.values")
    if (data := _get(value, "bytesValue")) is not None:
        if not isinstance(data, str):
            _fail(where, "bytesValue must be a base64 string")
        return data
    return None


def _attributes(pairs: object, where: str) -> dict:
    """An OTLP KeyValue list -> {key: value}; a repeated key keeps its last value."""
    attributes = {}
    for i, pair in enumerate(_list(pairs, where)):
        pair = _object(pair, f"{where}[{i}]")
        key = pair.get("key")
        if not isinstance(key, str):
            _fail(f"{where}[{i}].key", "must be a string")
        attributes[key] = _any_value(pair.get("value"), f"{where}[{i}].value")
    return attributes


def _hex_id(value: object, size: int, where: str, *, required: bool) -> str | None:
    if value is None or value == "":
        if required:
            _fail(where, "is required")
        return None
    if isinstance(value, str):
        if len(value) == 2 * size and _HEX.fullmatch(value):
            return value.lower()
        # protobuf's own JSON mapping writes bytes as base64; some exporters send that
        if len(value) == 4 * ((size + 2) // 3):
            try:
                raw = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raw = b""
            if len(raw) == size:
                return raw.hex()
    _fail(where, f"must be {2 * size} hex digits")


def _enum(value: object, names: tuple[str, ...], prefix: str, first: int, where: str) -> str | None:
    # names[0] has the integer value `first`; 0 is "unspecified" when first == 1
    if isinstance(value, int) and not isinstance(value, bool):
        if value == 0 and first == 1:
            return None
        if first <= value < first + len(names):
            return names[value - first]
    elif isinstance(value, str):
        name = value.removeprefix(prefix)
        if name in names:
            return name
        if first == 1 and name == "UNSPECIFIED":
            return None
    elif value is None:
        return None if first == 1 else names[0]
    _fail(where, f"is not a known {prefix.lower().rstrip('_')}")


def _text_attribute(value: object, where: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    _fail(where, "must be a single value")


def _count_attribute(value: object, where: str) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)  # JavaScript SDKs may send whole numbers as doubleValue
    if isinstance(value, str) and _INT64.fullmatch(value):
        return int(value)
    _fail(where, "must be an integer")


def _list_attribute(value: object, where: str) -> str | None:
    if isinstance(value, list):
        if not value:
            return None
        return ",".join(_text_attribute(v, where) or "" for v in value)
    return _text_attribute(value, where)


def _first_present(attributes: dict, names: tuple[str, ...]) -> tuple[object, str]:
    for name in names:
        if attributes.get(name) is not None:
            return attributes[name], name
    return None, names[0]


def _span_field(name: str, attributes: dict, where: str) -> object:
    value, key = _first_present(attributes, SPAN_ATTRIBUTES[name])
    at = f"{where}.attributes[{key}]"
    if name in LIST_FIELDS:
        return _list_attribute(value, at)
    if name in LONG_FIELDS:
        return _count_attribute(value, at)
    return _text_attribute(value, at)


def _span_event(span: object, service_name: str | None, where: str) -> tuple[dict, dict]:
    span = _object(span, where)
    attributes = _attributes(_get(span, "attributes"), f"{where}.attributes")
    start = _get(span, "startTimeUnixNano")
    end = _get(span, "endTimeUnixNano")
    if start is None or end is None:
        _fail(where, "needs startTimeUnixNano and endTimeUnixNano")
    start_ns = _int64(start, f"{where}.startTimeUnixNano")
    end_ns = _int64(end, f"{where}.endTimeUnixNano")
    status = _object(_get(span, "status"), f"{where}.status")
    name = span.get("name")
    if name is not None and not isinstance(name, str):
        _fail(f"{where}.name", "must be a string")
    message = status.get("message")
    if message is not None and not isinstance(message, str):
        _fail(f"{where}.status.message", "must be a string")
    event = {
        "schema_version": SPAN_V1.version,
        "trace_id": _hex_id(_get(span, "traceId"), 16, f"{where}.traceId", required=True),
        "span_id": _hex_id(_get(span, "spanId"), 8, f"{where}.spanId", required=True),
        "parent_span_id": _hex_id(
            _get(span, "parentSpanId"), 8, f"{where}.parentSpanId", required=False
        ),
        "name": name or "",
        "kind": _enum(span.get("kind"), SPAN_KINDS, "SPAN_KIND_", 1, f"{where}.kind"),
        "start_time": start_ns // NANOS_PER_MS,
        "end_time": end_ns // NANOS_PER_MS,
        "duration_ms": (end_ns - start_ns) / NANOS_PER_MS,
        "status_code": _enum(
            status.get("code"), STATUS_CODES, "STATUS_CODE_", 0, f"{where}.status.code"
        ),
        "status_message": message or None,
        "service_name": service_name,
    }
    for field_name in SPAN_ATTRIBUTES:
        event[field_name] = _span_field(field_name, attributes, where)
    return event, attributes


def _raw_spans(request: dict) -> Iterator[tuple[object, str | None, str]]:
    """Every span of an ExportTraceServiceRequest as (span as sent, service name, where).

    A generator, so a caller decoding each span as it comes fails on the first problem in
    request order, whatever follows it."""
    if not isinstance(request, dict):
        raise AdapterError("otlp: request must be a JSON object")
    for r, resource_spans in enumerate(_list(_get(request, "resourceSpans"), "resourceSpans")):
        at = f"resourceSpans[{r}]"
        resource_spans = _object(resource_spans, at)
        resource = _object(_get(resource_spans, "resource"), f"{at}.resource")
        resource_attributes = _attributes(_get(resource, "attributes"), f"{at}.resource.attributes")
        service_name = _text_attribute(
            resource_attributes.get(SERVICE_NAME), f"{at}.resource.attributes[{SERVICE_NAME}]"
        )
        key = "scopeSpans"
        scopes = _get(resource_spans, key)
        if not scopes:  # before OTLP 0.15 (2022) scopes were instrumentation libraries
            key = "instrumentationLibrarySpans"
            scopes = _get(resource_spans, key)
        for s, scope_spans in enumerate(_list(scopes, f"{at}.{key}")):
            where = f"{at}.{key}[{s}]"
            scope_spans = _object(scope_spans, where)
            for i, span in enumerate(_list(_get(scope_spans, "spans"), f"{where}.spans")):
                yield span, service_name, f"{where}.spans[{i}]"


def spans_with_attributes(request: dict) -> list[tuple[dict, dict]]:
    """Every span of an ExportTraceServiceRequest as (SpanEvent, its attributes as a dict)."""
    return [_span_event(span, service, where) for span, service, where in _raw_spans(request)]


def spans_with_sources(request: dict) -> list[tuple[dict, dict, dict]]:
    """(SpanEvent, its attributes as a dict, the span as sent): the last for what a SpanEvent
    does not read, such as span events (genai_apm.adapters.bodies)."""
    return [
        (*_span_event(span, service, where), span) for span, service, where in _raw_spans(request)
    ]


def spans_from_otlp(request: dict) -> list[dict]:
    """Every span of an ExportTraceServiceRequest as a SpanEvent v1 dict, in request order."""
    return [span for span, _ in spans_with_attributes(request)]


# --- InvocationEvent from a model-call span ---------------------------------------------------


def _attribute(attributes: dict, names: tuple[str, ...], read) -> object:
    value, key = _first_present(attributes, names)
    return read(value, f"span attribute {key}")


def _flag_attribute(value: object, where: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    _fail(where, "must be a boolean")


def _seconds_as_ms(value: object, where: str) -> float | None:
    if value is None:
        return None
    number = finite_number(value)
    if number is None:
        _fail(where, "must be a finite number of seconds")
    return number * 1000.0


def invocation_from_span(span: dict, *, attributes: dict | None = None) -> dict | None:
    """InvocationEvent for a chat/text_completion/generate_content/embeddings span, else None.

    ``attributes`` (the span's raw attributes, as ``spans_with_attributes`` returns them) adds
    what a SpanEvent has no column for: response id, streaming, time to first chunk, cache
    writes, reasoning tokens, HTTP status and user id.
    """
    if not isinstance(span, dict):
        raise AdapterError("otlp: span must be a SpanEvent dict")
    if span.get("operation") not in MODEL_CALL_OPERATIONS:
        return None
    for name in ("finish_reasons", "model_id", "response_model"):
        if span.get(name) is not None and not isinstance(span[name], str):
            raise AdapterError(f"otlp: span {name} must be a string")
    attrs = attributes or {}
    reasons = span.get("finish_reasons")
    finish_reason = (reasons.split(",", 1)[0].strip() or None) if reasons else None
    error_type = span.get("error_type")
    http_status = _attribute(
        attrs, ("http.response.status_code", "http.status_code"), _count_attribute
    )
    # the conventions set error.type exactly when the call failed, status or not
    failed = span.get("status_code") == "ERROR" or error_type is not None
    model = span.get("model_id") or span.get("response_model")
    event = {
        "schema_version": INVOCATION_V1.version,
        "event_time": span.get("start_time"),
        "request_id": _attribute(attrs, ("gen_ai.response.id",), _text_attribute)
        or span.get("span_id"),
        "trace_id": span.get("trace_id"),
        "span_id": span.get("span_id"),
        "session_id": span.get("conversation_id"),
        "app_id": span.get("service_name"),
        "user_id": _attribute(attrs, ("user.id", "enduser.id"), _text_attribute),
        "tenant_id": None,
        "feature": None,
        "provider": span.get("provider"),
        "model_id": normalise_model_id(model) if model else None,
        "operation": span["operation"],
        "region": None,
        "streaming": _attribute(attrs, ("gen_ai.request.stream",), _flag_attribute),
        "latency_ms": span.get("duration_ms"),
        "ttft_ms": _attribute(attrs, ("gen_ai.response.time_to_first_chunk",), _seconds_as_ms),
        "input_tokens": span.get("input_tokens"),
        "output_tokens": span.get("output_tokens"),
        "cache_read_input_tokens": span.get("cache_read_input_tokens"),
        "cache_write_input_tokens": _attribute(
            attrs, ("gen_ai.usage.cache_creation.input_tokens",), _count_attribute
        ),
        "reasoning_output_tokens": _attribute(
            attrs, ("gen_ai.usage.reasoning.output_tokens",), _count_attribute
        ),
        "status": "error" if failed else "success",
        "error_type": error_type,
        # a content-filtered call that returned normally is a success with its own class
        "error_class": (
            classify(error_type, http_status, finish_reason)
            if failed
            else classify(None, None, finish_reason)
        ),
        "http_status": http_status,
        "finish_reason": finish_reason,
        "guardrail_intervened": (
            None if finish_reason is None else finish_reason == GUARDRAIL_FINISH_REASON
        ),
    }
    return event


# --- encoder: SpanEvents -> ExportTraceServiceRequest -----------------------------------------


def _nanos(span: dict) -> tuple[int, int]:
    """Start and end in ns that decode back to exactly this start_time, end_time, duration_ms."""
    start_ms, end_ms, duration = (
        span.get("start_time"),
        span.get("end_time"),
        span.get("duration_ms"),
    )
    for value in (start_ms, end_ms):
        if isinstance(value, bool) or not isinstance(value, int):
            raise AdapterError("span event: start_time and end_time must be epoch ms integers")
    if duration is None:
        length = (end_ms - start_ms) * NANOS_PER_MS
    elif isinstance(duration, int | float) and not isinstance(duration, bool):
        length = round(duration * NANOS_PER_MS)
    else:
        raise AdapterError("span event: duration_ms must be a number")
    # the start's sub-millisecond part is lost; pick the earliest one that ends in end_time
    offset = max(0, end_ms * NANOS_PER_MS - start_ms * NANOS_PER_MS - length)
    start_ns = start_ms * NANOS_PER_MS + offset
    end_ns = start_ns + length
    if offset >= NANOS_PER_MS or end_ns // NANOS_PER_MS != end_ms:
        raise AdapterError("span event: end_time is not start_time + duration_ms")
    return start_ns, end_ns


def _otlp_attribute(key: str, value: object) -> dict:
    if isinstance(value, bool):
        encoded = {"boolValue": value}
    elif isinstance(value, int):
        encoded = {"intValue": str(value)}  # int64 is a string in OTLP/JSON
    elif isinstance(value, float):
        encoded = {"doubleValue": value}
    elif isinstance(value, list):
        encoded = {"arrayValue": {"values": [_otlp_attribute("", v)["value"] for v in value]}}
    else:
        encoded = {"stringValue": str(value)}
    return {"key": key, "value": encoded}


def _enum_value(span: dict, field: str, names: tuple[str, ...], first: int) -> int | None:
    name = span.get(field)
    if name is None:
        return None
    if name not in names:
        raise AdapterError(f"span event: {field} must be one of {'|'.join(names)}")
    return names.index(name) + first


def _otlp_span(span: dict) -> dict:
    start_ns, end_ns = _nanos(span)
    attributes = []
    for name, keys in SPAN_ATTRIBUTES.items():
        value = span.get(name)
        if value is None:
            continue
        if name in LIST_FIELDS:
            value = str(value).split(",")
        attributes.append(_otlp_attribute(keys[0], value))
    status = {}
    if code := _enum_value(span, "status_code", STATUS_CODES, 0):  # UNSET is the default
        status["code"] = code
    if span.get("status_message"):
        status["message"] = span["status_message"]
    encoded = {
        "traceId": span.get("trace_id"),
        "spanId": span.get("span_id"),
        "parentSpanId": span.get("parent_span_id"),
        "name": span.get("name"),
        "kind": _enum_value(span, "kind", SPAN_KINDS, 1),
        "startTimeUnixNano": str(start_ns),
        "endTimeUnixNano": str(end_ns),
        "attributes": attributes,
        "status": status,
    }
    return {k: v for k, v in encoded.items() if v is not None}


def otlp_from_spans(spans: list[dict]) -> dict:
    """SpanEvents -> one ExportTraceServiceRequest in OTLP/JSON, a resource per service_name.

    Consecutive spans of one service share a resourceSpans entry, so decoding gives the spans
    back in the order they came; interleaved services make more (equally valid) entries.
    """
    resource_spans: list[dict] = []
    current: list[dict] = []
    service = None
    for span in spans:
        if not resource_spans or span.get("service_name") != service:
            service = span.get("service_name")
            current = []
            resource = {"attributes": []}
            if service is not None:
                resource["attributes"].append(_otlp_attribute(SERVICE_NAME, service))
            resource_spans.append(
                {
                    "resource": resource,
                    "scopeSpans": [{"scope": {"name": ENCODER_SCOPE}, "spans": current}],
                }
            )
        current.append(_otlp_span(span))
    return {"resourceSpans": resource_spans}
