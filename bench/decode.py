"""What decoding a record costs: the JSON format, the SQL contract checks, genai-contract.

Each variant reads a JSON-lines file of generated native InvocationEvents with a bounded file
source and writes the decoded columns to a blackhole, with a watermark on `event_ts`:

- ``json``: Flink's own JSON format with the contract's columns declared (``event_time`` as
  BIGINT, the epoch milliseconds the generator writes, and `event_ts` computed from it); no
  checks: the reference cost of parsing and typing.
- ``sql``: the path before the format: raw bytes, rowtime from GENAI_TIMESTAMP over the
  document, then GENAI_JSON_TEXTS, GENAI_LONG/DOUBLE and the generated rejection_reason SQL
  (schemas/flink_sql.py), as jobs/invocations.py built `invocations_checked`.
- ``format``: the `genai-contract` source format (schemas/flink_format.py): every field typed,
  `reason`, `event_ts` and `raw` from one parse.

Each repetition of a variant is its own process (its own JVM), which runs a warm-up job over
the small file, then the measured jobs over the small and the big file. The cost per event is
the marginal one: the JVM's CPU time (user + system, from /proc) during the big job minus that
during the small one, divided by the difference in events, so planning, deployment and the
JIT's warm-up cancel out; CPU time is also far less sensitive than wall time to other load on
a shared machine. The same marginal
of the job's net runtime (Flink's JobExecutionResult) is printed beside it. Variants are
interleaved within each repetition; medians and spreads are printed, with the load average.

    .venv/bin/python bench/decode.py --events 400000 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("json", "sql", "format")
RESULT_TAG = "DECODE_RESULT "


def write_events(path: Path, count: int) -> None:
    from genai_apm.traffic import TrafficSpec, invocations

    with open(path, "w") as out:
        for event in invocations(TrafficSpec(seed=7, error_rate=0.05), count):
            out.write(json.dumps(event, separators=(",", ":")) + "\n")


def _statement(t_env, variant: str, path: str, settings) -> str:
    from genai_apm.connectors.ddl import RAW_DOC, create_table
    from genai_apm.connectors.files import as_uri, raw_file_source_ddl
    from genai_apm.schemas.flink_format import Decoding
    from genai_apm.schemas.flink_sql import (
        flink_columns,
        quote_ident,
        rejection_reason,
        texts_view_sql,
        typed,
    )
    from genai_apm.schemas.invocation import INVOCATION_V1 as contract

    fields = [quote_ident(n) for n in contract.names]
    if variant == "json":
        columns = [(n, "BIGINT" if n == "event_time" else t) for n, t in flink_columns(contract)]
        lines = [f"{quote_ident(n)} {t}" for n, t in columns]
        delay = f"INTERVAL '{int(settings.flink.watermark_delay_s)}' SECOND"
        lines += [
            "`event_ts` AS TO_TIMESTAMP_LTZ(`event_time`, 3)",
            f"WATERMARK FOR `event_ts` AS `event_ts` - {delay}",
        ]
        options = {"connector": "filesystem", "path": as_uri(path), "format": "json"}
        t_env.execute_sql(create_table("src", lines, options))
        select = f"SELECT {', '.join(fields)}, `event_ts` FROM src"
        sink = [*(f"{quote_ident(n)} {t}" for n, t in columns), "`event_ts` TIMESTAMP_LTZ(3)"]
    elif variant == "sql":
        event_time = typed(contract.field("event_time"), RAW_DOC)
        t_env.execute_sql(
            raw_file_source_ddl("src", path, event_time_sql=event_time, flink=settings.flink)
        )
        view, texts = texts_view_sql(contract, "src")
        t_env.execute_sql(f"CREATE TEMPORARY VIEW texts AS {view}")
        cols = ", ".join(f"{typed(f, texts)} AS {quote_ident(f.name)}" for f in contract.fields)
        select = (
            f"SELECT {cols}, {rejection_reason(contract, texts)} AS `reason`, `event_ts`, `raw` "
            "FROM texts"
        )
        sink = Decoding(contract, "event_time").columns()
    else:
        decoding = Decoding(contract, "event_time")
        t_env.execute_sql(raw_file_source_ddl("src", path, decoding=decoding, flink=settings.flink))
        select = f"SELECT {', '.join(fields)}, `reason`, `event_ts`, `raw` FROM src"
        sink = decoding.columns()
    t_env.execute_sql(create_table("sink", sink, {"connector": "blackhole"}))
    return f"INSERT INTO sink {select}"


def child(args: argparse.Namespace) -> int:
    """In one JVM: a warm-up job over the small file, then the measured small and big jobs."""
    from genai_apm.flink.env import table_env
    from genai_apm.settings import config

    settings = config.load(path=None, environ={}).replace(
        flink={"parallelism": args.parallelism}, stack={"state_dir": args.state_dir}
    )
    runs = {}
    for label, path in (
        ("warmup", args.small_input),
        ("small", args.small_input),
        ("big", args.input),
    ):
        cpu_before, started = descendants_cpu_s(), time.perf_counter()
        t_env = table_env(settings, f"bench decode {args.variant} {label}", bounded=True)
        result = t_env.execute_sql(_statement(t_env, args.variant, path, settings))
        net_ms = result.get_job_client().get_job_execution_result().result().get_net_runtime()
        runs[label] = {
            "net_s": net_ms / 1000,
            "wall_s": time.perf_counter() - started,
            "jvm_cpu_s": descendants_cpu_s() - cpu_before,
        }
    print(RESULT_TAG + json.dumps(runs), flush=True)
    return 0


def descendants_cpu_s() -> float:
    """User + system CPU of this process's descendants (PyFlink's JVM), from /proc."""
    parents, cpu = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        parents[int(entry)] = int(fields[1])
        cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    total, pending = 0.0, [os.getpid()]
    while pending:
        pid = pending.pop()
        children = [c for c, p in parents.items() if p == pid]
        total += sum(cpu[c] for c in children)
        pending.extend(children)
    return total
    return 0


def run_one(variant: str, small: Path, big: Path, args, log: Path) -> dict:
    argv = [
        sys.executable,
        __file__,
        "_child",
        "--variant",
        variant,
        "--input",
        str(big),
        "--small-input",
        str(small),
        "--parallelism",
        str(args.parallelism),
        "--state-dir",
        str(args.workdir / "state"),
    ]
    with open(log, "w") as err:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=err, text=True, timeout=1800)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_TAG)]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"{variant}: exit {proc.returncode}; see {log}")
    return json.loads(lines[-1][len(RESULT_TAG) :])


def load_average() -> float:
    return os.getloadavg()[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", default="bench", choices=["bench", "_child"])
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--small", type=int, default=20_000, help="events of the baseline run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--parallelism", type=int, default=1)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--workdir", type=Path, default=None, help="kept files (default: temp)")
    # child only
    parser.add_argument("--variant", choices=VARIANTS)
    parser.add_argument("--input")
    parser.add_argument("--small-input")
    parser.add_argument("--state-dir")
    args = parser.parse_args(argv)
    if args.command == "_child":
        return child(args)

    args.workdir = args.workdir or Path(tempfile.mkdtemp(prefix="genai-apm-decode-"))
    args.workdir.mkdir(parents=True, exist_ok=True)
    files = {}
    for size in (args.small, args.events):
        files[size] = args.workdir / f"events-{size}.jsonl"
        if not files[size].exists():
            write_events(files[size], size)
    variants = args.variants.split(",")
    runs: dict[str, list[dict]] = {v: [] for v in variants}
    for rep in range(args.repeats):
        for variant in variants:
            load = load_average()
            log = args.workdir / f"{variant}-{rep}.log"
            jobs = run_one(variant, files[args.small], files[args.events], args, log)
            small, big = jobs["small"], jobs["big"]
            events = args.events - args.small
            us = 1e6 * (big["jvm_cpu_s"] - small["jvm_cpu_s"]) / events
            net_us = 1e6 * (big["net_s"] - small["net_s"]) / events
            row = {
                "rep": rep,
                "us_per_event": us,
                "net_us_per_event": net_us,
                "load1": load,
                "small": small,
                "big": big,
            }
            runs[variant].append(row)
            print(
                f"rep {rep} {variant:7s} {us:7.2f} CPU us/event, {net_us:7.2f} net-runtime "
                f"us/event (JVM CPU {big['jvm_cpu_s']:.1f} - {small['jvm_cpu_s']:.1f} s; "
                f"load1 {load:.1f})",
                flush=True,
            )
    summary = {}
    for variant, rows in runs.items():
        costs = [r["us_per_event"] for r in rows]
        summary[variant] = {
            "median_us_per_event": statistics.median(costs),
            "min": min(costs),
            "max": max(costs),
            "median_net_us_per_event": statistics.median(r["net_us_per_event"] for r in rows),
        }
    if "json" in summary:
        for variant in summary:
            summary[variant]["x_json"] = (
                summary[variant]["median_us_per_event"] / summary["json"]["median_us_per_event"]
            )
    print(json.dumps({"events": args.events, "small": args.small, "summary": summary}, indent=2))
    (args.workdir / "result.json").write_text(json.dumps({"summary": summary, "runs": runs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
