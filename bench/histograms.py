"""What the per-minute histograms cost: GENAI_HIST against today's COLLECT of bucket strings.

One bounded streaming job per run over a CSV file of generated rows (key, event time, six
heavy-tailed measures, TTFT NULL for a third of the rows): a 1-minute TUMBLE per key to a
blackhole sink, computing

- plain: COUNT(*) and SUM of each of the six measures;
- hist: plain + GENAI_HIST of each measure (the Java functions of infra/udfs);
- collect: plain + COLLECT(CAST(bucket AS STRING)) of each measure, as jobs/latency.py does.

Every run is a fresh local MiniCluster (its own JVM) at parallelism 1, object reuse on.
Costs are marginal: (big - small) / (big events - small events), so JVM start, planning and
submission cancel out; both the JVM's CPU time (user + system, from /proc: what the
variant costs, little affected by other load) and the wall time are reported. Variants are
interleaved, their order rotated per repetition; medians and ranges are printed, with the
load average before each run.

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

    from genai_apm.flink.env import register_functions
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
    from bench.memory import java_below

    jvm = java_below(os.getpid())
    cpu, started = jvm_cpu_s(jvm), time.perf_counter()
    select = query(variant, math.log(histogram_gamma(0.01)))
    t_env.execute_sql(f"CREATE TABLE sink WITH ('connector' = 'blackhole') AS {select}").wait()
    wall, cpu = time.perf_counter() - started, jvm_cpu_s(jvm) - cpu
    print(f"HIST_RUN {wall:.3f} {cpu:.3f}", flush=True)


def jvm_cpu_s(pid: int | None) -> float:
    """User + system CPU seconds of a process so far (fields 14 and 15 of /proc/pid/stat)."""
    if pid is None:
        raise SystemExit("no JVM below this process: cannot measure its CPU time")
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_child(variant: str, path: Path, log_dir: Path) -> tuple[float, float]:
    """(wall s, JVM CPU s) of one run."""
    env = dict(os.environ, FLINK_LOG_DIR=str(log_dir))
    argv = [sys.executable, __file__, "--child", variant, "--input", str(path)]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=1800)
    runs = [ln.split()[1:] for ln in proc.stdout.splitlines() if ln.startswith("HIST_RUN ")]
    if proc.returncode != 0 or not runs:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-5:]
        raise SystemExit(f"{variant} over {path.name}: exit {proc.returncode}: {' | '.join(tail)}")
    return float(runs[0][0]), float(runs[0][1])


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
        extra = args.events - args.small
        for rep in range(args.reps):
            order = VARIANTS[rep % len(VARIANTS) :] + VARIANTS[: rep % len(VARIANTS)]
            for variant in order:
                load = os.getloadavg()[0]
                small_wall, small_cpu = run_child(variant, files["small"], tmp_path)
                big_wall, big_cpu = run_child(variant, files["big"], tmp_path)
                run = {
                    "cpu_us_per_event": (big_cpu - small_cpu) / extra * 1e6,
                    "wall_us_per_event": (big_wall - small_wall) / extra * 1e6,
                    "small": [small_wall, small_cpu],
                    "big": [big_wall, big_cpu],
                    "load1": load,
                }
                runs[variant].append(run)
                print(f"bench: rep {rep + 1} {variant:8} CPU {run['cpu_us_per_event']:6.2f} "
                      f"us/event, wall {run['wall_us_per_event']:6.2f} us/event "
                      f"(small {small_wall:.1f} s / {small_cpu:.1f} CPU s, big {big_wall:.1f} s "
                      f"/ {big_cpu:.1f} CPU s, load {load:.1f})", flush=True)  # fmt: skip

    print(f"\n{args.events:,} rows, {args.keys} keys, {args.minutes} 1-minute windows, p1, "
          f"{args.reps} repetitions: median [min-max] marginal us per event")  # fmt: skip
    medians = {
        v: {
            k: statistics.median(r[k] for r in runs[v])
            for k in ("cpu_us_per_event", "wall_us_per_event")
        }  # fmt: skip
        for v in VARIANTS
    }
    for variant in VARIANTS:
        line = f"  {variant:8}"
        for k, label in (("cpu_us_per_event", "CPU"), ("wall_us_per_event", "wall")):
            values = [r[k] for r in runs[variant]]
            over = medians[variant][k] - medians["plain"][k]
            line += (f"  {label} {medians[variant][k]:6.2f} [{min(values):.2f}-{max(values):.2f}]"
                     f" ({over:+.2f} over plain)")  # fmt: skip
        print(line)
    print(json.dumps({"args": vars(args), "medians": medians, "runs": runs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
