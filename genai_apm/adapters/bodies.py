"""Prompt and response bodies of Bedrock logs and OTLP GenAI spans (docs/security.md, "Prompt and
response bodies").

Two uses, both driven by ``privacy.store_bodies``:
- ``body_events``: when on, the ingest job keeps each call's prompt and response as a
  BodyEvent (schemas/body.py), every string put through ``privacy.redact()``. When off,
  nothing calls it: bodies are never extracted.
- ``deadletter_payload``: a rejected record of these formats keeps everything the adapters
  read (ids, times, token counts, stop reason, latency), so it stays diagnosable and decodes,
  once fixed, to the same events; the strings of its bodies are replaced by ``MARKER`` (off)
  or redacted (on), and a note under ``NOTE_KEY`` says so. Types and structure are kept, so
  decoding the scrubbed record fails (or succeeds) exactly as the original did.

A payload that is not JSON we can read (not UTF-8, truncated, nested too deeply) cannot be
told apart into body and metadata. Off, it is withheld: the dead letter says how long it was,
its SHA-256 and why, and `source` (topic/partition@offset) points at the original, which the
source topic keeps for its retention, for whoever may read raw input. On, its text is redacted
as a whole. Such a record could not give a metric anyway: no adapter reads it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import genai_apm.adapters.bedrock as bedrock
import genai_apm.adapters.otlp as otlp
from genai_apm.adapters.base import AdapterError, parse_json
from genai_apm.privacy import redact
from genai_apm.schemas.body import BODY_FORMATS, BODY_V1

BODY = BODY_V1.name
MARKER = "[removed]"
NOTE_KEY = "genai_apm_bodies"
REMOVED_NOTE = (
    "removed: privacy.store_bodies is off, so every string of the prompt and response bodies "
    f"was replaced by {MARKER}; what genai-apm reads (ids, times, tokens, stop reason, "
    "latency) is as sent"
)
REDACTED_NOTE = (
    "redacted: every string of the prompt and response bodies went through privacy.redact() "
    "(privacy.store_bodies is on)"
)

# Bedrock: where the bodies are, and the strings the adapter reads out of an output body
# (stop reasons, and `type` to find Anthropic's message_delta event): those stay as sent
BEDROCK_BODIES = (("input", "inputBodyJson"), ("output", "outputBodyJson"))
BEDROCK_KEPT_KEYS = frozenset({"stopReason", "stop_reason", "type", "role"})

# OTLP: content attributes (GenAI semantic conventions 1.37, and the older gen_ai.prompt /
# gen_ai.completion, also as OpenLLMetry's indexed gen_ai.prompt.0.content) and content events
PROMPT_ATTRIBUTES = (
    "gen_ai.system_instructions",
    "gen_ai.input.messages",
    "gen_ai.tool.call.arguments",
    "gen_ai.prompt",
)
RESPONSE_ATTRIBUTES = ("gen_ai.output.messages", "gen_ai.tool.call.result", "gen_ai.completion")
PROMPT_EVENTS = (
    "gen_ai.content.prompt",
    "gen_ai.system.message",
    "gen_ai.user.message",
    "gen_ai.assistant.message",
    "gen_ai.tool.message",
)
RESPONSE_EVENTS = ("gen_ai.content.completion", "gen_ai.choice")
# carries content attributes of both sides (1.37)
DETAILS_EVENT = "gen_ai.client.inference.operation.details"
PROMPT, RESPONSE = "prompt", "response"
# AnyValue members holding numbers, which may be written as strings
_NUMBER_MEMBERS = frozenset({"intValue", "int_value", "doubleValue", "double_value"})


def attribute_side(key: object) -> str | None:
    """PROMPT or RESPONSE for a content attribute, else None."""
    if not isinstance(key, str):
        return None
    if key in PROMPT_ATTRIBUTES or key.startswith("gen_ai.prompt."):
        return PROMPT
    if key in RESPONSE_ATTRIBUTES or key.startswith("gen_ai.completion."):
        return RESPONSE
    return None


def event_side(name: object) -> str | None:
    """PROMPT or RESPONSE for an event whose every attribute is content, else None."""
    if name in PROMPT_EVENTS:
        return PROMPT
    if name in RESPONSE_EVENTS:
        return RESPONSE
    return None


# --- the bodies output (store_bodies on) ------------------------------------------------------


def redact_tree(value: Any) -> Any:
    """``value`` with every string, at any depth, put through redact(); keys and types kept.

    A string holding a JSON object or array (how most SDKs record messages in an attribute)
    is redacted as that structure and written back as compact JSON text, so an escape such
    as ``\\n`` in front of a key cannot hide it from the patterns."""
    if isinstance(value, str):
        if value[:1] in ("[", "{"):
            try:
                parsed = json.loads(value)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict | list):
                return _json(redact_tree(parsed))
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_tree(v) for v in value]
    return value


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _content_json(content: Any) -> str | None:
    if content is None or content == {}:
        return None
    try:
        return _json(redact_tree(content))
    except RecursionError:
        # deeper than we can walk: not stored, rather than stored unredacted
        return _json(f"[not stored: nested too deeply to redact; {BODY} keeps no such body]")


def _body(event: dict, source_format: str, prompt: Any, response: Any) -> dict | None:
    prompt_json, response_json = _content_json(prompt), _content_json(response)
    if prompt_json is None and response_json is None:
        return None
    return {
        "schema_version": BODY_V1.version,
        "event_time": event["event_time"],
        "request_id": event["request_id"],
        "trace_id": event.get("trace_id"),
        "span_id": event.get("span_id"),
        "source_format": source_format,
        "app_id": event.get("app_id"),
        "tenant_id": event.get("tenant_id"),
        "model_id": event.get("model_id"),
        "operation": event.get("operation"),
        "prompt": prompt_json,
        "response": response_json,
    }


def bedrock_body(log: dict, invocation: dict) -> dict | None:
    """The BodyEvent of a Bedrock log ``invocation`` was decoded from; None without bodies."""
    request, response = log.get("input") or {}, log.get("output") or {}
    return _body(
        invocation, "bedrock", request.get("inputBodyJson"), response.get("outputBodyJson")
    )


def _event_contents(raw_span: dict) -> dict[str, dict[str, list]]:
    """Content attributes of the span's events: {side: {"event <name>": [attributes, ...]}}.

    The adapter does not read span events, so a malformed one does not reject the record;
    it is skipped here too (its body is not kept, and nothing else is lost)."""
    found: dict[str, dict[str, list]] = {PROMPT: {}, RESPONSE: {}}
    events = raw_span.get("events")
    for event in events if isinstance(events, list) else ():
        if not isinstance(event, dict):
            continue
        name = event.get("name")
        try:
            attributes = otlp._attributes(event.get("attributes"), "event")
        except AdapterError:
            continue
        whole = event_side(name)
        parts: dict[str, dict] = {PROMPT: {}, RESPONSE: {}}
        for key, value in attributes.items():
            side = whole or attribute_side(key)
            if side:
                parts[side][key] = value
        for side, content in parts.items():
            if content:
                found[side].setdefault(f"event {name}", []).append(content)
    return found


def span_body(span: dict, attributes: dict, raw_span: dict) -> dict | None:
    """The BodyEvent of one OTLP span: its content attributes and events; None without any."""
    sides: dict[str, dict] = {PROMPT: {}, RESPONSE: {}}
    for key, value in attributes.items():
        if side := attribute_side(key):
            sides[side][key] = value
    for side, content in _event_contents(raw_span).items():
        sides[side].update(content)
    if not sides[PROMPT] and not sides[RESPONSE]:
        return None
    model = span.get("model_id") or span.get("response_model")
    keys = {
        # the request id its InvocationEvent gets (otlp.invocation_from_span)
        "request_id": otlp._attribute(attributes, ("gen_ai.response.id",), otlp._text_attribute)
        or span.get("span_id"),
        "event_time": span.get("start_time"),
        "trace_id": span.get("trace_id"),
        "span_id": span.get("span_id"),
        "app_id": span.get("service_name"),
        "model_id": bedrock.normalise_model_id(model) if model else None,
        "operation": span.get("operation"),
    }
    return _body(keys, "otlp-json", sides[PROMPT], sides[RESPONSE])


# --- dead letters -----------------------------------------------------------------------------


def _scrub(value: Any, clean: Callable[[str], str], kept: frozenset = frozenset()) -> Any:
    """Every string replaced by ``clean(string)``, except those under a key in ``kept``."""
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, dict):
        return {
            k: v if k in kept and isinstance(v, str) else _scrub(v, clean, kept)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_scrub(v, clean, kept) for v in value]
    return value


def _is_number_text(text: str) -> bool:
    # what otlp._int64 and otlp._double accept: such a string is a number, never content,
    # and replacing it would change how the record decodes
    if len(text) > 40:
        return False
    try:
        float(text)
    except ValueError:
        return False
    return True


def _scrub_any_value(value: Any, clean: Callable[[str], str]) -> Any:
    if isinstance(value, dict):
        return {
            k: v
            if k in _NUMBER_MEMBERS and isinstance(v, str) and _is_number_text(v)
            else _scrub_any_value(v, clean)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_scrub_any_value(v, clean) for v in value]
    return clean(value) if isinstance(value, str) else value


def _scrub_bedrock(log: dict, clean: Callable[[str], str]) -> int:
    scrubbed = 0
    for section, key in BEDROCK_BODIES:
        part = log.get(section)
        if isinstance(part, dict):
            if part.get(key) is not None:
                part[key] = _scrub(part[key], clean, BEDROCK_KEPT_KEYS)
                scrubbed += 1
        elif part is not None:  # not what Bedrock writes: nothing in it can be trusted
            log[section] = _scrub(part, clean)
            scrubbed += 1
    return scrubbed


def _members(message: dict, camel: str) -> list[str]:
    """The keys under which a protobuf JSON message may hold a field (otlp._get)."""
    return [k for k in (camel, otlp._snake(camel)) if k in message]


def _scrub_attributes(
    pairs: Any, clean: Callable[[str], str], *, everything: bool
) -> tuple[Any, int]:
    """A KeyValue list with content values scrubbed (all values when ``everything``)."""
    if not isinstance(pairs, list):
        return _scrub_any_value(pairs, clean), 1
    scrubbed, out = 0, []
    for pair in pairs:
        if not isinstance(pair, dict):
            out.append(_scrub_any_value(pair, clean))
            scrubbed += 1
            continue
        key = pair.get("key")
        if everything or not isinstance(key, str) or attribute_side(key):
            pair = {**pair, "value": _scrub_any_value(pair.get("value"), clean)}
            scrubbed += 1
        out.append(pair)
    return out, scrubbed


def _scrub_span(span: dict, clean: Callable[[str], str]) -> int:
    scrubbed = 0
    for key in _members(span, "attributes"):
        span[key], n = _scrub_attributes(span[key], clean, everything=False)
        scrubbed += n
    events = span.get("events")
    if events is None:
        return scrubbed
    if not isinstance(events, list):
        span["events"] = _scrub(events, clean)
        return scrubbed + 1
    for i, event in enumerate(events):
        if not isinstance(event, dict):
            events[i] = _scrub(event, clean)
            scrubbed += 1
            continue
        everything = event_side(event.get("name")) is not None
        if event.get("attributes") is not None:
            event["attributes"], n = _scrub_attributes(
                event["attributes"], clean, everything=everything
            )
            scrubbed += n
    return scrubbed


def _scrub_list(holder: dict, camel: str, clean, each: Callable[[dict], int]) -> int:
    """Apply ``each`` to every object in the list field ``camel``; scrub what is no object."""
    scrubbed = 0
    for key in _members(holder, camel):
        items = holder[key]
        if not isinstance(items, list):
            holder[key] = _scrub(items, clean)
            scrubbed += 1
            continue
        for i, item in enumerate(items):
            if isinstance(item, dict):
                scrubbed += each(item)
            else:
                items[i] = _scrub(item, clean)
                scrubbed += 1
    return scrubbed


def _scrub_otlp(request: dict, clean: Callable[[str], str]) -> int:
    def scope(scope_spans: dict) -> int:
        return _scrub_list(scope_spans, "spans", clean, lambda s: _scrub_span(s, clean))

    def resource(resource_spans: dict) -> int:
        return sum(
            _scrub_list(resource_spans, key, clean, scope)
            for key in ("scopeSpans", "instrumentationLibrarySpans")
        )

    return _scrub_list(request, "resourceSpans", clean, resource)


def _withheld(payload: bytes, store_bodies: bool) -> bytes:
    if store_bodies:
        try:
            return redact(payload.decode("utf-8")).encode("utf-8")
        except UnicodeDecodeError:
            # byte for byte: the patterns are ASCII, so other bytes pass through unchanged
            return redact(payload.decode("latin-1")).encode("latin-1")
    digest = hashlib.sha256(payload).hexdigest()
    return (
        f"[payload withheld by genai-apm: not JSON genai-apm can read, so its prompt and "
        f"response bodies cannot be told apart from the rest, and privacy.store_bodies is off; "
        f"{len(payload)} bytes, sha256 {digest}; the original stays at this dead letter's "
        f"source for that topic's retention]"
    ).encode()


def deadletter_payload(fmt: str, payload: bytes, *, store_bodies: bool) -> bytes:
    """The payload a dead letter of ``fmt`` keeps (see the module docstring)."""
    if fmt not in BODY_FORMATS:
        # native events have no body fields (schemas/invocation.py): kept as sent
        return payload
    try:
        document = parse_json(payload)
    except AdapterError:
        return _withheld(payload, store_bodies)
    clean: Callable[[str], str] = redact if store_bodies else (lambda _: MARKER)
    try:
        if not isinstance(document, dict):
            # a scalar or an array: not the shape of either format, and no place for a note
            scrubbed_value = _scrub(document, clean)
            return payload if scrubbed_value == document else _json(scrubbed_value).encode()
        scrubbed = (_scrub_bedrock if fmt == "bedrock" else _scrub_otlp)(document, clean)
        if not scrubbed:
            return payload  # no body: the record as sent
        document[NOTE_KEY] = REDACTED_NOTE if store_bodies else REMOVED_NOTE
        return _json(document).encode()
    except RecursionError:
        return _withheld(payload, store_bodies)
