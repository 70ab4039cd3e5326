from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genai_apm.adapters import FORMATS, AdapterError, decode

FIXTURES = Path(__file__).parents[1] / "fixtures"
SECRET = "SECRET-7f3a"


def raw_samples(fmt: str) -> list[bytes]:
    folder = {"bedrock": "bedrock", "otlp-json": "otlp"}[fmt]
    return [
        p.read_bytes()
        for p in sorted((FIXTURES / folder).glob("*.json"))
        if ".expected" not in p.name
    ]


def test_the_formats():
    assert FORMATS == ("native", "bedrock", "otlp-json")


def test_native_passes_the_object_through_untouched():
    event = {"request_id": "r-1", "latency_ms": "not checked here", "extra": [1, 2]}
    assert decode("native", json.dumps(event).encode()) == [("InvocationEvent", event)]


def test_otlp_interleaves_each_model_call_after_its_span():
    raw = (FIXTURES / "otlp" / "agent_trace.json").read_bytes()
    contracts = [c for c, _ in decode("otlp-json", raw)]
    # agent_trace: agent, failed chat, chat, tool, embeddings
    assert contracts == [
        "SpanEvent",
        "SpanEvent",
        "InvocationEvent",
        "SpanEvent",
        "InvocationEvent",
        "SpanEvent",
        "SpanEvent",
        "InvocationEvent",
    ]


def test_payload_may_be_any_bytes_like_object():
    raw = b'{"request_id": "r-1"}'
    assert (
        decode("native", bytearray(raw))
        == decode("native", memoryview(raw))
        == decode("native", raw)
    )


def test_unknown_format_names_the_known_ones():
    with pytest.raises(AdapterError) as raised:
        decode("avro", b"{}")
    assert isinstance(raised.value, ValueError)
    assert "'avro'" in str(raised.value)
    for fmt in FORMATS:
        assert fmt in str(raised.value)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xff\xfe" + SECRET.encode(), "not UTF-8"),
        (SECRET.encode(), "not JSON"),
        (b'{"a": ' + SECRET.encode() + b"}", "not JSON"),
        (b"", "not JSON"),
        (b'{"latency_ms": NaN}', "bare NaN"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"n": ' + b"9" * 5000 + b"}", "a number is too long"),
        (json.dumps([SECRET]).encode(), "must be a JSON object, got an array"),
        (json.dumps(SECRET).encode(), "must be a JSON object, got a string"),
        (b"null", "got null"),
        (b"12", "got a number"),
    ],
)
def test_unreadable_payloads(fmt, payload, reason):
    with pytest.raises(AdapterError) as raised:
        decode(fmt, payload)
    assert reason in str(raised.value)
    assert SECRET not in str(raised.value)


def test_payload_must_be_bytes():
    with pytest.raises(AdapterError, match="must be bytes, got str"):
        decode("native", '{"request_id": "r-1"}')


# --- never anything but AdapterError, never the payload in the reason -----------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
# values a field could be swapped for, each carrying the secret somewhere
secret_values = (
    st.sampled_from(
        [
            SECRET,
            [SECRET],
            {SECRET: SECRET},
            {"stringValue": SECRET},
            {"intValue": SECRET},
            [{"key": SECRET}],
        ]
    )
    | json_values
)


def decodes_or_says_why(fmt: str, payload: bytes) -> None:
    try:
        events = decode(fmt, payload)
    except AdapterError as e:
        assert SECRET not in str(e)
        assert len(str(e)) < 300
    else:
        assert all(contract in ("InvocationEvent", "SpanEvent") for contract, _ in events)
        assert all(isinstance(event, dict) for _, event in events)


@pytest.mark.parametrize("fmt", FORMATS)
@given(payload=st.binary(max_size=200))
def test_any_bytes(fmt, payload):
    decodes_or_says_why(fmt, payload)


@pytest.mark.parametrize("fmt", FORMATS)
@given(document=json_values)
def test_any_json(fmt, document):
    decodes_or_says_why(fmt, json.dumps(document).encode())


def paths(document: object, prefix: tuple = ()) -> list[tuple]:
    """Every place in a JSON document a value sits, as a tuple of keys and indexes."""
    found = [prefix] if prefix else []
    if isinstance(document, dict):
        for key, value in document.items():
            found += paths(value, (*prefix, key))
    elif isinstance(document, list):
        for i, value in enumerate(document):
            found += paths(value, (*prefix, i))
    return found


def replaced(document: object, path: tuple, value: object) -> object:
    document = json.loads(json.dumps(document))
    *parents, last = path
    node = document
    for step in parents:
        node = node[step]
    node[last] = value
    return document


@pytest.mark.parametrize("fmt", ["bedrock", "otlp-json"])
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_real_records_with_one_field_spoiled(fmt, data):
    document = json.loads(data.draw(st.sampled_from(raw_samples(fmt))))
    path = data.draw(st.sampled_from(paths(document)))
    spoiled = replaced(document, path, data.draw(secret_values))
    decodes_or_says_why(fmt, json.dumps(spoiled).encode())


@pytest.mark.parametrize("fmt", ["bedrock", "otlp-json"])
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_real_records_with_a_field_removed(fmt, data):
    document = json.loads(data.draw(st.sampled_from(raw_samples(fmt))))
    *parents, last = data.draw(st.sampled_from(paths(document)))
    node = document
    for step in parents:
        node = node[step]
    del node[last]
    decodes_or_says_why(fmt, json.dumps(document).encode())
