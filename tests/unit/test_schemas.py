"""Every generated form of the contracts: up to date, and meaning what the contract says."""

from __future__ import annotations

import json
import random
import re
import shutil
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from jsonschema import Draft202012Validator

from genai_apm.schemas import generate, validate
from genai_apm.schemas.arrow import arrow_schema
from genai_apm.schemas.athena import athena_columns, athena_ddl, render
from genai_apm.schemas.contract import Kind
from genai_apm.schemas.flink_sql import flink_columns
from genai_apm.schemas.invocation import INVOCATION_V1
from genai_apm.schemas.json_schema import json_schema
from genai_apm.schemas.span import OTEL_SEMCONV_VERSION, SPAN_V1
from genai_apm.traffic import TrafficSpec, invocations
from tests.unit.test_validate_vs_flink import payloads, valid_span

CONTRACTS = (INVOCATION_V1, SPAN_V1)
# (JSON Schema type, Arrow, Flink, Athena) per kind, written out independently of the code
TYPES = {
    Kind.STRING: ("string", pa.string(), "STRING", "string"),
    Kind.LONG: ("integer", pa.int64(), "BIGINT", "bigint"),
    Kind.DOUBLE: ("number", pa.float64(), "DOUBLE", "double"),
    Kind.BOOLEAN: ("boolean", pa.bool_(), "BOOLEAN", "boolean"),
    Kind.TIMESTAMP: (None, pa.timestamp("ms", tz="UTC"), "TIMESTAMP_LTZ(3)", "timestamp"),
}


def epoch_ms_to_datetime(ms: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


# --- generated files ---------------------------------------------------------------------


def test_committed_artifacts_match_a_fresh_generation():
    out_of_date = [str(p) for p in generate.stale()]
    assert not out_of_date, f"run `{generate.COMMAND}`: out of date {out_of_date}"


def test_generate_writes_every_artifact_and_check_notices_edits(tmp_path):
    (tmp_path / "schemas").mkdir()
    shutil.copy(generate.ROOT / generate.README, tmp_path / generate.README)
    assert generate.main(["--check", "--root", str(tmp_path)]) == 1
    assert generate.main(["--root", str(tmp_path)]) == 0
    assert generate.main(["--check", "--root", str(tmp_path)]) == 0
    for path in generate.artifacts(tmp_path):
        assert (tmp_path / path).read_text() == (generate.ROOT / path).read_text(), path
    spans_sql = tmp_path / "infra/athena/spans.sql"
    spans_sql.write_text(spans_sql.read_text().replace("bigint", "int"))
    assert generate.main(["--check", "--root", str(tmp_path)]) == 1


def test_readme_tables_list_every_field_with_its_otel_attribute():
    readme = (generate.ROOT / generate.README).read_text()
    assert f"**v{OTEL_SEMCONV_VERSION}**" in readme
    for contract in CONTRACTS:
        section = readme.split(f"### {contract.name} v{contract.version}\n")[1].split("###")[0]
        rows = [line.split(" | ") for line in section.splitlines() if line.startswith("| `")]
        assert [r[0] for r in rows] == [f"| `{n}`" for n in contract.names]
        for f, row in zip(contract.fields, rows, strict=True):
            assert row[1:4] == [
                f.kind.value,
                "yes" if f.required else "",
                f"`{f.otel}`" if f.otel else "",
            ], row


# --- types agree across forms ------------------------------------------------------------


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda c: c.name)
def test_every_form_types_each_field_the_same_way(contract):
    arrow = arrow_schema(contract)
    schema = json_schema(contract)["properties"]
    assert [n for n, _ in flink_columns(contract)] == list(contract.names)
    assert [n for n, _ in athena_columns(contract)] == list(contract.names)
    assert arrow.names == list(contract.names)
    for f, (_, flink), (_, athena) in zip(
        contract.fields, flink_columns(contract), athena_columns(contract), strict=True
    ):
        json_type, arrow_type, flink_type, athena_type = TYPES[f.kind]
        assert (arrow.field(f.name).type, flink, athena) == (arrow_type, flink_type, athena_type)
        assert arrow.field(f.name).nullable is not f.required
        if json_type is not None:
            declared = schema[f.name]["type"]
            assert declared == (json_type if f.required else [json_type, "null"])


# --- JSON Schema -------------------------------------------------------------------------


def schema_validator(contract) -> Draft202012Validator:
    schema = json_schema(contract)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def test_json_schema_header_and_evolution_rules():
    schema = json_schema(INVOCATION_V1)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == "urn:genai-apm:schema:invocation-event:v1"
    assert (schema["title"], schema["x-schema-version"]) == ("InvocationEvent", 1)
    assert schema["additionalProperties"] is True
    assert schema["required"] == ["event_time", "request_id", "model_id", "status"]
    assert schema["properties"]["schema_version"]["maximum"] == 1
    assert schema["properties"]["error_class"]["enum"][-1] is None


def test_generated_traffic_honours_the_json_schema_and_the_pipeline():
    inv, span = schema_validator(INVOCATION_V1), schema_validator(SPAN_V1)
    for event in invocations(TrafficSpec(error_rate=0.3), 300):
        assert not list(inv.iter_errors(event)), event
        assert validate.reason(INVOCATION_V1, event) is None, event
    rng = random.Random(3)
    for _ in range(50):
        event = valid_span(rng)
        assert not list(span.iter_errors(event)), event
        assert validate.reason(SPAN_V1, event) is None, event


VALID = {"event_time": 1767225600000, "request_id": "r", "model_id": "m", "status": "success"}


@pytest.mark.parametrize(
    "changes, valid",
    [
        ({}, True),
        ({"schema_version": 1, "error_class": None, "added_later": {"x": 1}}, True),
        ({"event_time": "2025-12-31T19:30:00.123456-04:30"}, True),
        ({"event_time": "9999-12-31T23:59:59.999-00:00"}, True),
        ({"schema_version": 2}, False),
        ({"request_id": None}, False),
        ({"status": "cosmic"}, False),
        ({"error_class": "cosmic"}, False),
        ({"latency_ms": -0.5}, False),
        ({"latency_ms": Decimal("1e400")}, False),
        ({"output_tokens": "12"}, False),  # the pipeline is more lenient here
        ({"output_tokens": 10**18}, False),
        ({"streaming": "true"}, False),
        ({"event_time": "2026-01-01T00:00:00"}, False),
        ({"event_time": "2026-02-30T00:00:00Z"}, False),
        ({"event_time": "0001-01-01T00:00:00+01:00"}, False),
        ({"event_time": "9999-12-31T23:59:59-01:00"}, False),
        ({"event_time": 253402300800000}, False),
        ({"event_time": -1}, False),
    ],
)
def test_json_schema_rules(changes, valid):
    record = {**VALID, **changes}
    errors = [e.message for e in schema_validator(INVOCATION_V1).iter_errors(record)]
    assert (not errors) is valid, errors


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda c: c.name)
def test_json_schema_never_accepts_what_the_pipeline_rejects(contract):
    """A producer that validates against the schema never fills the dead-letter topic.

    Numbers are read as the pipeline reads them (fractions as Decimal), so 1.0 is no integer
    to the schema either; a float 1.0 is the one gap 2020-12 cannot close.
    """
    validator = schema_validator(contract)
    accepted = 0
    for doc in payloads():
        obj = validate.parse(doc)
        if obj is validate.NOT_JSON or validator.is_valid(obj) is False:
            continue
        accepted += 1
        assert validate.reason(contract, obj) is None, doc
    assert accepted >= 30, accepted


# --- Arrow / Parquet ---------------------------------------------------------------------


def test_arrow_schema_carries_docs_and_otel_names():
    schema = arrow_schema(INVOCATION_V1)
    assert schema.field("request_id").metadata == {b"doc": b"provider request id, unique per call"}
    assert schema.field("output_tokens").metadata == {b"otel": b"gen_ai.usage.output_tokens"}
    assert schema.field("tenant_id").metadata is None
    assert schema.metadata == {b"contract": b"InvocationEvent", b"schema_version": b"1"}


def test_parquet_written_with_the_arrow_schema_reads_back_in_duckdb(tmp_path):
    events = list(invocations(TrafficSpec(error_rate=0.2), 400))
    rows = [{**e, "event_time": epoch_ms_to_datetime(e["event_time"])} for e in events]
    path = tmp_path / "invocations.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=arrow_schema(INVOCATION_V1)), path)

    assert pq.read_schema(path).field("event_time").nullable is False
    con = duckdb.connect()
    described = dict(
        (name, sql_type)
        for name, sql_type, *_ in con.execute(f"DESCRIBE SELECT * FROM '{path}'").fetchall()
    )
    duck = {"string": "VARCHAR", "long": "BIGINT", "double": "DOUBLE", "boolean": "BOOLEAN"}
    duck["timestamp"] = "TIMESTAMP WITH TIME ZONE"
    assert described == {f.name: duck[f.kind.value] for f in INVOCATION_V1.fields}
    got = con.execute(
        f"SELECT epoch_ms(event_time), request_id, latency_ms, ttft_ms, output_tokens, "
        f"streaming, error_class FROM '{path}'"
    ).fetchall()
    want = [
        (
            e["event_time"],
            e["request_id"],
            e["latency_ms"],
            e["ttft_ms"],
            e["output_tokens"],
            e["streaming"],
            e["error_class"],
        )
        for e in events
    ]
    assert got == want
    errors = con.execute(f"SELECT count(*) FROM '{path}' WHERE status = 'error'").fetchone()[0]
    assert errors == sum(e["status"] == "error" for e in events) > 0


def test_validator_records_fit_the_arrow_schema():
    """record() gives timestamps as epoch ms, which Arrow's timestamp[ms] takes as is."""
    events = list(invocations(TrafficSpec(), 50))
    table = pa.Table.from_pylist(
        [validate.record(INVOCATION_V1, e) for e in events], schema=arrow_schema(INVOCATION_V1)
    )
    assert table.column("event_time").to_pylist() == [
        epoch_ms_to_datetime(e["event_time"]) for e in events
    ]


# --- Athena ------------------------------------------------------------------------------


def tblproperties(ddl: str) -> dict[str, str]:
    block = ddl[ddl.index("TBLPROPERTIES (") :]
    return dict(re.findall(r"'([^']+)' = '([^']*)'", block))


def test_athena_ddl_for_a_contract_is_partitioned_and_projected():
    text = (generate.ROOT / "infra/athena/invocations.sql").read_text()
    assert "${bucket}" in text.split("CREATE")[0], "the placeholder is documented"
    ddl = render(text, bucket="my-apm-bucket")
    assert ddl.startswith("CREATE EXTERNAL TABLE IF NOT EXISTS `invocations` (")
    columns = re.findall(r"^  `(\w+)` (\w+)", ddl.split("PARTITIONED BY")[0], re.MULTILINE)
    assert columns == athena_columns(INVOCATION_V1)
    assert "PARTITIONED BY (`dt` string, `hour` string)" in ddl
    assert "STORED AS PARQUET" in ddl
    assert "LOCATION 's3://my-apm-bucket/invocations/'" in ddl
    assert tblproperties(ddl) == {
        "projection.enabled": "true",
        "projection.dt.type": "date",
        "projection.dt.format": "yyyy-MM-dd",
        "projection.dt.range": "2024-01-01,NOW",
        "projection.dt.interval": "1",
        "projection.dt.interval.unit": "DAYS",
        "projection.hour.type": "integer",
        "projection.hour.range": "0,23",
        "projection.hour.digits": "2",
        "storage.location.template": "s3://my-apm-bucket/invocations/dt=${dt}/hour=${hour}/",
    }
    assert "--" not in ddl and ddl.rstrip().endswith(");")


def test_athena_ddl_is_general_and_quotes_reserved_words():
    ddl = athena_ddl(
        "daily_latency",
        [("date", "date"), ("timestamp", "timestamp"), ("p99_ms", "double")],
        location="s3://b/derived/daily_latency",
        partitioned=False,
        comments={"p99_ms": "it's the 99th percentile"},
    )
    assert "  `date` date,\n  `timestamp` timestamp,\n" in ddl
    assert "COMMENT 'it\\'s the 99th percentile'" in ddl
    assert "LOCATION 's3://b/derived/daily_latency/'" in ddl
    assert "PARTITIONED BY" not in ddl and "TBLPROPERTIES" not in ddl
    with pytest.raises(ValueError):
        athena_ddl("t", [("Bad Name", "string")], location="s3://b/t")
    with pytest.raises(ValueError):
        render("LOCATION 's3://${bucket}/x/'", bucket="Not_A_Bucket")


# --- the Python validator ----------------------------------------------------------------


def test_validator_reads_python_dicts_as_flink_reads_their_json():
    """problems(dict) must equal problems(parse(json.dumps(dict))): floats included."""
    rng = random.Random(5)
    odd = [-0.0, 1e-7, 1e22, 1.0, 12.5, -1.5, float("inf"), 10**18, True, "7", None, [1]]
    for event in invocations(TrafficSpec(error_rate=0.3), 200):
        for _ in range(rng.randrange(3)):
            event[rng.choice(INVOCATION_V1.names)] = rng.choice(odd)
        via_json = validate.parse(json.dumps(event))
        assert validate.problems(INVOCATION_V1, event) == validate.problems(
            INVOCATION_V1, via_json
        ), event
        assert validate.record(INVOCATION_V1, event) == validate.record(INVOCATION_V1, via_json)


def test_validator_messages_and_schema_version():
    reason = validate.reason
    assert reason(INVOCATION_V1, VALID) is None
    assert reason(INVOCATION_V1, {**VALID, "schema_version": 1}) is None
    assert reason(INVOCATION_V1, {**VALID, "schema_version": None}) is None
    newer = reason(INVOCATION_V1, {"schema_version": "3", "event_time": "soon"})
    assert newer == "schema_version: 3 is newer than supported v1"
    assert validate.newer_version(newer) == 3
    assert validate.newer_version("latency_ms: below 0") is None
    assert reason(INVOCATION_V1, {**VALID, "schema_version": 0}) is None
    assert reason(INVOCATION_V1, {**VALID, "latency_ms": -1, "status": "ok"}) == (
        "latency_ms: below 0; status: not one of success|error"
    )
    assert reason(INVOCATION_V1, {"model_id": "m"}) == (
        "event_time: required; request_id: required; status: required"
    )
    for not_an_object in ([], "{}", None, 5, validate.NOT_JSON, {**VALID, "x": float("nan")}):
        assert reason(INVOCATION_V1, not_an_object) == "not a JSON object"


@pytest.mark.parametrize(
    "payload, is_object",
    [
        ('{"a": 1} trailing', True),
        (' \t\r\n{"a": 1}', True),
        (b'{"a": "\xff"}', True),
        ("\ufeff{}", False),
        ('{"a": NaN}', False),
        ('{"a": ' + "[" * 999 + "]" * 999 + "}", True),
        ('{"a": ' + "[" * 1000 + "]" * 1000 + "}", False),
        ('{"a": "' + "[" * 2000 + '"}', True),
        ('{"a": ' + "1" * 1000 + "}", True),
        ('{"a": ' + "1" * 1001 + "}", False),
    ],
)
def test_parse_follows_jackson(payload, is_object):
    assert isinstance(validate.parse(payload), dict) is is_object


def test_timestamps_in_python():
    ms = validate.timestamp_ms
    assert ms("2025-12-31T19:30:00.5-04:30") == 1767225600500
    assert ms("2026-01-01t00:00:00.123999z") == 1767225600123
    assert ms("1767225600000") == 1767225600000
    assert ms("0001-01-01T00:00:00Z") == int(
        (datetime(1, 1, 1, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() * 1000
    )
    for bad in ("2026-02-30T00:00:00Z", "2026-01-01T24:00:00Z", "2026-01-01T00:00:00+18:30"):
        assert ms(bad) is None, bad
    assert ms("253402300799999") is not None and ms("253402300800000") is None
