"""A job run from a cached compiled plan writes what the same job planned afresh writes."""

from __future__ import annotations

import json

import duckdb
import pytest

from genai_apm.flink import plan_cache
from genai_apm.jobs import latency
from genai_apm.traffic import TrafficSpec, invocations

pytestmark = pytest.mark.integration


def rows(folder) -> dict[str, list[tuple]]:
    """Every Parquet table under ``folder``, rows sorted, floats to 9 significant digits (the
    order in which a window's values are summed may differ from run to run)."""
    tables = {}
    for table in sorted(p for p in folder.iterdir() if p.is_dir() and p.name != "deadletters"):
        files = [str(f) for f in table.rglob("*") if f.is_file() and f.read_bytes()[:4] == b"PAR1"]
        found = duckdb.sql(f"select * from read_parquet({files})").fetchall()
        tables[table.name] = sorted(
            tuple(float(f"{v:.9g}") if isinstance(v, float) else str(v) for v in row)
            for row in found
        )
    return tables


def test_a_loaded_plan_runs_the_same_job(base_settings, tmp_path, monkeypatch):
    source = tmp_path / "events" / "part-0.jsonl"
    source.parent.mkdir()
    with open(source, "w") as out:
        for event in invocations(TrafficSpec(models=3, apps=3, users=20), 3000):
            out.write(json.dumps(event) + "\n")
    plans = tmp_path / "plans"
    cached = base_settings.replace(flink={"plan_cache_dir": str(plans)})
    loaded = []
    real_load = plan_cache._load
    monkeypatch.setattr(plan_cache, "_load", lambda *a: loaded.append(real_load(*a)) or loaded[-1])

    # compile and cache the plan of a backfill elsewhere, without running it
    t_env, statements = latency.SPEC.plan(
        cached, input_path=str(tmp_path / "elsewhere"), output_path=str(tmp_path / "x")
    )
    assert plan_cache.compiled_plan(t_env, statements) is not None
    assert len(list(plans.glob("*.json"))) == 1 and loaded == []

    latency.backfill(cached, input_path=str(source.parent), output_path=str(tmp_path / "again"))
    assert len(loaded) == 1 and loaded[0] is not None  # it ran the cached plan
    latency.backfill(
        base_settings.replace(flink={"plan_cache": False}),
        input_path=str(source.parent),
        output_path=str(tmp_path / "fresh"),
    )

    fresh = rows(tmp_path / "fresh")
    assert fresh["latency_1m"] and fresh["latency_5m"]
    assert rows(tmp_path / "again") == fresh
