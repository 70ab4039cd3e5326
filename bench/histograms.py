"""What the per-minute histograms cost: GENAI_HIST against today's COLLECT of bucket strings.

One bounded streaming job per run over a CSV file of generated rows (key, event time, six
heavy-tailed measures, TTFT NULL for a third of the rows): a 1-minute TUMBLE per key to a
blackhole sink, computing

- plain: COUNT(*) and SUM of each of the six measures;
- hist: plain + GENAI_HIST of each measure (the Java functions of infra/udfs);
- collect: plain + COLLECT(CAST(bucket AS STRING)) of each measure, as jobs/latency.py does.

Every run is a fresh local MiniCluster (its own JVM) at parallelism 1, object reuse on. A
rate is marginal: (big events - small events) / (big wall - small wall), so JVM start,
planning and submission cancel out. Variants are interleaved, their order rotated per
repetition; medians and ranges are printed, with the load average before each run.

    python bench/histograms.py                       # 1,000,000 rows, 3 repetitions
    python bench/histograms.py --events 500000 --keys 1000 --reps 2
    python bench/histograms.py --accumulators       # GENAI_HIST's accumulator vs a HashMap
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

VARIANTS = ("plain", "hist", "collect")
MEASURES = ("latency", "ttft", "tpot", "tokens_per_s", "input_tokens", "output_tokens")
START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def write_rows(path: Path, events: int, keys: int, minutes: int, seed: int = 16) -> None:
    """Rows in event-time order; measures heavy-tailed like real latencies and token counts."""
    import numpy as np

    rng = np.random.default_rng(seed)
    chunk = 100_000
    step = minutes * 60_000 / events
    with open(path, "w") as out:
        for first in range(0, events, chunk):
            n = min(chunk, events - first)
            ms = START_MS + (np.arange(first, first + n) * step).astype(np.int64)
            key = rng.integers(0, keys, n)
            latency = rng.lognormal(7, 1, n)
            ttft = np.where(rng.random(n) < 1 / 3, np.nan, latency * rng.uniform(0.05, 0.5, n))
            output = np.ceil(rng.pareto(1.5, n) * 100 + 1)
            tpot = latency / output
            columns = (latency, ttft, tpot, 1000 / tpot, np.ceil(rng.lognormal(6, 1.2, n)), output)
            for j in range(n):
                values = ",".join("null" if math.isnan(c[j]) else f"{c[j]:.3f}" for c in columns)
                out.write(f"k{key[j]},{ms[j]},{values}\n")


def query(variant: str, log_gamma: float) -> str:
    columns = ["COUNT(*)"] + [f"SUM({m})" for m in MEASURES]
    if variant == "hist":
        columns += [f"GENAI_HIST({m}, {log_gamma!r})" for m in MEASURES]
    elif variant == "collect":
        columns += [
            f"COLLECT(CAST(CAST(CEIL(LN(GREATEST({m}, 0.001)) / {log_gamma!r}) AS INT) AS STRING))"
            f" FILTER (WHERE {m} IS NOT NULL)"
            for m in MEASURES
        ]
    return f"""
      SELECT k, window_start, {", ".join(columns)}
      FROM TABLE(TUMBLE(TABLE rows_in, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
      GROUP BY k, window_start, window_end"""


def child(variant: str, input_path: str) -> None:
    """One bounded run; prints its wall time from planning to the job's end."""
    from pyflink.table import EnvironmentSettings, TableEnvironment

    from genai_apm.flink_env import register_functions
    from genai_apm.jobs.latency import histogram_gamma

    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    config = t_env.get_config()
    config.set("table.local-time-zone", "UTC")
    config.set("parallelism.default", "1")
    config.set("pipeline.object-reuse", "true")
    register_functions(t_env)
    measures = ", ".join(f"{m} DOUBLE" for m in MEASURES)
    t_env.execute_sql(f"""
      CREATE TABLE rows_in (k STRING, ms BIGINT, {measures},
        ts AS TO_TIMESTAMP_LTZ(ms, 3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
      WITH ('connector' = 'filesystem', 'path' = '{Path(input_path).as_uri()}',
            'format' = 'csv', 'csv.null-literal' = 'null')""")
    started = time.perf_counter()
    select = query(variant, math.log(histogram_gamma(0.01)))
    t_env.execute_sql(f"CREATE TABLE sink WITH ('connector' = 'blackhole') AS {select}").wait()
    print(f"HIST_WALL {time.perf_counter() - started:.3f}", flush=True)


def run_child(variant: str, path: Path, log_dir: Path) -> float:
    env = dict(os.environ, FLINK_LOG_DIR=str(log_dir))
    argv = [sys.executable, __file__, "--child", variant, "--input", str(path)]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=1800)
    walls = [ln.split()[1] for ln in proc.stdout.splitlines() if ln.startswith("HIST_WALL ")]
    if proc.returncode != 0 or not walls:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-5:]
        raise SystemExit(f"{variant} over {path.name}: exit {proc.returncode}: {' | '.join(tail)}")
    return float(walls[0])


def accumulators() -> None:
    """bench/HistAccumulators.java: the accumulator alone, against a boxed HashMap."""
    import pyflink

    from genai_apm.home import jars

    # the project's jars, and Flink's own (flink-core, flink-table-common) from the wheel
    classpath = [*map(str, jars("flink")), str(Path(pyflink.__file__).parent / "lib" / "*")]
    source = Path(__file__).with_name("HistAccumulators.java")
    subprocess.run(["java", "-cp", ":".join(classpath), str(source)], check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=20_000, help="rows of the baseline file")
    parser.add_argument("--keys", type=int, default=200)
    parser.add_argument("--minutes", type=int, default=30)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--accumulators", action="store_true", help="the accumulator alone")
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.input)
        return 0
    if args.accumulators:
        accumulators()
        return 0

    with tempfile.TemporaryDirectory(prefix="bench-histograms-") as tmp:
        tmp_path = Path(tmp)
        files = {}
        for label, events in (("small", args.small), ("big", args.events)):
            files[label] = tmp_path / f"{label}.csv"
            write_rows(files[label], events, args.keys, args.minutes)
        runs: dict[str, list[dict]] = {v: [] for v in VARIANTS}
        for rep in range(args.reps):
            order = VARIANTS[rep % len(VARIANTS) :] + VARIANTS[: rep % len(VARIANTS)]
            for variant in order:
                load = os.getloadavg()[0]
                small = run_child(variant, files["small"], tmp_path)
                big = run_child(variant, files["big"], tmp_path)
                rate = (args.events - args.small) / (big - small)
                run = {"small_s": small, "big_s": big, "events_per_s": rate, "load1": load}
                runs[variant].append(run)
                print(f"bench: rep {rep + 1} {variant:8} small {small:6.1f} s  big {big:6.1f} s  "
                      f"{rate:9,.0f} events/s  (load {load:.1f})", flush=True)  # fmt: skip

    print(f"\n{args.events:,} rows, {args.keys} keys, {args.minutes} 1-minute windows, p1, "
          f"{args.reps} interleaved repetitions (median [min-max])")  # fmt: skip
    summary = {}
    plain_us = 1e6 / statistics.median(r["events_per_s"] for r in runs["plain"])
    for variant in VARIANTS:
        rates = [r["events_per_s"] for r in runs[variant]]
        us = 1e6 / statistics.median(rates)
        summary[variant] = {"median_events_per_s": statistics.median(rates), "runs": runs[variant]}
        print(f"  {variant:8} {statistics.median(rates):9,.0f} events/s "
              f"[{min(rates):,.0f}-{max(rates):,.0f}]  {us:6.2f} us/event "
              f"({us - plain_us:+6.2f} over plain)")  # fmt: skip
    print(json.dumps({"args": vars(args), "variants": summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
