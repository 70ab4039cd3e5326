"""False incidents on a clean simulated day, by the detector's numpy twin (jobs/detectors.py)
on window metrics computed with DuckDB from the same events the evaluation's clean scenario
feeds the Flink job (genai_apm.evaluation.scoring.clean_scenario): a check in minutes where the job
needs far longer on a loaded machine.

    .venv/bin/python bench/clean_day_twin.py [--hours 24] [--detector adaptive]

What it counts is an upper bound of the job's root incidents: every key's openings, before
root-cause attribution (which only removes incidents another key explains). Percentiles are
exact here (quantile_cont) where the job's come from histograms within 1%.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

import duckdb
import numpy as np
import pyarrow as pa

from genai_apm import pricing, traffic
from genai_apm.evaluation import scoring
from genai_apm.jobs import anomalies, detectors

MINUTE = 60_000


def _cost(table, e: dict) -> float | None:
    p = table.price_at(e["provider"], e["model_id"], e["event_time"])
    if p is None:
        return None
    read = max(e["cache_read_input_tokens"] or 0, 0)
    write = max(e["cache_write_input_tokens"] or 0, 0)
    uncached = max((e["input_tokens"] or 0) - read - write, 0)
    out = e["output_tokens"] or 0
    return (uncached * p.input + out * p.output + read * p.cache_read + write * p.cache_write) / 1e6


def window_metrics(events: list[dict], min_requests: int) -> duckdb.DuckDBPyRelation:
    """One row per minute, dimension and key with the job's METRICS (NULL below the calls
    they need), as tests/integration/test_anomalies_job.py computes them."""
    table = pricing.load()
    cols = {
        "t": [e["event_time"] // MINUTE * MINUTE for e in events],
        "model": [e["model_id"] for e in events],
        "app": [e["app_id"] or "unknown" for e in events],
        "user": [e["user_id"] or "unknown" for e in events],
        "ok": [e["status"] == "success" for e in events],
        "tin": [e["input_tokens"] for e in events],
        "tout": [e["output_tokens"] for e in events],
        "lat": [e["latency_ms"] for e in events],
        "cost": [_cost(table, e) for e in events],
    }
    con = duckdb.connect()
    con.register("calls", pa.table(cols))
    m, p99 = int(min_requests), max(int(min_requests), 100)
    per_dim = " UNION ALL ".join(
        f"SELECT t, '{d}' AS dimension, {k} AS key, * EXCLUDE (t) FROM calls"
        for d, k in (
            ("model_app", "model || '|' || app"),
            ("model", "model"),
            ("app", "app"),
            ("user", '"user"'),
        )
    )
    return con.sql(f"""
SELECT t, dimension, key,
  CASE WHEN count(*) >= {m} AND count(*) FILTER (ok) > 0
    THEN avg(tin) FILTER (ok) END AS input_tokens_mean,
  CASE WHEN count(*) >= {p99} AND count(*) FILTER (ok) > 0
    THEN quantile_cont(tin, 0.99) FILTER (ok) END AS input_tokens_p99,
  CASE WHEN count(*) >= {m} AND count(*) FILTER (ok) > 0
    THEN avg(tout) FILTER (ok) END AS output_tokens_mean,
  CASE WHEN count(*) >= {p99} AND count(*) FILTER (ok) > 0
    THEN quantile_cont(tout, 0.99) FILTER (ok) END AS output_tokens_p99,
  CASE WHEN count(*) >= {m} AND count(*) FILTER (ok) > 0
    THEN quantile_cont(lat, 0.5) FILTER (ok) END AS latency_p50_ms,
  CASE WHEN count(*) >= {p99} AND count(*) FILTER (ok) > 0
    THEN quantile_cont(lat, 0.99) FILTER (ok) END AS latency_p99_ms,
  CASE WHEN count(*) >= {m} THEN 1 - count(*) FILTER (ok) / count(*) END AS error_rate,
  sum(cost) AS cost_usd
FROM ({per_dim}) GROUP BY ALL ORDER BY dimension, key, t""")


def key_opens(rows: list[tuple], p: detectors.Params) -> list[tuple[int, list[str]]]:
    """A key's openings (window start, the metrics hot there): a window is hot when any
    metric is, as in the job."""
    times = [r[0] for r in rows]
    hot = np.zeros(len(rows), dtype=bool)
    which = [[] for _ in rows]
    for j, m in enumerate(anomalies.METRICS):
        values = np.array([np.nan if r[3 + j] is None else r[3 + j] for r in rows], dtype=float)
        dev, warm = detectors.deviations(times, values, p, m.floor, m.tail)
        h = detectors.hot_windows(dev, warm, p)
        hot |= h
        for i in np.flatnonzero(h):
            which[i].append(m.name)
    return [(times[i], which[i]) for i in detectors.opens(detectors.states(hot, p))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/clean_day_twin.py")
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--detector", choices=("adaptive", "robust"), default="adaptive")
    args = parser.parse_args(argv)
    started = time.monotonic()
    settings = scoring._settings(args.detector)
    a = settings.anomalies
    spec = scoring.clean_scenario(args.hours)
    events = [r.event for r in traffic.traffic(spec) if r.contract == traffic.INVOCATION]
    rows = window_metrics(events, a.min_requests).fetchall()
    p = detectors.Params.of(a)
    by_key: dict[tuple, list] = {}
    for r in rows:
        by_key.setdefault((r[1], r[2]), []).append(r)
    warm_ms = spec.start_ms + a.warmup_windows * a.window_minutes * MINUTE
    opened = []
    for key, key_rows in by_key.items():
        opened += [(key, t, ms) for t, ms in key_opens(key_rows, p) if t + MINUTE >= warm_ms]
    days = (spec.duration_s * 1000 - (warm_ms - spec.start_ms)) / (24 * 60 * MINUTE)
    print(
        f"{args.detector}: {len(events)} events, {len(by_key)} keys, {days:.3f} days after "
        f"warm-up: {len(opened)} incidents on any key ({len(opened) / days:.2f} per day), "
        f"{time.monotonic() - started:.0f} s"
    )
    print("by dimension:", dict(Counter(k[0] for k, _, _ in opened)))
    print("metrics:", dict(Counter(m for _, _, ms in opened for m in ms)))
    for key, t, ms in opened[:20]:
        print(" ", key, scoring.dt.datetime.fromtimestamp(t / 1000, scoring.dt.UTC), ms)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
