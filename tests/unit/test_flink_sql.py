"""The contract's generated SQL, evaluated by a local batch Flink (no servers) on edge cases."""

from __future__ import annotations

import json

import pytest

from genai_apm.flink.env import register_functions
from genai_apm.schemas.flink_sql import rejection_reason, typed
from genai_apm.schemas.invocation import INVOCATION_V1

VALID = {"event_time": 1767225600000, "request_id": "r-1", "model_id": "m", "status": "success"}


def with_(**changes) -> str:
    return json.dumps({**VALID, **changes})


def literal(payload: str, key: str, json_literal: str) -> str:
    """``payload`` with ``key``'s value written as a literal json.dumps cannot produce."""
    return payload.replace(f'"{key}": 1', f'"{key}": {json_literal}')


ET = "event_time: not a valid timestamp"
# (payload, expected event time in epoch ms or None, the exact expected reason or None)
CASES = [
    (with_(), 1767225600000, None),
    (with_(event_time="2026-01-01T00:00:00Z"), 1767225600000, None),
    (with_(event_time="2026-01-01t00:00:00z"), 1767225600000, None),
    (with_(event_time="2026-01-01T00:00:00.250Z"), 1767225600250, None),
    (with_(event_time="2026-01-01T02:00:00+02:00"), 1767225600000, None),
    (with_(event_time="2025-12-31T19:30:00.5-04:30"), 1767225600500, None),
    (with_(event_time="2026-01-01T00:00:00.123456Z"), 1767225600123, None),
    (with_(event_time="2026-01-01T00:00:00"), None, ET),
    (with_(event_time="soon"), None, ET),
    # Flink's lenient resolver would read these as 2026-02-28 and 2026-01-02
    (with_(event_time="2026-02-30T00:00:00Z"), None, ET),
    (with_(event_time="2026-01-01T24:00:00Z"), None, ET),
    # past 9999-12-31T23:59:59.999Z (Flink would wrap the second round to year 0)
    (with_(event_time=253402300800000), None, ET),
    (with_(event_time="9999-12-31T23:59:59-01:00"), None, ET),
    (with_(latency_ms=12, input_tokens=7, streaming=True), 1767225600000, None),
    (with_(latency_ms=-1), 1767225600000, "latency_ms: below 0"),
    (literal(with_(latency_ms=1), "latency_ms", "1e400"), None, "latency_ms: not finite"),
    (literal(with_(latency_ms=1), "latency_ms", "-1e400"), None, "latency_ms: not finite"),
    (literal(with_(latency_ms=1), "latency_ms", "NaN"), None, "not a JSON object"),
    (with_(latency_ms="NaN"), None, "latency_ms: not a valid double"),
    (with_(output_tokens=1.5), 1767225600000, "output_tokens: not a valid long"),
    (with_(output_tokens=10**20), 1767225600000, "output_tokens: not a valid long"),
    # JSON_VALUE gives 1.5e1 as "15"; "12\n" once matched '^...$' and its CAST failed the job
    (literal(with_(output_tokens=1), "output_tokens", "1.5e1"), None, None),
    (with_(output_tokens="12\n"), None, "output_tokens: not a valid long"),
    (with_(streaming="maybe"), 1767225600000, "streaming: not a valid boolean"),
    (
        with_(error_class="cosmic"),
        1767225600000,
        "error_class: not one of client|server|throttle|timeout|content_filtered",
    ),
    (
        json.dumps({"model_id": "m"}),
        None,
        "event_time: required; request_id: required; status: required",
    ),
    (with_(schema_version="1"), 1767225600000, None),
    # a later version is refused as such, not judged by this version's rules
    (
        with_(schema_version=2, request_id=None),
        None,
        "schema_version: 2 is newer than supported v1",
    ),
    (with_() + " trailing", 1767225600000, None),  # Jackson stops after the first value
    ("[]", None, "not a JSON object"),
    ("{", None, "not a JSON object"),
]


@pytest.fixture(scope="module")
def batch_env():
    from pyflink.table import EnvironmentSettings, TableEnvironment

    t_env = TableEnvironment.create(EnvironmentSettings.in_batch_mode())
    t_env.get_config().set("table.local-time-zone", "UTC")
    t_env.get_config().set("parallelism.default", "1")
    register_functions(t_env)  # GENAI_JSON_TEXTS, GENAI_TIMESTAMP: the generated SQL uses them
    return t_env


def test_typed_event_time_and_rejection_reasons(batch_env):
    rows = ", ".join(
        f"({i}, '{payload.replace(chr(39), chr(39) * 2)}')"
        for i, (payload, _, _) in enumerate(CASES)
    )
    event_time = typed(INVOCATION_V1.field("event_time"), "doc")
    reason = rejection_reason(INVOCATION_V1, "doc")
    query = f"""
        SELECT i, CAST(UNIX_TIMESTAMP(CAST(ts AS STRING)) AS BIGINT) * 1000
                  + EXTRACT(MILLISECOND FROM ts), reason
        FROM (SELECT i, CAST({event_time} AS TIMESTAMP(3)) AS ts, {reason} AS reason
              FROM (VALUES {rows}) AS T(i, doc))"""
    with batch_env.execute_sql(query).collect() as results:
        got = {row[0]: (row[1], row[2]) for row in results}
    for i, (payload, want_ms, want_reason) in enumerate(CASES):
        got_ms, got_reason = got[i]
        if want_ms is not None:
            assert got_ms == want_ms, (payload, got_ms)
        if want_reason == ET:
            assert got_ms is None, (payload, got_ms)
        assert got_reason == want_reason, payload


def _format_source(batch_env, tmp_path, name: str, lines: list[str], edit=None) -> None:
    from genai_apm.connectors.files import raw_file_source_ddl
    from genai_apm.jobs.sources import decoding
    from genai_apm.settings.config import FlinkSettings

    path = tmp_path / f"{name}.jsonl"
    path.write_text("".join(line + "\n" for line in lines))
    ddl = raw_file_source_ddl(name, str(path), decoding=decoding(), flink=FlinkSettings())
    batch_env.execute_sql(edit(ddl) if edit else ddl)


def test_the_source_format_gives_the_same_event_times_and_reasons(batch_env, tmp_path):
    """The CASES above through the `genai-contract` format of a file source: its physical
    `event_ts` (the epoch when the record has no usable time) and `reason`."""
    _format_source(batch_env, tmp_path, "cases", [payload for payload, _, _ in CASES])
    query = """
        SELECT `reason`, CAST(UNIX_TIMESTAMP(CAST(ts AS STRING)) AS BIGINT) * 1000
                  + EXTRACT(MILLISECOND FROM ts), event_time IS NULL, CAST(`raw` AS STRING)
        FROM (SELECT *, CAST(`event_ts` AS TIMESTAMP(3)) AS ts FROM cases)"""
    with batch_env.execute_sql(query).collect() as results:
        got = {row[3]: (row[0], row[1], row[2]) for row in results}
    assert len(got) == len(CASES)
    for payload, want_ms, want_reason in CASES:
        reason, event_ms, no_time = got[payload]
        assert reason == want_reason, payload
        if want_ms is not None:
            assert event_ms == want_ms, payload
        if want_reason in (ET, "not a JSON object"):
            assert (event_ms, no_time) == (0, True), payload


@pytest.mark.parametrize(
    ("old", "new", "error"),
    [
        ("`raw` BYTES,", "`raw` BYTES, `latency` DOUBLE,", "column latency is neither a field"),
        ("`latency_ms` DOUBLE", "`latency_ms` STRING", "column latency_ms must be DOUBLE"),
    ],
)
def test_the_source_format_names_a_column_it_cannot_fill(batch_env, tmp_path, old, new, error):
    from py4j.protocol import Py4JJavaError

    name = f"odd_{len(new)}"
    _format_source(batch_env, tmp_path, name, [with_()], edit=lambda ddl: ddl.replace(old, new))
    with pytest.raises(Py4JJavaError, match=error):
        batch_env.execute_sql(f"SELECT * FROM {name}").collect().close()
