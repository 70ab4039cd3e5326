"""GENAI_USER_MINUTES and GENAI_SESSION_MINUTES (infra/udfs KeyedMinutes) through a real Flink
job, against the same minutes computed in Python.

Random calls (NULL tokens, unpriced and failed calls, users seen only failing) of several
model x app keys over three minutes go through ONE streaming job: a 1-minute TUMBLE per key
whose arrays are unnested, as jobs/minutes.py does. A tiny local window buffer makes Flink
flush partial accumulators many times per window, so the functions' merge and serializer
(the exchange between the local and the global aggregation) are exercised, not just
accumulate. Every unnested row must equal what SQL's SUM / COUNT / MAX / GENAI_HIST of the
same calls give (NULL where SQL gives NULL), computed here from the rows.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from datetime import UTC, datetime

import numpy as np
import pytest

from genai_apm.flink.env import register_functions
from genai_apm.jobs import minutes
from genai_apm.jobs.latency import bucket_index
from tests.flink_text import counts

LOG_GAMMA = math.log(1.02)
T0 = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1000)
MINUTE = 60_000


def calls() -> list[dict]:
    rng = np.random.default_rng(19)
    rows = []
    for _ in range(3000):
        ok = bool(rng.random() < 0.85)
        user = f"u{int(rng.zipf(1.6)) % 40}"
        rows.append(
            {
                "k": f"k{int(rng.integers(0, 3))}",
                "ms": T0 + int(rng.integers(0, 3 * MINUTE)),
                "user_id": user,
                "feature": f"f{int(rng.integers(0, 2))}",
                "session": f"s{int(rng.integers(0, 200))}",
                "ok": ok,
                "inp": None if rng.random() < 0.1 else int(rng.lognormal(6, 1.5)),
                "outp": None if rng.random() < 0.1 else int(rng.lognormal(4, 1)),
                "cr": int(rng.integers(0, 50)),
                "cw": int(rng.integers(0, 5)),
                "cost": None if rng.random() < 0.2 else float(rng.lognormal(-6, 1)),
                "lat": float(rng.lognormal(6, 1)) if ok else None,
            }
        )
    # a user whose calls all failed: NULL sums and maxima, empty histograms
    for j in range(3):
        rows.append(
            {
                "k": "k0", "ms": T0 + 1000 + j, "user_id": "failing", "feature": "f0",
                "session": "s-failing", "ok": False, "inp": None, "outp": None, "cr": 0,
                "cw": 0, "cost": None, "lat": None,
            }
        )  # fmt: skip
    return sorted(rows, key=lambda r: r["ms"])


def expected_users(rows) -> dict:
    """(k, minute, user, feature) -> the minute_users columns, as SQL computes them."""
    groups = defaultdict(list)
    for r in rows:
        groups[(r["k"], r["ms"] // MINUTE, r["user_id"], r["feature"])].append(r)

    def total(values):
        values = [v for v in values if v is not None]
        return sum(values) if values else None

    def most(values):
        values = [v for v in values if v is not None]
        return max(values) if values else None

    def hist(values):
        out = defaultdict(int)
        for v in values:
            if v is not None:
                out[bucket_index(float(v), LOG_GAMMA)] += 1
        return dict(out)

    out = {}
    for key, g in groups.items():
        ok = [r for r in g if r["ok"]]
        unpriced = [r for r in g if r["cost"] is None]
        out[key] = {
            "requests": len(g),
            "ok_requests": len(ok),
            "input_tokens_sum": total(r["inp"] for r in g),
            "output_tokens_sum": total(r["outp"] for r in g),
            "cache_read_tokens_sum": sum(r["cr"] for r in g),
            "cache_write_tokens_sum": sum(r["cw"] for r in g),
            "priced_requests": sum(r["cost"] is not None for r in g),
            "cost_usd": total(r["cost"] for r in g),
            "unpriced_tokens": total((r["inp"] or 0) + (r["outp"] or 0) for r in unpriced)
            if unpriced
            else None,
            "latency_max_ms": most(r["lat"] for r in ok),
            "ok_input_tokens_sum": total(r["inp"] for r in ok),
            "ok_input_tokens_n": sum(r["inp"] is not None for r in ok),
            "ok_input_tokens_max": most(r["inp"] for r in ok),
            "ok_output_tokens_sum": total(r["outp"] for r in ok),
            "ok_output_tokens_n": sum(r["outp"] is not None for r in ok),
            "ok_output_tokens_max": most(r["outp"] for r in ok),
            "latency_h": hist(r["lat"] for r in ok),
            "ok_input_tokens_h": hist(r["inp"] for r in ok),
            "ok_output_tokens_h": hist(r["outp"] for r in ok),
        }
    return out


def expected_sessions(rows) -> dict:
    groups = defaultdict(list)
    for r in rows:
        groups[(r["k"], r["ms"] // MINUTE, r["session"])].append(r)
    out = {}
    for key, g in groups.items():
        priced = [r["cost"] for r in g if r["cost"] is not None]
        out[key] = {
            "requests": len(g),
            "priced_requests": len(priced),
            "input_tokens": sum(r["inp"] or 0 for r in g),
            "output_tokens": sum(r["outp"] or 0 for r in g),
            "cache_read_tokens": sum(r["cr"] for r in g),
            "cache_write_tokens": sum(r["cw"] for r in g),
            "unpriced_tokens": sum(
                (r["inp"] or 0) + (r["outp"] or 0) for r in g if r["cost"] is None
            ),
            "cost_usd": sum(priced) if priced else None,
        }
    return out


@pytest.fixture(scope="module")
def flink_rows(tmp_path_factory):
    from pyflink.table import EnvironmentSettings, TableEnvironment

    rows = calls()
    data = tmp_path_factory.mktemp("keyed") / "calls.json"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    config = t_env.get_config()
    config.set("table.local-time-zone", "UTC")
    config.set("parallelism.default", "1")
    # flush the local aggregation's buffer every few calls: many partial accumulators per
    # window, serialized to the global aggregation and merged there
    config.set("table.exec.window-agg.buffer-size-limit", "16")
    register_functions(t_env)
    t_env.execute_sql(f"""
      CREATE TABLE calls (k STRING, ms BIGINT, user_id STRING, feature STRING, session STRING,
        ok BOOLEAN, inp BIGINT, outp BIGINT, cr BIGINT, cw BIGINT, cost DOUBLE, lat DOUBLE,
        ts AS TO_TIMESTAMP_LTZ(ms, 3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
      WITH ('connector' = 'filesystem', 'path' = '{data.as_uri()}', 'format' = 'json')""")
    t_env.execute_sql(f"""
      CREATE TEMPORARY VIEW m AS
      SELECT k, window_start, window_time,
        GENAI_USER_MINUTES(user_id, feature, ok, inp, outp, cr, cw, cost, lat, {LOG_GAMMA!r})
          AS users,
        GENAI_SESSION_MINUTES(session, inp, outp, cr, cw, cost) AS sessions
      FROM TABLE(TUMBLE(TABLE calls, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
      GROUP BY k, window_start, window_end, window_time""")
    maps = {"latency_h", "ok_input_tokens_h", "ok_output_tokens_h"}
    user_cols = ", ".join(
        f"CAST(u.{c} AS STRING)" if c in maps else f"u.{c}" for c in minutes.USER_ROW
    )
    session_cols = ", ".join(f"s.{c}" for c in minutes.SESSION_ROW)
    users = f"""
      SELECT k, window_start, {user_cols}
      FROM m CROSS JOIN UNNEST(users) AS u ({", ".join(minutes.USER_ROW)})"""
    sessions = f"""
      SELECT k, window_start, {session_cols}
      FROM m CROSS JOIN UNNEST(sessions) AS s ({", ".join(minutes.SESSION_ROW)})"""
    with t_env.execute_sql(users).collect() as results:
        got_users = [tuple(r) for r in results]
    with t_env.execute_sql(sessions).collect() as results:
        got_sessions = [tuple(r) for r in results]
    return rows, got_users, got_sessions


def _minute(start) -> int:
    return int(start.replace(tzinfo=UTC).timestamp() * 1000) // MINUTE


def test_user_rows_equal_the_sql_aggregates(flink_rows):
    rows, got, _ = flink_rows
    want = expected_users(rows)
    seen = {}
    for k, start, user, feature, *values in got:
        key = (k, _minute(start), user, feature)
        assert key not in seen, f"two rows for {key}"
        seen[key] = dict(zip(minutes.USER_COLUMNS, values, strict=True))
    assert seen.keys() == want.keys()
    for key, columns in want.items():
        for name, expected in columns.items():
            value = seen[key][name]
            if name.endswith("_h"):
                value = counts(value)
            if name == "cost_usd" and expected is not None:
                assert value == pytest.approx(expected, rel=1e-12), (key, name)
            else:
                assert value == expected, (key, name, value, expected)
    failing = [v for (k, _, u, _f), v in seen.items() if u == "failing"]
    assert failing and failing[0]["input_tokens_sum"] is None and failing[0]["latency_h"] == "{}"


def test_session_rows_equal_the_sql_aggregates(flink_rows):
    rows, _, got = flink_rows
    want = expected_sessions(rows)
    seen = {}
    for k, start, session, *values in got:
        key = (k, _minute(start), session)
        assert key not in seen, f"two rows for {key}"
        seen[key] = dict(zip(minutes.SESSION_ROW[1:], values, strict=True))
    assert seen.keys() == want.keys()
    for key, columns in want.items():
        for name, expected in columns.items():
            value = seen[key][name]
            if name == "cost_usd" and expected is not None:
                assert value == pytest.approx(expected, rel=1e-12), (key, name)
            else:
                assert value == expected, (key, name, value, expected)
