"""The histogram functions (infra/udfs Histograms, CountsMerge) through a real Flink job.

Random heavy-tailed values per key go through ONE streaming job (each job costs seconds): a
1-minute TUMBLE per key with GENAI_HIST beside today's COLLECT of SQL buckets, then cascaded
window TVFs over those minute rows (a 3-minute TUMBLE per key and over all keys, a 2-minute
HOP sliding by 1, whose slices GENAI_HIST_MERGE merges). Every histogram must equal the
Python-computed buckets of the same values; every quantile must lie within the documented
relative error of numpy's exact interpolated quantile (numpy's default = DuckDB's
quantile_cont).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from datetime import UTC, datetime

import numpy as np
import pytest

from genai_apm.flink.env import register_functions
from genai_apm.jobs.latency import bucket_index, histogram_gamma, histogram_quantiles
from tests.flink_text import counts, floats

A = 0.01  # the relative error under test (latency.histogram_relative_error's default)
GAMMA = histogram_gamma(A)
LOG_GAMMA = math.log(GAMMA)
PS = (0.5, 0.9, 0.95, 0.99, 0.0, 1.0)
T0 = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1000)
MINUTE = 60_000
# floating-point rounding only: the estimate's error reaches exactly a at bucket edges
ROUNDING = 1e-12


def events() -> list[tuple[str, int, float | None]]:
    """(key, epoch ms, value) in time order, three minutes, with the awkward cases."""
    rng = np.random.default_rng(16)
    rows: list[tuple[str, int, float | None]] = []

    def add(key: str, values) -> None:
        for v in values:
            rows.append((key, T0 + int(rng.integers(0, 3 * MINUTE)), v))

    add("pareto", (rng.pareto(1.2, 3000) + 1) * 50)  # heavy tail: 50 ms .. minutes
    add("lognormal", rng.lognormal(6, 1.5, 3000))
    add("small", rng.lognormal(0, 2, 500))  # around 1, down to 1e-3 and below
    add("zeros", [0.0] * 50 + list(rng.uniform(0, 0.002, 50)) + list(rng.lognormal(3, 1, 200)))
    add("equal", [123.456] * 400)
    with_nulls = rng.lognormal(5, 1, 600)
    add("with_nulls", [None if i % 3 == 0 else float(v) for i, v in enumerate(with_nulls)])
    add("empty", [None] * 20)  # rows, but no value: an empty histogram
    rows.append(("single", T0 + 61_000, 42.0))
    return sorted(rows, key=lambda r: r[1])


@pytest.fixture(scope="module")
def flink_rows(tmp_path_factory):
    from pyflink.table import EnvironmentSettings, TableEnvironment

    rows = events()
    data = tmp_path_factory.mktemp("hist") / "events.json"
    data.write_text("".join(json.dumps({"k": k, "ms": ms, "v": v}) + "\n" for k, ms, v in rows))
    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    config = t_env.get_config()
    config.set("table.local-time-zone", "UTC")
    config.set("parallelism.default", "1")
    register_functions(t_env)
    t_env.execute_sql(f"""
      CREATE TABLE events (k STRING, ms BIGINT, v DOUBLE,
        ts AS TO_TIMESTAMP_LTZ(ms, 3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
      WITH ('connector' = 'filesystem', 'path' = '{data.as_uri()}', 'format' = 'json')""")
    # today's bucket expression, as jobs/latency.py writes it
    sql_bucket = f"CAST(CEIL(LN(GREATEST(v, 0.001)) / {LOG_GAMMA!r}) AS INT)"
    ps = "ARRAY[" + ", ".join(map(repr, PS)) + "]"
    t_env.execute_sql(f"""
      CREATE TEMPORARY VIEW minutes AS
      SELECT k, window_time,
             GENAI_HIST(v, {LOG_GAMMA!r}) AS h,
             COLLECT(CAST({sql_bucket} AS STRING)) FILTER (WHERE v IS NOT NULL) AS c
      FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
      GROUP BY k, window_start, window_end, window_time""")

    def level(name: str, key: str, tvf: str, hist: str, counts: str, group: str) -> str:
        return f"""
          SELECT '{name}', {key}, window_start, window_end,
                 CAST({hist} AS STRING), CAST({counts} AS STRING),
                 CAST(GENAI_HIST_MULTISET({hist}) AS STRING),
                 CAST(GENAI_HIST_QUANTILES({hist}, {ps}, {GAMMA!r}) AS STRING),
                 GENAI_HIST_QUANTILE({hist}, 0.99, {GAMMA!r}),
                 GENAI_HIST_QUANTILE({hist}, CAST(NULL AS DOUBLE), {GAMMA!r})
          FROM TABLE({tvf}) GROUP BY {group}"""

    # NULL maps and multisets must be ignored by the merges: the empty key's become NULL
    h = "GENAI_HIST_MERGE(CASE WHEN k <> 'empty' THEN h END)"
    c = "GENAI_COUNTS_MERGE(CASE WHEN k <> 'empty' THEN c END)"
    per_key = "k, window_start, window_end"
    fleet = "window_start, window_end"
    tumble3 = "TUMBLE(TABLE minutes, DESCRIPTOR(window_time), INTERVAL '3' MINUTE)"
    hop = "HOP(TABLE minutes, DESCRIPTOR(window_time), INTERVAL '1' MINUTE, INTERVAL '2' MINUTE)"
    minute = "TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '1' MINUTE)"
    query = " UNION ALL ".join(
        [
            level(
                "1m",
                "k",
                minute,
                f"GENAI_HIST(v, {LOG_GAMMA!r})",
                f"COLLECT(CAST({sql_bucket} AS STRING)) FILTER (WHERE v IS NOT NULL)",
                per_key,
            ),
            level("3m", "k", tumble3, h, c, per_key),
            level("3m", "'*'", tumble3, h, c, fleet),
            level("hop", "k", hop, h, c, per_key),
        ]
    )
    # maps, multisets and arrays come back as text: PyFlink's collect cannot read them
    with t_env.execute_sql(query).collect() as results:
        got = [
            (
                name,
                key,
                start,
                end,
                counts(h, int),
                counts(c, str),
                counts(m, str),
                floats(qs),
                *rest,
            )
            for name, key, start, end, h, c, m, qs, *rest in results
        ]
    return rows, got


def values_in(rows, key: str, start: datetime, end: datetime) -> list[float]:
    lo, hi = start.timestamp() * 1000, end.timestamp() * 1000
    return [
        v
        for k, ms, v in rows
        if (key == "*" and k != "empty" or k == key) and lo <= ms < hi and v is not None
    ]


def as_utc(t) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t


def test_every_window_and_rollup_equals_python_buckets_and_numpy_quantiles(flink_rows):
    rows, got = flink_rows
    levels = Counter(r[0] for r in got)
    # 8 keys x 3 minutes, less the single key's empty minutes; one 3-minute window per key
    # and for the fleet; HOP windows overlap 4 minutes
    assert levels["3m"] == 9, levels
    assert levels["1m"] >= 3 * 7 and levels["hop"] >= 4 * 7, levels
    checked_p = Counter()
    for name, key, start, end, h, c, multiset, qs, q99, q_null in got:
        values = values_in(rows, key, as_utc(start), as_utc(end))
        want = Counter(bucket_index(v, LOG_GAMMA) for v in values)
        assert h == dict(want), (name, key, start)  # {} when no value, not NULL
        want_strings = {str(b): n for b, n in want.items()}
        assert c == want_strings, (name, key, start)  # COLLECT, then GENAI_COUNTS_MERGE
        assert multiset == want_strings, (name, key, start)
        assert q_null is None
        if not values:
            assert h == {} and qs == [None] * len(PS) and q99 is None, (name, key)
            continue
        twin = histogram_quantiles(want, PS, GAMMA)
        assert qs == pytest.approx(twin, rel=ROUNDING), (name, key, start)
        assert q99 == qs[PS.index(0.99)]
        # the bound holds for values raised to 0.001, which is where small values are counted
        exact = np.quantile(np.maximum(values, 0.001), PS)
        for p, q, e in zip(PS, qs, exact, strict=True):
            assert abs(q - e) <= A * e * (1 + ROUNDING), (name, key, start, p, q, e)
            checked_p[p] += 1
    assert all(checked_p[p] >= 30 for p in PS), checked_p


def test_python_quantile_rule_interpolates_between_ranks():
    gamma = histogram_gamma(0.01)
    b = 400  # two values in buckets b and b + 10: p50 lies halfway between their estimates
    lo, hi = 2 * gamma**b / (gamma + 1), 2 * gamma ** (b + 10) / (gamma + 1)
    assert histogram_quantiles({b: 1, b + 10: 1}, [0.0, 0.5, 1.0], gamma) == pytest.approx(
        [lo, (lo + hi) / 2, hi], rel=1e-15
    )
    assert histogram_quantiles({}, [0.5], gamma) == [None]
    with pytest.raises(ValueError, match="p must be in"):
        histogram_quantiles({b: 1}, [1.5], gamma)
