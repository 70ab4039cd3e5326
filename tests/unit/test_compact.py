"""`genai-apm compact` on local folders: a closed hour becomes one file, queries give the
same rows before and after, open hours and mixed schemas are left alone, nothing that
arrives during a merge is lost."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest

from genai_apm import compact
from genai_apm.serve import query
from genai_apm.settings import config
from tests.compact_fixture import (
    HOUR,
    hour_of_minute_files,
    minute_rows,
    partition,
    write_checkpoint_file,
)

SQL = (
    "SELECT dt, hour, window_start, model_id, requests, latency_p99_ms, "
    "CAST(latency_hist AS VARCHAR) AS hist FROM latency_1m ORDER BY ALL"
)


@pytest.fixture
def settings(tmp_path):
    return config.load(path=None, environ={}).replace(
        output={"tables_path": str(tmp_path / "tables")}
    )


def age(folder, seconds_before: float) -> None:
    """Every file of ``folder`` (and the folder) last changed at ``seconds_before``."""
    for f in [*folder.iterdir(), folder]:
        os.utime(f, (seconds_before, seconds_before))


def files(folder) -> list[str]:
    return sorted(f.name for f in folder.iterdir())


def committed_files(folder) -> list[str]:
    return [n for n in files(folder) if compact.committed(n)]


def expected_rows(rows: list[dict]) -> list[tuple]:
    """What SQL returns, computed from the rows written (independent of DuckDB's reading)."""
    out = []
    for r in rows:
        ts = r["window_start"].replace(tzinfo=None)
        hist = "{" + ", ".join(f"{k}={v}" for k, v in r["latency_hist"]) + "}"
        out.append(
            (
                f"{ts:%Y-%m-%d}",
                f"{ts:%H}",
                ts,
                r["model_id"],
                r["requests"],
                r["latency_p99_ms"],
                hist,
            )
        )
    return sorted(out, key=lambda t: tuple((x is None, x) for x in t))


def test_a_closed_hour_becomes_one_file_and_queries_give_the_same_rows(settings, tmp_path):
    root = tmp_path / "tables"
    closed, rows = hour_of_minute_files(root, "latency_1m", HOUR, files=12)
    open_hour = HOUR + timedelta(hours=1)
    still_open, more = hour_of_minute_files(root, "latency_1m", open_hour, files=3, seed=2)
    now = (open_hour + timedelta(minutes=30)).timestamp()  # 13:xx ended 30 min ago
    age(closed, now - 25 * 60)
    age(still_open, now - 25 * 60)

    before = query.run(settings, SQL)
    assert [tuple(r) for r in before[1]] == expected_rows(rows + more)

    report = compact.run(settings, now=lambda: now, out=lambda _: None)

    (merged,) = committed_files(closed)
    assert merged.startswith(compact.MERGED_PREFIX) and merged.endswith(".parquet")
    assert "_SUCCESS" in files(closed)
    assert len(committed_files(still_open)) == 3  # its hour has not ended
    assert report.merged == {"latency_1m": [(f"dt={HOUR:%Y-%m-%d}/hour=13", 12)]}
    assert query.run(settings, SQL) == before
    # the merged-away files are kept a while, where no glob over a table reaches them
    # (DuckDB's * matches hidden names: '*/*/[!._]*' would find a hidden folder's files)
    import duckdb

    broad = duckdb.sql(
        f"SELECT count(*) FROM read_parquet('{root}/latency_1m/*/*/[!._]*')"
    ).fetchall()
    assert broad == [(len(rows) + len(more),)]

    # the merged file keeps the sink's encoding: every column's Parquet type as before
    import pyarrow.parquet as pq

    (replaced,) = root.glob(f"{compact.WORK_DIR}/latency_1m/*/hour=13.replaced-*")
    source = pq.ParquetFile(sorted(replaced.glob("compacted-*"))[0])
    target = pq.ParquetFile(closed / merged)
    assert [str(c.logical_type) for c in target.schema] == [
        str(c.logical_type) for c in source.schema
    ]
    assert (
        target.schema_arrow.field("window_start").type
        == source.schema_arrow.field("window_start").type
    )

    # again: nothing left to do; the merged-away files go once no reader can be on them
    again = compact.run(settings, now=lambda: now, keep_replaced_s=0, out=lambda _: None)
    assert again.merged == {}
    assert not list(root.glob(f"{compact.WORK_DIR}/latency_1m/*/*"))
    assert query.run(settings, SQL) == before


def test_an_hour_changed_recently_waits(settings, tmp_path):
    root = tmp_path / "tables"
    folder, _ = hour_of_minute_files(root, "latency_1m", HOUR, files=4)
    now = (HOUR + timedelta(hours=5)).timestamp()
    age(folder, now - 60)  # a late file a minute ago: a writer may still be at it
    assert compact.run(settings, now=lambda: now, out=lambda _: None).merged == {}
    assert len(committed_files(folder)) == 4


def test_files_with_different_schemas_are_left_alone(settings, tmp_path):
    root = tmp_path / "tables"
    folder, _ = hour_of_minute_files(root, "latency_1m", HOUR, files=2)
    write_checkpoint_file(folder, minute_rows(HOUR, range(59, 60), 9), "compacted-part-x", True)
    now = (HOUR + timedelta(hours=5)).timestamp()
    age(folder, now - 3600)
    report = compact.run(settings, now=lambda: now, out=lambda _: None)
    assert report.merged == {} and len(report.skipped) == 1
    assert len(committed_files(folder)) == 3


def test_a_file_committed_during_the_merge_is_kept(settings, tmp_path, monkeypatch):
    root = tmp_path / "tables"
    folder, rows = hour_of_minute_files(root, "latency_1m", HOUR, files=6)
    now = (HOUR + timedelta(hours=5)).timestamp()
    age(folder, now - 3600)
    late = minute_rows(HOUR, range(59, 60), seed=77)
    real_merge = compact.merge_files

    def merge_while_a_writer_commits(sources, target):
        written = real_merge(sources, target)
        write_checkpoint_file(partition(root, "latency_1m", HOUR), late, "compacted-part-late")
        return written

    monkeypatch.setattr(compact, "merge_files", merge_while_a_writer_commits)
    compact.run(settings, now=lambda: now, out=lambda _: None)
    names = committed_files(folder)
    assert len(names) == 2 and "compacted-part-late" in names
    assert [tuple(r) for r in query.run(settings, SQL)[1]] == expected_rows(rows + late)
