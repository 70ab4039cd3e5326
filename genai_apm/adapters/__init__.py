"""Input adapters: one raw record in a real-world format -> events of our contracts.

Pure, stdlib-only and fast: a Flink table function calls ``decode`` per record, and so do the
CLI tools. Bad input raises ``AdapterError`` and nothing else, so the caller can route the
record to the dead-letter stream with ``str(error)`` as its reason. Reasons name the field
that is wrong, never its value: payloads carry prompts, and reasons end up in logs.
"""

from __future__ import annotations

import json
import math

FORMATS = ("native", "bedrock", "otlp-json")
INVOCATION = "InvocationEvent"
SPAN = "SpanEvent"
BODY = "BodyEvent"


class AdapterError(ValueError):
    """A record the adapter cannot turn into events; ``str(e)`` is a short, payload-free reason."""


def finite_number(value: object) -> float | None:
    """A JSON number as a float, or None when it cannot be one: not a number (a bool is not),
    infinite (json reads 1e400 as infinity), or an integer too large for a float."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _reject_constant(name: str):
    # Python's json accepts NaN and Infinity, which no other JSON reader does
    raise AdapterError(f"payload is not JSON: bare {name}")


def parse_json(payload: bytes) -> object:
    """The JSON value in ``payload``, or AdapterError saying why there is none."""
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise AdapterError(f"payload must be bytes, got {type(payload).__name__}")
    try:
        text = bytes(payload).decode("utf-8")
    except UnicodeDecodeError as e:
        raise AdapterError(f"payload is not UTF-8 (bad byte at offset {e.start})") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except AdapterError:
        raise
    except json.JSONDecodeError as e:
        raise AdapterError(f"payload is not JSON: {e.msg} at offset {e.pos}") from None
    except RecursionError:
        raise AdapterError("payload is not JSON we can read: nested too deeply") from None
    except ValueError:
        # an integer literal beyond Python's digit limit; its message would quote the input
        raise AdapterError("payload is not JSON we can read: a number is too long") from None


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


# Imported last because they import AdapterError from this module.
from genai_apm.adapters import bedrock, otlp  # noqa: E402
from genai_apm.adapters import bodies as bodies_module  # noqa: E402
