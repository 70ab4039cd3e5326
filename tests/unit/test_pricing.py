"""The pricing table: the shipped file, loading errors, and the generated cost SQL evaluated by
a local batch Flink against an independent Python computation."""

from __future__ import annotations

import datetime as dt

import pytest

from genai_apm import pricing
from genai_apm.errors import GenaiApmError
from genai_apm.traffic.catalogue import MODELS

# deliberately not shipped: published prices disagree (see the header of pricing.toml)
UNPRICED_CATALOGUE = {"mistral.mistral-large-2407-v1:0"}


def test_shipped_table_prices_the_generator_models_with_sources():
    table = pricing.load()
    assert table.origin == pricing.PACKAGED and table.version
    priced = {(p.provider, p.model_id) for p in table.prices}
    catalogue = {(m.provider, m.model_id) for m in MODELS}
    assert priced <= catalogue, "every row is a model the generator uses"
    assert {m for _, m in catalogue - priced} == UNPRICED_CATALOGUE
    for p in table.prices:
        assert p.source.strip() and 0 < p.input < 100 and p.output >= p.input, p
        assert p.cache_read <= p.input <= p.cache_write or p.cache_write == p.input, p
    # the generator's traffic starts 2026-01-01: every shipped model is priced from then on
    epoch = int(dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp() * 1000)
    for provider, model_id in priced:
        assert table.price_at(provider, model_id, epoch) is not None, model_id


TEST_TABLE = """
format = 1
version = "t1"

[[price]]
provider = "openai"
model_id = "m-a"
effective_from = 2026-01-01
currency = "USD"
input = 2.0
output = 8.0
cache_read = 0.5
source = "test"

[[price]]
provider = "openai"
model_id = "m-a"
effective_from = 2026-01-01T00:05:00+01:00   # 2025-12-31T23:05Z: before the row above
currency = "USD"
input = 4.0
output = 16.0
source = "test"

[[price]]
provider = "aws.bedrock"
model_id = "o'quote:1"
effective_from = 2026-01-01T00:03:00Z
currency = "USD"
input = 3.0
output = 15.0
cache_read = 0.3
cache_write = 3.75
source = "test"
"""


def test_rows_sort_by_date_and_cache_prices_default_to_input(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text(TEST_TABLE)
    table = pricing.load(path)
    a = [p for p in table.prices if p.model_id == "m-a"]
    assert [p.input for p in a] == [4.0, 2.0]  # 23:05 on Dec 31 comes first
    assert (a[0].cache_read, a[0].cache_write) == (4.0, 4.0)
    assert (a[1].cache_read, a[1].cache_write) == (0.5, 2.0)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('currency = "USD"', 'currency = "EUR"'), "only USD is supported"),
        (("input = 2.0", "input = -2.0"), "must be a finite, non-negative price"),
        (("input = 2.0", 'input = "2"'), "input must be a number"),
        (('source = "test"', 'sorce = "test"'), "missing source"),
        (("effective_from = 2026-01-01\n", "effective_from = 2026-01-01T00:00:00\n"), "no UTC"),
        (("effective_from = 2026-01-01\n", 'effective_from = "soon"\n'), "must be a TOML date"),
        (("format = 1", "format = 2"), "format 2, expected 1"),
        (('version = "t1"', ""), "version must be a non-empty string"),
        (("2026-01-01T00:05:00+01:00", "2026-01-01"), "two rows for openai m-a from 2026-01-01"),
        (("[[price]]", "[[prices]]"), "unknown keys prices"),
    ],
)
def test_bad_tables_are_clear_errors(tmp_path, change, message):
    old, new = change
    assert old in TEST_TABLE
    path = tmp_path / "p.toml"
    path.write_text(TEST_TABLE.replace(old, new, 1))
    with pytest.raises(GenaiApmError, match=message):
        pricing.load(path)


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(GenaiApmError, match="does not exist"):
        pricing.load(tmp_path / "none.toml")
    (tmp_path / "b.toml").write_text("[[price]\n")
    with pytest.raises(GenaiApmError, match="not valid TOML"):
        pricing.load(tmp_path / "b.toml")


def _ms(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).timestamp() * 1000)


# (provider, model_id, event time, input, output, cache read, cache write)
CALLS = [
    ("openai", "m-a", "2025-12-31T23:04:59.999+00:00", 1000, 10, None, None),  # before any row
    ("openai", "m-a", "2025-12-31T23:05:00+00:00", 1000, 10, 200, None),  # first row
    ("openai", "m-a", "2025-12-31T23:59:59.999+00:00", 1000, 10, 0, 0),
    ("openai", "m-a", "2026-01-01T00:00:00+00:00", 1000, 10, 200, None),  # the change
    ("openai", "m-a", "2026-02-01T00:00:00+00:00", None, 7, None, None),  # missing counts: 0
    ("aws.bedrock", "o'quote:1", "2026-01-01T00:03:00+00:00", 5000, 300, 1200, 2400),
    ("aws.bedrock", "o'quote:1", "2026-01-01T00:02:59+00:00", 5000, 300, 1200, 2400),
    ("openai", "unknown-model", "2026-01-01T00:10:00+00:00", 10, 10, None, None),
    (None, "m-a", "2026-01-01T00:10:00+00:00", 10, 10, None, None),  # no provider: unpriced
    ("openai", "m-a", "2026-01-01T00:10:00+00:00", 100, 10, 150, None),  # cached > input: 0
]


def expected_cost(table, provider, model_id, time_ms, inp, out, read, write):
    rows = [
        p
        for p in table.prices
        if (p.provider, p.model_id) == (provider, model_id) and p.effective_from_ms <= time_ms
    ]
    if not rows:
        return None
    p = max(rows, key=lambda r: r.effective_from_ms)
    read, write = read or 0, write or 0
    uncached = max((inp or 0) - read - write, 0)
    return (
        uncached * p.input + (out or 0) * p.output + read * p.cache_read + write * p.cache_write
    ) / 1e6


@pytest.fixture(scope="module")
def batch_env():
    from pyflink.table import EnvironmentSettings, TableEnvironment

    t_env = TableEnvironment.create(EnvironmentSettings.in_batch_mode())
    t_env.get_config().set("table.local-time-zone", "UTC")
    t_env.get_config().set("parallelism.default", "1")
    return t_env


def _sql_value(v, sql_type: str) -> str:
    if v is None:
        return f"CAST(NULL AS {sql_type})"
    if isinstance(v, str):
        return "'" + v.replace("'", "''") + "'"
    return f"CAST({v} AS {sql_type})"


def test_generated_cost_sql_matches_python(tmp_path, batch_env):
    path = tmp_path / "p.toml"
    path.write_text(TEST_TABLE)
    table = pricing.load(path)
    rows = ", ".join(
        "("
        + ", ".join(
            [
                str(i),
                _sql_value(provider, "STRING"),
                _sql_value(model, "STRING"),
                str(_ms(when)),
                *(_sql_value(v, "BIGINT") for v in tokens),
            ]
        )
        + ")"
        for i, (provider, model, when, *tokens) in enumerate(CALLS)
    )
    query = f"""
        SELECT i, {pricing.cost_sql(table)} AS cost
        FROM (
          SELECT i, provider, model_id, TO_TIMESTAMP_LTZ(ts, 3) AS event_ts, input_tokens,
            output_tokens, cache_read_input_tokens, cache_write_input_tokens
          FROM (VALUES {rows}) AS T(i, provider, model_id, ts, input_tokens, output_tokens,
            cache_read_input_tokens, cache_write_input_tokens))"""
    with batch_env.execute_sql(query).collect() as results:
        got = {row[0]: row[1] for row in results}
    assert len(got) == len(CALLS)
    for i, (provider, model, when, *tokens) in enumerate(CALLS):
        want = expected_cost(table, provider, model, _ms(when), *tokens)
        if want is None:
            assert got[i] is None, CALLS[i]
        else:
            assert got[i] == pytest.approx(want, rel=1e-12), CALLS[i]
    # spot checks written out by hand, so a shared mistake cannot hide
    assert got[3] == pytest.approx((800 * 2.0 + 10 * 8.0 + 200 * 0.5) / 1e6)
    assert got[5] == pytest.approx((1400 * 3.0 + 300 * 15.0 + 1200 * 0.3 + 2400 * 3.75) / 1e6)
    assert got[1] == pytest.approx((1000 * 4.0 + 10 * 16.0) / 1e6)  # cache read at input price
    assert [i for i, c in got.items() if c is None] == [0, 6, 7, 8]
