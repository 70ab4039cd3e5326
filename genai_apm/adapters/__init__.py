"""Input adapters: one raw record in a real-world format -> events of our contracts.

Pure, stdlib-only and fast: a Flink table function calls ``decode`` per record, and so do the
CLI tools. Bad input raises ``AdapterError`` and nothing else, so the caller can route the
record to the dead-letter stream with ``str(error)`` as its reason. Reasons name the field
that is wrong, never its value: payloads carry prompts, and reasons end up in logs.
"""

from __future__ import annotations

from genai_apm.adapters import bedrock, otlp
from genai_apm.adapters import bodies as bodies_module
from genai_apm.adapters.base import (
    BODY,
    FORMATS,
    INVOCATION,
    SPAN,
    AdapterError,
    finite_number,
    parse_json,
)

__all__ = [
    "BODY",
    "FORMATS",
    "INVOCATION",
    "SPAN",
    "AdapterError",
    "decode",
    "finite_number",
    "parse_json",
]


def decode(fmt: str, payload: bytes, *, bodies: bool = False) -> list[tuple[str, dict]]:
    """One raw record -> ``[(contract_name, event_dict)]``.

    native     the JSON object itself as an InvocationEvent (fields are checked downstream)
    bedrock    one Bedrock model invocation log record -> one InvocationEvent
    otlp-json  one ExportTraceServiceRequest -> every span as a SpanEvent, each GenAI
               model-call span followed by its InvocationEvent
    With ``bodies`` (privacy.store_bodies), a BodyEvent with the redacted prompt and response
    follows the events of each Bedrock log and each OTLP span that carries any.
    """
    if fmt not in FORMATS:
        raise AdapterError(f"unknown format {str(fmt)[:40]!r}; expected one of {FORMATS}")
    document = parse_json(payload)
    if not isinstance(document, dict):
        raise AdapterError(f"{fmt} payload must be a JSON object, got {_json_type(document)}")
    if fmt == "native":
        return [(INVOCATION, document)]
    if fmt == "bedrock":
        invocation = bedrock.invocation_from_bedrock_log(document)
        body = bodies_module.bedrock_body(document, invocation) if bodies else None
        return [(INVOCATION, invocation), *([(BODY, body)] if body else [])]
    events: list[tuple[str, dict]] = []
    for span, attributes, raw_span in otlp.spans_with_sources(document):
        events.append((SPAN, span))
        invocation = otlp.invocation_from_span(span, attributes=attributes)
        if invocation is not None:
            events.append((INVOCATION, invocation))
        if bodies and (body := bodies_module.span_body(span, attributes, raw_span)):
            events.append((BODY, body))
    return events


def _json_type(value: object) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )
