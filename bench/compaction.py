"""Files per table-hour before and after `genai-apm compact`, and the same query rows.

    python bench/compaction.py --produce            # a streaming run of its own, then measure
    python bench/compaction.py --tables .state/tables   # measure an existing tables folder

``--produce`` starts a stack of its own (free ports, a temporary folder), runs the streaming
`latency` job (`genai-apm submit latency`, 5 s checkpoints as configured) and feeds it paced
traffic whose event time runs ``--speedup`` times faster than the wall clock, so an hour of
event time takes minutes and a checkpoint covers ``5 s x speedup`` of event time (at 12x:
one minute, the cadence of the 1-minute tables); then it stops the job and the stack.

The measure runs on a copy of the tables: per table, committed files per dt/hour partition
(max and median), `compact` with ``--after-minutes 0`` (the job has stopped), the same
counts again, and for every table ``SELECT *`` (maps and lists cast to text) as a multiset
before and after: they must be equal. Writes bench/results/compaction-<date>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from genai_apm import compact  # noqa: E402
from genai_apm.serve import query  # noqa: E402
from genai_apm.settings import config  # noqa: E402
from genai_apm.stack.process import free_port  # noqa: E402

BIN = Path(sys.executable).parent


def files_per_hour(tables: Path) -> dict[str, list[int]]:
    """Table -> committed file count of each dt=/hour= partition."""
    out: dict[str, list[int]] = {}
    for table in sorted(p for p in tables.iterdir() if p.is_dir()):
        counts = [
            sum(1 for f in part.iterdir() if f.is_file() and compact.committed(f.name))
            for part in sorted(table.glob("dt=*/hour=*"))
        ]
        if any(counts):
            out[table.name] = counts
    return out


def table_rows(settings, tables: Path) -> dict[str, Counter]:
    """Every table's rows as a multiset, nested values as text (DuckDB, like `query`)."""
    out = {}
    with query.connect(settings, tables_path=str(tables)) as con:
        names = [
            n
            for (n,) in con.execute(
                "SELECT view_name FROM duckdb_views() WHERE NOT internal"
            ).fetchall()
        ]
        for name in names:
            described = con.execute(f'DESCRIBE "{name}"').fetchall()
            columns = [
                f'CAST("{c}" AS VARCHAR)'
                if ("MAP" in t or "[]" in t or "STRUCT" in t)
                else f'"{c}"'
                for c, t, *_ in described
            ]
            rows = con.execute(f'SELECT {", ".join(columns)} FROM "{name}"').fetchall()
            out[name] = Counter(rows)
    return out


def parquet_columns(tables: Path, merged: bool) -> dict[str, list[tuple]]:
    """Table -> leaf columns (path, physical and logical type, definition and repetition
    levels) of its first sink-written file, or of its first merged file."""
    import pyarrow.parquet as pq

    out = {}
    for table in sorted(p for p in tables.iterdir() if p.is_dir()):
        found = [
            f
            for f in sorted(table.glob("dt=*/hour=*/*"))
            if compact.committed(f.name) and f.name.startswith(compact.MERGED_PREFIX) == merged
        ]
        if found:
            out[table.name] = [
                (
                    c.path,
                    c.physical_type,
                    str(c.logical_type),
                    c.max_definition_level,
                    c.max_repetition_level,
                )
                for c in pq.ParquetFile(found[0]).schema
            ]
    return out


def summarise(counts: dict[str, list[int]]) -> dict[str, dict]:
    return {
        t: {
            "partitions": len(c),
            "files": sum(c),
            "max_per_hour": max(c),
            "median_per_hour": statistics.median(c),
        }
        for t, c in counts.items()
    }


def wait_for_first_checkpoint(log_dir: Path, job: subprocess.Popen, timeout_s: float = 900):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if job.poll() is not None:
            raise SystemExit(f"the job exited with {job.returncode}; see {log_dir}")
        for log in log_dir.glob("*.log"):
            if "Completed checkpoint" in log.read_text(errors="replace"):
                return
        time.sleep(2)
    raise SystemExit(f"no checkpoint in {timeout_s:.0f} s; see {log_dir}")


def produce(work: Path, *, event_minutes: float, rate: float, speedup: float) -> Path:
    """A streaming latency run on a stack of its own; returns its tables folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENAI_APM_")}
    kafka_port = free_port()
    env |= {
        "GENAI_APM_STACK_STATE_DIR": str(work / "state"),
        "GENAI_APM_STACK_KAFKA_PORT": str(kafka_port),
        "GENAI_APM_STACK_CONTROLLER_PORT": str(free_port()),
        "GENAI_APM_STACK_MOTO_PORT": str(free_port()),
        "GENAI_APM_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{kafka_port}",
        "GENAI_APM_KAFKA_STARTUP_MODE": "earliest-offset",
        "GENAI_APM_OUTPUT_TABLES_PATH": str(work / "tables"),
    }
    cli = str(BIN / "genai-apm")
    subprocess.run([cli, "stack", "up"], env=env, check=True, stdout=subprocess.DEVNULL)
    job = None
    try:
        subprocess.run(
            [cli, "generate", "--count", "1", "--rate", "1"],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # creates the topic, so the job finds it
        log = (work / "job.log").open("wb")
        job = subprocess.Popen(
            [cli, "submit", "latency"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        # paced traffic only once the job reads: a backlog read at start would commit many
        # minutes per checkpoint, fewer files than a live stream makes
        wait_for_first_checkpoint(work / "state" / "flink-local", job)
        print(
            f"job running; generating {event_minutes:.0f} min of event time at {speedup:g}x",
            flush=True,
        )
        subprocess.run(
            [
                cli,
                "generate",
                "--rate",
                str(rate),
                "--pace",
                str(rate * speedup),
                "--duration",
                str(event_minutes * 60),
                "--seed",
                "7",
            ],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(30)  # the job catches up; the last windows close on idleness and commit
    finally:
        if job is not None and job.poll() is None:
            os.killpg(job.pid, signal.SIGTERM)
            try:
                job.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(job.pid, signal.SIGKILL)
                job.wait(timeout=60)
        subprocess.run([cli, "stack", "down"], env=env, stdout=subprocess.DEVNULL)
    return work / "tables"


def main(argv: list[str] | None = None) -> int:
    # a SIGTERM runs the `finally` blocks (job and stack stopped, scratch folder removed)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=Path, help="an existing tables folder to measure")
    parser.add_argument("--produce", action="store_true", help="make the tables first")
    parser.add_argument("--event-minutes", type=float, default=75.0)
    parser.add_argument("--rate", type=float, default=10.0, help="events per s of event time")
    parser.add_argument("--speedup", type=float, default=12.0)
    args = parser.parse_args(argv)
    settings = config.load(path=None, environ={})
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="genai-apm-bench-compaction-") as scratch:
        work = Path(scratch)
        if args.produce:
            source = produce(
                work, event_minutes=args.event_minutes, rate=args.rate, speedup=args.speedup
            )
        elif args.tables:
            source = args.tables
        else:
            parser.error("--tables PATH or --produce")
        tables = work / "measured"
        shutil.copytree(source, tables)  # compact a copy: the source stays as it was
        before_counts, before_rows = files_per_hour(tables), table_rows(settings, tables)
        sink_columns = parquet_columns(tables, merged=False)
        t0 = time.monotonic()
        compact.run(settings, tables_path=str(tables), after_minutes=0, out=lambda _: None)
        seconds = time.monotonic() - t0
        after_counts, after_rows = files_per_hour(tables), table_rows(settings, tables)
        merged_columns = parquet_columns(tables, merged=True)
    same = {t: before_rows[t] == after_rows.get(t) for t in before_rows}
    result = {
        "command": "python bench/compaction.py " + " ".join(argv or sys.argv[1:]),
        "load_avg_1_5_15": [round(x, 2) for x in load_before],
        "compact_seconds": round(seconds, 2),
        "before": summarise(before_counts),
        "after": summarise(after_counts),
        "rows": {t: sum(c.values()) for t, c in before_rows.items()},
        "query_rows_identical": same,
        # the merged files' Parquet columns equal the sink's (types Athena reads)
        "parquet_columns_identical": {
            t: merged_columns[t] == sink_columns.get(t) for t in merged_columns
        },
    }
    header = ("table", "hours", "files before", "max/h", "files after", "max/h", "rows", "same")
    print("{:18} {:>5} {:>12} {:>6} {:>11} {:>6} {:>6} {}".format(*header))
    for t, b in result["before"].items():
        a = result["after"][t]
        print(
            f"{t:18} {b['partitions']:>5} {b['files']:>12} {b['max_per_hour']:>6} "
            f"{a['files']:>11} {a['max_per_hour']:>6} {result['rows'][t]:>6} {same[t]}"
        )
    kind = "streaming" if args.produce else "tables"
    out = ROOT / "bench" / "results" / f"compaction-{kind}-{time.strftime('%Y-%m-%d')}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)} (compact took {seconds:.1f} s)")
    print("Parquet columns as the sink's:", result["parquet_columns_identical"])
    ok = all(same.values()) and all(result["parquet_columns_identical"].values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
