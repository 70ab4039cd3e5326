"""`genai-apm query` on local folders: tables as views, committed files only, readable output."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from genai_apm.errors import GenaiApmError
from genai_apm.serve import query


@pytest.fixture
def tables(tmp_path, base_settings):
    partition = tmp_path / "latency_1m" / "dt=2026-01-01" / "hour=00"
    partition.mkdir(parents=True)
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    pq.write_table(
        pa.table(
            {
                "window_start": pa.array([start, start], pa.timestamp("ms")),
                "model_id": ["m1", "m2"],
                "requests": [3, 1200],
                "latency_p99_ms": [12.5, None],
            }
        ),
        partition / "part-0",
    )
    (partition / "_SUCCESS").write_text("")
    (partition / ".part-1.inprogress.abc").write_bytes(b"not parquet yet")
    (tmp_path / "empty_table").mkdir()
    return base_settings.replace(output={"tables_path": str(tmp_path)})


def test_tables_are_views_with_string_partitions(tables):
    columns, rows = query.run(
        tables, 'SELECT model_id, requests, dt, "hour" FROM latency_1m ORDER BY model_id'
    )
    assert columns == ["model_id", "requests", "dt", "hour"]
    assert rows == [("m1", 3, "2026-01-01", "00"), ("m2", 1200, "2026-01-01", "00")]


def test_unknown_tables_name_the_known_ones(tables):
    with pytest.raises(GenaiApmError, match=r"tables under .*: latency_1m\)"):
        query.run(tables, "SELECT * FROM latency_5m")


def test_format_table_aligns_numbers_and_counts_rows(tables):
    columns, rows = query.run(
        tables, "SELECT model_id, requests, latency_p99_ms, window_start FROM latency_1m ORDER BY 1"
    )
    text = query.format_table(columns, rows).splitlines()
    assert text[0].split() == ["model_id", "requests", "latency_p99_ms", "window_start"]
    assert text[2].split() == ["m1", "3", "12.5000", "2026-01-01", "00:00:00.000"]
    assert text[3].split()[:3] == ["m2", "1,200", "NULL"]
    assert text[-1] == "(2 rows)"
