"""The Python reference validator against Flink's two forms of the contract checks.

A few hundred payloads, mostly seeded random mutations of valid events, go through ONE Flink
query of the generated SQL (each query costs seconds; ingest still checks that way) and through
the `genai-contract` source format's deserializer (what invocation and span sources decode
with), called directly in Flink's JVM so payloads with line breaks are records too; for every
payload and both contracts, Python's reason and every typed value must equal Flink's.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from genai_apm.flink.env import register_functions
from genai_apm.schemas import validate
from genai_apm.schemas.contract import Contract, Kind
from genai_apm.schemas.flink_format import EXTRA_COLUMNS, RAW_COLUMN, contract_json
from genai_apm.schemas.flink_sql import quote_ident, rejection_reason, typed
from genai_apm.schemas.invocation import INVOCATION_V1
from genai_apm.schemas.span import SPAN_V1
from genai_apm.traffic import TrafficSpec, invocations

CONTRACTS = (INVOCATION_V1, SPAN_V1)
EVENT_TIME = {INVOCATION_V1.name: "event_time", SPAN_V1.name: "start_time"}


@dataclass(frozen=True)
class Raw:
    """A JSON literal written exactly as given (json.dumps cannot write 1.5e1 or -0.0)."""

    literal: str


def encode(value) -> str:
    if isinstance(value, Raw):
        return value.literal
    if isinstance(value, list):
        return "[" + ", ".join(encode(v) for v in value) + "]"
    if isinstance(value, dict):
        return encode_pairs(list(value.items()))
    return json.dumps(value, ensure_ascii=False)


def encode_pairs(pairs: list[tuple[str, object]]) -> str:
    """An object from (key, value) pairs, so keys may repeat."""
    return "{" + ", ".join(f"{json.dumps(k)}: {encode(v)}" for k, v in pairs) + "}"


LONGS = [
    0, 7, -1, 10**18 - 1, 10**18, -(10**18 - 1), 10**20, "12", " 12", "12\n", "+5", "1.5", "-0",
    Raw("-0"), Raw("1.0"), Raw("1.5e1"), Raw("1e2"), Raw("12E0"), Raw("1.20E+1"), Raw("1e400"),
    "abc", True, [], {}, None,
]  # fmt: skip
DOUBLES = [
    0, 12, 12.5, -1, Raw("-0.0"), Raw("-1e-9"), Raw("1e400"), Raw("-1e400"), Raw("2e-400"),
    Raw("1.7976931348623157e308"), Raw("0E+5"), Raw("1E-7"), "1.5", " 1.5", "1e3", "-2.5E-3",
    "NaN", "Infinity", "-Infinity", "1d", ".5", "5.", "0x10", "1e400", True, "abc", None, [],
]  # fmt: skip
BOOLEANS = [True, False, "TRUE", "False", "yes", "", 1, 0, Raw("1.0"), None, {}]
STRINGS = ["", "x", 5, Raw("1e2"), Raw("-0.0"), True, None, [], {"a": 1}, "héllo ☃", "it's"]
TIMESTAMPS = [
    "2026-01-01T00:00:00Z", "2026-01-01t00:00:00z", "2026-01-01T00:00:00.1Z",
    "2026-01-01T00:00:00.123456789+05:30", "2026-01-01T00:00:00.9999999999999999999-04:30",
    "2026-01-01T00:00:00+18:00", "2026-01-01T00:00:00-18:00", "2026-01-01T00:00:00+18:01",
    "2026-01-01T00:00:00+19:00", "2026-01-01T00:00:00+05:60", "2026-01-01T00:00:00-00:00",
    "2024-02-29T12:00:00Z", "2026-02-29T12:00:00Z", "2026-02-30T00:00:00Z",
    "2026-04-31T00:00:00Z", "1900-02-29T00:00:00Z", "2000-02-29T00:00:00Z",
    "2026-13-01T00:00:00Z", "2026-00-10T00:00:00Z", "2026-01-00T00:00:00Z",
    "2026-01-01T24:00:00Z", "2026-01-01T23:59:60Z", "2026-01-01T23:60:00Z",
    "0000-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "0001-01-01T00:00:00+00:01",
    "0001-01-01T00:00:00-00:01", "9999-12-31T23:59:59.999Z", "9999-12-31T23:59:59.999-00:01",
    "9999-12-31T23:59:59+01:00", "2026-01-01 00:00:00Z", "2026-01-01T00:00:00",
    "2026-01-01T00:00:00.Z", "2026-01-01T00:00:00,5Z", "2026-01-01T00:00:00+0200",
    "2026-01-01T00:00:00+02", "2026-1-1T00:00:00Z", " 2026-01-01T00:00:00Z",
    "2026-01-01T00:00:00Z\n", "2026-01-01T00:00:00Z ", "soon", "", 0, 1, 1767225600000,
    "1767225600000", "000000000000001", 253402300799999, 253402300800000, 999999999999999,
    10**15, -1, "-1", Raw("1.7672256E12"), Raw("1767225600000.0"), Raw("1.5e1"), True, None,
]  # fmt: skip
VERSIONS = [1, 2, "2", "3", 0, -1, 99, Raw("2e0"), Raw("1.0"), "abc", 10**19, None]
NOT_OBJECTS = [
    "[]", "null", "5", '"text"', "{", "", "   ", '{"a": 1', '{"a": NaN}', '{"a": Infinity}',
    "\ufeff{}", '{"a": 1,}', "{'a': 1}", '{"a": 01}', '{"a": "\x01"}', '[{"a": 1}]',
]  # fmt: skip
BY_KIND = {
    Kind.LONG: LONGS,
    Kind.DOUBLE: DOUBLES,
    Kind.BOOLEAN: BOOLEANS,
    Kind.STRING: STRINGS,
    Kind.TIMESTAMP: TIMESTAMPS,
}


def random_timestamp(rng: random.Random) -> str | int:
    """A valid instant written one of the ways producers write them."""
    ms = rng.randrange(0, 4_102_444_800_000)  # 1970 .. 2100
    if rng.random() < 0.3:
        return ms
    offset = rng.choice([0, 0, 330, -270, 60 * rng.randrange(-18, 19), rng.randrange(-1080, 1081)])
    local = datetime(1970, 1, 1) + timedelta(milliseconds=ms + offset * 60_000)
    fraction = f"{ms % 1000:03d}{rng.randrange(10**6):06d}"[: rng.choice([0, 1, 3, 6, 9])]
    zone = (
        "Z"
        if offset == 0 and rng.random() < 0.5
        else "{}{:02d}:{:02d}".format("+" if offset >= 0 else "-", *divmod(abs(offset), 60))
    )
    return f"{local:%Y-%m-%dT%H:%M:%S}" + (f".{fraction}" if fraction else "") + zone


def valid_span(rng: random.Random) -> dict:
    start = rng.randrange(1_767_225_600_000, 1_767_312_000_000)
    duration = rng.randrange(1, 30_000)
    return {
        "schema_version": 1,
        "trace_id": f"{rng.getrandbits(128):032x}",
        "span_id": f"{rng.getrandbits(64):016x}",
        "parent_span_id": rng.choice([None, "", f"{rng.getrandbits(64):016x}"]),
        "name": "chat gpt-4o-mini",
        "kind": rng.choice(["CLIENT", "INTERNAL"]),
        "start_time": start,
        "end_time": start + duration,
        "duration_ms": float(duration),
        "status_code": rng.choice(["UNSET", "OK", "ERROR"]),
        "service_name": "support-bot",
        "operation": "chat",
        "provider": "openai",
        "model_id": "gpt-4o-mini",
        "input_tokens": rng.randrange(5000),
        "output_tokens": rng.randrange(2000),
        "finish_reasons": "stop",
    }


def mutate(rng: random.Random, contract: Contract, event: dict) -> list[tuple[str, object]]:
    pairs = list(event.items())
    for _ in range(rng.choice([1, 1, 2, 3])):
        field = rng.choice(contract.fields)
        names = [k for k, _ in pairs]
        op = rng.random()
        if op < 0.15:  # drop it
            pairs = [(k, v) for k, v in pairs if k != field.name]
            continue
        if op < 0.25 and field.allowed:
            new = rng.choice([*field.allowed, "SUCCESS", "", "cosmic", 5, True])
        elif op < 0.35 and field.name == "schema_version":
            new = rng.choice(VERSIONS)
        elif op < 0.45 and field.kind is Kind.TIMESTAMP:
            new = random_timestamp(rng)
        else:
            new = rng.choice(BY_KIND[field.kind])
        if op > 0.95:  # a repeated key: the last one counts
            pairs.append((field.name, new))
        elif field.name in names:
            pairs[names.index(field.name)] = (field.name, new)
        else:
            pairs.insert(rng.randrange(len(pairs) + 1), (field.name, new))
    if rng.random() < 0.1:  # fields a later minor release may add are ignored
        pairs.append(("added_later", {"nested": [1, 2.5, None]}))
    return pairs


def payloads() -> list[str]:
    rng = random.Random(20260101)
    found = [encode(e) for e in invocations(TrafficSpec(), 5)]
    found += [encode(valid_span(rng)) for _ in range(5)]
    found += NOT_OBJECTS
    found += [
        '{"status": "success"} trailing text',  # Jackson stops after the first value
        ' \n{"schema_version": 2, "event_time": "later"}',
        json.dumps({"schema_version": 2, "trace_id": None}),
    ]
    # Jackson's limits: numbers of about 1000 digits, 1000 levels of nesting
    for inner in ("1" * 1000, "1" * 1001, "1." + "1" * 999, "1." + "1" * 1000):
        found.append(f'{{"model_id": "m", "n": {inner}}}')
    for depth in (999, 1000):
        found.append('{"model_id": "m", "n": ' + "[" * depth + "]" * depth + "}")
    # every edge value once on a field of its kind, then random combinations
    base = next(invocations(TrafficSpec(), 1))
    targets = {
        Kind.LONG: "output_tokens",
        Kind.DOUBLE: "latency_ms",
        Kind.BOOLEAN: "streaming",
        Kind.STRING: "model_id",
        Kind.TIMESTAMP: "event_time",
    }
    for kind, name in targets.items():
        found += [encode({**base, name: v}) for v in BY_KIND[kind]]
    found += [encode({**base, "schema_version": v}) for v in VERSIONS]
    found += [encode({**valid_span(rng), "end_time": v}) for v in TIMESTAMPS]
    found += [encode({**base, "event_time": random_timestamp(rng)}) for _ in range(40)]
    for event in invocations(TrafficSpec(seed=11, error_rate=0.3), 260):
        found.append(encode_pairs(mutate(rng, INVOCATION_V1, event)))
    for _ in range(160):
        found.append(encode_pairs(mutate(rng, SPAN_V1, valid_span(rng))))
    return found


def sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def flink_columns(contract: Contract) -> list[str]:
    # TIMESTAMP_LTZ cannot be collected into Python: compare its UTC text instead
    return [
        f"CAST({typed(f, 'doc')} AS STRING)" if f.kind is Kind.TIMESTAMP else typed(f, "doc")
        for f in contract.fields
    ]


def timestamp_text(ms: int) -> str:
    """Epoch ms as Flink prints a TIMESTAMP_LTZ(3) in UTC, computed without Flink."""
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)).isoformat(
        sep=" ", timespec="milliseconds"
    )[:23]


def python_row(contract: Contract, obj) -> list:
    row = [validate.reason(contract, obj)]
    for f in contract.fields:
        v = validate.value(f, obj)
        row.append(timestamp_text(v) if f.kind is Kind.TIMESTAMP and v is not None else v)
    return row


@pytest.fixture(scope="module")
def flink_rows():
    from pyflink.table import EnvironmentSettings, TableEnvironment

    t_env = TableEnvironment.create(EnvironmentSettings.in_batch_mode())
    t_env.get_config().set("table.local-time-zone", "UTC")
    t_env.get_config().set("parallelism.default", "1")
    register_functions(t_env)  # GENAI_JSON_TEXTS, GENAI_TIMESTAMP: the generated SQL uses them
    docs = payloads()
    columns = []
    for contract in CONTRACTS:
        columns.append(rejection_reason(contract, "doc"))
        columns += flink_columns(contract)
    select = ", ".join(f"{c} AS {quote_ident(f'c{j}')}" for j, c in enumerate(columns))
    values = ", ".join(f"({i}, {sql_string(d)})" for i, d in enumerate(docs))
    query = f"SELECT i, {select} FROM (VALUES {values}) AS T(i, doc)"
    with t_env.execute_sql(query).collect() as results:
        got = {row[0]: list(row)[1:] for row in results}
    return docs, got


def labels() -> list[str]:
    return [
        label
        for contract in CONTRACTS
        for label in (f"{contract.name} reason", *(f"{contract.name}.{n}" for n in contract.names))
    ]


def test_python_validator_agrees_with_flink_on_every_payload(flink_rows):
    docs, got = flink_rows
    assert len(got) == len(docs)
    disagreements = []
    for i, doc in enumerate(docs):
        obj = validate.parse(doc)
        want = python_row(INVOCATION_V1, obj) + python_row(SPAN_V1, obj)
        diff = {
            label: {"python": w, "flink": g}
            for label, w, g in zip(labels(), want, got[i], strict=True)
            if w != g
        }
        if diff:
            disagreements.append((doc[:300], diff))
    assert not disagreements, f"{len(disagreements)} disagreements, e.g. {disagreements[:3]}"


def test_payloads_exercise_every_rule_and_typed_value(flink_rows):
    """The comparison above means little unless both sides saw each rule fire."""
    _, got = flink_rows
    at = {label: j for j, label in enumerate(labels())}
    rows = list(got.values())
    reasons = [row[at[f"{c.name} reason"]] for row in rows for c in CONTRACTS]
    text = "\n".join(r for r in reasons if r)
    for fragment in (
        "not a JSON object",
        "schema_version: 2 is newer than supported v1",
        ": required",
        "not a valid long",
        "not a valid double",
        "not a valid boolean",
        "not a valid timestamp",
        "not finite",
        ": below 0",
        "not one of",
    ):
        assert fragment in text, fragment
    for contract, least in ((INVOCATION_V1, 100), (SPAN_V1, 60)):
        accepted = sum(1 for row in rows if row[at[f"{contract.name} reason"]] is None)
        assert accepted >= least, (contract.name, accepted)
    event_times = {row[at["InvocationEvent.event_time"]] for row in rows} - {None}
    assert len(event_times) >= 200, len(event_times)
    assert any(t.endswith(".000") is False for t in event_times), "fractions were compared"


@pytest.fixture(scope="module")
def format_rows(flink_rows):
    """Each payload's bytes through ContractDeserializationSchema, as the sources decode them:
    per contract [reason, every field (timestamps as UTC text)] and the rowtime in epoch ms."""
    from pyflink.java_gateway import get_gateway

    gateway = get_gateway()  # flink_rows registered the jar with this JVM
    docs, _ = flink_rows
    got: dict[int, list] = {i: [] for i in range(len(docs))}
    rowtimes: dict[str, list[int]] = {}
    for contract in CONTRACTS:
        names = [*contract.names, *(n for n, _ in EXTRA_COLUMNS), RAW_COLUMN]
        columns = gateway.new_array(gateway.jvm.String, len(names))
        for j, name in enumerate(names):
            columns[j] = name
        schema = gateway.jvm.io.genaiapm.flink.ContractDeserializationSchema(
            contract_json(contract, EVENT_TIME[contract.name]), columns, None
        )
        kinds = [f.kind for f in contract.fields]
        rowtimes[contract.name] = []
        for i, doc in enumerate(docs):
            payload = doc.encode()
            row = schema.deserialize(payload)
            values = [row.getField(j) for j in range(len(names))]
            fields, (reason, event_ts, raw) = values[: len(kinds)], values[len(kinds) :]
            typed = []
            for kind, v in zip(kinds, fields, strict=True):
                if v is not None and kind is Kind.TIMESTAMP:
                    v = timestamp_text(v.getMillisecond())
                elif v is not None and kind is Kind.STRING:
                    v = v.toString()
                typed.append(v)
            got[i] += [None if reason is None else reason.toString(), *typed]
            rowtimes[contract.name].append(event_ts.getMillisecond())
            assert bytes(raw) == payload
    return docs, got, rowtimes


def test_python_validator_agrees_with_the_source_format_on_every_payload(format_rows):
    docs, got, rowtimes = format_rows
    disagreements = []
    for i, doc in enumerate(docs):
        obj = validate.parse(doc)
        want = python_row(INVOCATION_V1, obj) + python_row(SPAN_V1, obj)
        diff = {
            label: {"python": w, "format": g}
            for label, w, g in zip(labels(), want, got[i], strict=True)
            if w != g
        }
        for contract in CONTRACTS:
            # the rowtime: the event-time field's instant, the epoch when it has none
            field = contract.field(EVENT_TIME[contract.name])
            want_ms = validate.value(field, obj) or 0
            if rowtimes[contract.name][i] != want_ms:
                diff[f"{contract.name} rowtime"] = (want_ms, rowtimes[contract.name][i])
        if diff:
            disagreements.append((doc[:300], diff))
    assert not disagreements, f"{len(disagreements)} disagreements, e.g. {disagreements[:3]}"
    # the comparison above means little unless the format saw most rules fire and pass
    reasons = [row[0] for row in got.values()]
    assert sum(r is None for r in reasons) >= 100
    assert any(r and "not finite" in r for r in reasons)
    assert any(r and "newer than supported" in r for r in reasons)
    assert len({t for ts in rowtimes.values() for t in ts}) >= 200


def test_the_format_keeps_a_null_record_as_a_dead_letter(flink_rows):
    """A Kafka tombstone is "not a JSON object", as the raw format's NULL payload was."""
    from pyflink.java_gateway import get_gateway

    gateway = get_gateway()
    columns = gateway.new_array(gateway.jvm.String, 3)
    for j, name in enumerate(("reason", "event_ts", "raw")):
        columns[j] = name
    schema = gateway.jvm.io.genaiapm.flink.ContractDeserializationSchema(
        contract_json(INVOCATION_V1, "event_time"), columns, None
    )
    row = schema.deserialize(None)
    assert row.getField(0).toString() == "not a JSON object"
    assert row.getField(1).getMillisecond() == 0
    assert row.getField(2) is None
