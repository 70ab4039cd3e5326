"""Athena DDL: committed files match a fresh generation; Flink types map to what Athena reads."""

from __future__ import annotations

import pytest

from genai_apm.deploy import athena
from genai_apm.settings.config import Settings


def test_committed_files_are_up_to_date():
    assert athena.stale() == [], "run `genai-apm athena-ddl` and commit infra/athena"


def test_every_parquet_table_has_ddl_and_queries():
    names = {p.name for p in athena.artifacts()}
    for table in ("latency_1m", "latency_5m", "late_events", "invocations", "spans", "cost_1h"):
        assert f"{table}.sql" in names
    assert {
        "p99_latency_per_model_hour.sql",
        "top_spenders.sql",
        "error_breakdown_day.sql",
        "late_events_24h.sql",
    } <= names


def test_latency_ddl_follows_the_job_columns():
    from genai_apm.jobs import latency

    settings = Settings().replace(latency={"percentiles": (0.5, 0.999)})
    (table,) = [t for t in athena.derived_tables(settings) if t.name == "latency_1m"]
    ddl = athena.table_ddl(table)
    for name, _ in latency.output_columns(settings):
        assert f"`{name}`" in ddl
    assert "`latency_p99_9_ms` double" in ddl
    assert "`latency_hist` map<string,int>" in ddl
    assert "`window_start` timestamp" in ddl
    assert "PARTITIONED BY (`dt` string, `hour` string)" in ddl
    assert "'projection.enabled' = 'true'" in ddl
    assert "MSCK" not in ddl


@pytest.mark.parametrize(
    ("flink", "expected"),
    [
        ("TIMESTAMP_LTZ(3)", "timestamp"),
        ("TIMESTAMP(3) NOT NULL", "timestamp"),
        ("STRING", "string"),
        ("BIGINT", "bigint"),
        ("INT", "int"),
        ("DOUBLE", "double"),
        ("BOOLEAN", "boolean"),
        ("DECIMAL(12, 6)", "decimal(12, 6)"),
        ("MULTISET<STRING>", "map<string,int>"),
        ("MAP<STRING, ARRAY<DOUBLE>>", "map<string,array<double>>"),
    ],
)
def test_flink_types_map_to_athena_types(flink, expected):
    assert athena.athena_type(flink) == expected


def test_unknown_types_are_refused():
    with pytest.raises(ValueError, match="no Athena type"):
        athena.athena_type("ROW<a INT>")


def test_rendered_ddl_points_at_the_given_root():
    text = athena.rendered("s3://apm-data/prod/")
    assert "s3://${bucket}" not in text
    assert "LOCATION 's3://apm-data/prod/latency_1m/'" in text
    # partition projection variables stay for Athena
    assert "'s3://apm-data/prod/latency_1m/dt=${dt}/hour=${hour}/'" in text
    assert not any(line.startswith("--") for line in text.splitlines())
    with pytest.raises(ValueError):
        athena.rendered("/local/path")


def test_p99_query_uses_the_configured_histogram():
    from genai_apm.jobs.latency import histogram_gamma

    queries = athena.example_queries(Settings().replace(latency={"histogram_relative_error": 0.02}))
    assert repr(histogram_gamma(0.02)) in queries["p99_latency_per_model_hour.sql"]
