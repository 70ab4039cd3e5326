"""Hostile input for the adapters: oversized payloads, deep nesting, huge attribute maps,
invalid UTF-8, absurd timestamps and negative token counts, built around real records of
each format. Whatever arrives, ``decode`` returns events or raises AdapterError with a short
reason, and the memory it takes grows with the payload, never faster.

`make fuzz` runs the same properties with many more examples (HYPOTHESIS_PROFILE=fuzz,
tests/conftest.py).
"""

from __future__ import annotations

import json
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genai_apm.adapters import FORMATS, AdapterError, decode
from genai_apm.adapters.bedrock import bedrock_log_from_invocation
from genai_apm.adapters.otlp import otlp_from_spans
from genai_apm.traffic import TrafficSpec, traffic

RECORDS = list(traffic(TrafficSpec(count=80, agent_share=0.5, rate_per_s=10, seed=9)))
INVOCATIONS = [r.event for r in RECORDS if r.contract == "InvocationEvent"]
SPANS = [r.event for r in RECORDS if r.contract == "SpanEvent"]


def base_document(fmt: str, i: int) -> dict:
    """A valid record of ``fmt`` as a JSON document (a fresh copy each time)."""
    if fmt == "native":
        doc = INVOCATIONS[i % len(INVOCATIONS)]
    elif fmt == "bedrock":
        doc = bedrock_log_from_invocation(INVOCATIONS[i % len(INVOCATIONS)])
    else:
        doc = otlp_from_spans(SPANS[i % len(SPANS) : i % len(SPANS) + 5])
    return json.loads(json.dumps(doc))


# epoch ms and RFC 3339 texts at and past the ends of what the contract accepts
ABSURD_TIMES = [
    0,
    -1,
    -62135596800001,
    253402300799999,
    253402300800000,
    2**63,
    "1970-01-01T00:00:00Z",
    "1969-12-31T23:59:59.999Z",
    "9999-12-31T23:59:59.999Z",
    "10000-01-01T00:00:00Z",
    "0000-01-01T00:00:00Z",
    1e300,
]


def _leaves(doc, path=()):
    """Every (path, value) of a document, so a mutation can reach any field."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _leaves(v, (*path, i))
    yield path, doc


def _set(doc, path, value):
    if not path:
        return value
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return doc


class Raw(str):
    """JSON text spliced into a payload as is: json.dumps cannot write these values (deep
    nesting overflows its recursion, huge integers its digit limit), a hostile sender can."""


def _nested(depth: int, kind: str) -> Raw:
    opening, closing = ("[", "]") if kind == "list" else ('{"a": ', "}")
    return Raw(opening * depth + '"x"' + closing * depth)


def hostile_value(draw) -> object:
    kind = draw(
        st.sampled_from(["time", "tokens", "big string", "deep", "wide map", "huge number"])
    )
    if kind == "time":
        return draw(st.sampled_from(ABSURD_TIMES))
    if kind == "tokens":
        return draw(st.integers(max_value=-1) | st.sampled_from([-(2**63), 2**64, -0.5]))
    if kind == "big string":
        return "é" * draw(st.integers(min_value=50_000, max_value=300_000))
    if kind == "deep":
        depth = draw(st.integers(min_value=50, max_value=5_000))
        return _nested(depth, draw(st.sampled_from(["list", "dict"])))
    if kind == "wide map":
        n = draw(st.integers(min_value=1_000, max_value=10_000))
        return [{"key": f"k{i}", "value": {"stringValue": "v"}} for i in range(n)]
    return Raw("9" * draw(st.integers(min_value=20, max_value=6_000)))


@st.composite
def hostile_payloads(draw, fmt: str) -> bytes:
    doc = base_document(fmt, draw(st.integers(min_value=0, max_value=500)))
    raw: dict[str, str] = {}
    for n in range(draw(st.integers(min_value=1, max_value=3))):
        paths = [p for p, _ in _leaves(doc) if p]
        path = draw(st.sampled_from(paths))
        value = hostile_value(draw)
        if isinstance(value, Raw):
            raw[f"@raw{n}@"] = str(value)
            value = f"@raw{n}@"
        doc = _set(doc, path, value)
    text = json.dumps(doc)
    for marker, value in raw.items():
        text = text.replace(json.dumps(marker), value)
    payload = text.encode()
    if draw(st.booleans()):
        # invalid UTF-8: a stray continuation byte, a truncated sequence or an overlong form
        at = draw(st.integers(min_value=0, max_value=len(payload)))
        bad = draw(st.sampled_from([b"\x80", b"\xc3", b"\xff", b"\xc0\xaf", b"\xed\xa0\x80"]))
        payload = payload[:at] + bad + payload[at:]
    return payload


def decode_within_memory(fmt: str, payload: bytes) -> None:
    """decode gives events or AdapterError, using memory linear in the payload."""
    tracemalloc.start()
    try:
        try:
            events = decode(fmt, payload)
        except AdapterError as e:
            assert 0 < len(str(e)) < 300
        else:
            # what the table function emits is JSON text again
            for contract, event in events:
                assert contract in ("InvocationEvent", "SpanEvent")
                json.dumps(event)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Python objects for parsed JSON take a few tens of bytes per input byte at worst
    # (a one-byte "[" becomes a list); anything super-linear would exceed this
    assert peak <= 80 * len(payload) + 4_000_000, (peak, len(payload))


@pytest.mark.parametrize("fmt", FORMATS)
# the profile decides how many examples (100 by default; `make fuzz` thousands)
@settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_hostile_records_decode_or_say_why_in_bounded_memory(fmt, data):
    decode_within_memory(fmt, data.draw(hostile_payloads(fmt)))


def test_the_mutations_reach_the_adapters_and_are_rejected_where_they_must_be():
    """Not every mutation is the adapter's to reject: a 1970 time is a time, and negative
    token counts pass through to the contract checks (the ingest job dead-letters them,
    tests/integration/test_hostile_input.py). These must fail here, with their reasons."""
    request = base_document("otlp-json", 0)
    text = json.dumps(request).replace(
        '"resourceSpans"', '"x": ' + _nested(5_000, "dict") + ', "resourceSpans"', 1
    )
    with pytest.raises(AdapterError, match="nested too deeply"):
        decode("otlp-json", text.encode())
    with pytest.raises(AdapterError, match="not UTF-8"):
        decode("native", json.dumps(base_document("native", 0)).encode()[:-2] + b"\xc3}")
    with pytest.raises(AdapterError, match="a number is too long"):
        decode("bedrock", b'{"timestamp": ' + b"9" * 6_000 + b"}")
    log = base_document("bedrock", 0)
    log["timestamp"] = "10000-01-01T00:00:00Z"
    with pytest.raises(AdapterError, match="timestamp"):
        decode("bedrock", json.dumps(log).encode())
