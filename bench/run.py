"""`make bench`: events/s of the analytics pipeline next to its ceilings, on a stack of its own.

On free ports and a temporary state folder (a running default stack is never touched) it
produces N generated native InvocationEvents to one topic with 2 partitions, then measures:

- ceilings: Kafka's ConsumerPerformance tool, a kafka-python consumer, and a Flink job whose
  raw Kafka source feeds a blackhole (no parsing), at parallelism 1;
- the pipeline: `analytics` (latency + errors + cost) at parallelism 1 and 2 and `latency`
  alone at parallelism 1, bounded, to their real outputs (Kafka topics, Parquet files).

Flink rates are marginal: every Flink job also runs over a small topic (the first
``--baseline-events`` of the same traffic), and the rate is
``(N - n) / (wall(N) - wall(n))``, which removes JVM start, job submission and the final
checkpoint. Each Flink run is its own Python process (its own gateway JVM), so the peak
resident memory (VmHWM) of the JVM and of the Python driver belongs to that run alone.
Results go to bench/results/<date>.json and a PNG chart beside it.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import importlib.util
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULT_TAG = "BENCH_RESULT "
# a Flink run that takes longer than this is stuck, not slow
FLINK_RUN_TIMEOUT_S = 900
TOOL_TIMEOUT_S = 300


class BenchError(Exception):
    pass


# -- memory: /proc only (no psutil) -------------------------------------------------------


def vm_hwm_mb(pid: int | str = "self") -> float | None:
    """Peak resident set size of a process in MiB, from /proc/<pid>/status."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def descendants(root: int) -> list[tuple[int, str]]:
    """(pid, command name) of every live descendant of ``root``."""
    children: dict[int, list[tuple[int, str]]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append((int(entry.name), comm))
    found, todo = [], [root]
    while todo:
        for pid, comm in children.get(todo.pop(), []):
            found.append((pid, comm))
            todo.append(pid)
    return found


def gateway_jvm_hwm_mb() -> float | None:
    """VmHWM of the PyFlink gateway JVM: the java process below this one."""
    peaks = [vm_hwm_mb(pid) for pid, comm in descendants(os.getpid()) if comm == "java"]
    peaks = [p for p in peaks if p is not None]
    return max(peaks) if peaks else None


# -- one Flink run, in a child process -----------------------------------------------------


def flink_child(args: argparse.Namespace) -> int:
    """Run one bounded Flink job and print its wall time and peak memory as one JSON line."""
    from genai_apm import config

    overrides = json.loads(args.overrides)
    settings = config.load(path=None, environ={}).replace(**overrides)
    started = time.perf_counter()
    if args.job == "source":
        job_id = _source_to_blackhole(settings)
    else:
        from genai_apm.jobs import analytics, latency

        module = {"analytics": analytics, "latency": latency}[args.job]
        job_id = module.run(settings, bounded=True, wait=True)
    wall = time.perf_counter() - started
    result = {
        "job_id": job_id,
        "wall_s": wall,
        "jvm_peak_rss_mb": gateway_jvm_hwm_mb(),
        "python_peak_rss_mb": vm_hwm_mb(),
    }
    print(RESULT_TAG + json.dumps(result), flush=True)
    return 0


def _source_to_blackhole(settings) -> str:
    """The Flink ceiling: raw Kafka records, bounded, straight into a blackhole."""
    from genai_apm.connectors import kafka
    from genai_apm.connectors.ddl import create_table
    from genai_apm.flink_env import table_env
    from genai_apm.jobs.runner import execute

    t_env = table_env(settings, "bench source", bounded=True)
    options = {
        "connector": "kafka",
        "topic": settings.topics.invocations,
        **kafka.client_properties(settings.kafka),
        "properties.group.id": settings.kafka.consumer_group,
        "scan.startup.mode": "earliest-offset",
        "scan.bounded.mode": "latest-offset",
        "format": "raw",
    }
    t_env.execute_sql(create_table("raw_in", ["`payload` BYTES"], options))
    t_env.execute_sql(create_table("sink", ["`payload` BYTES"], {"connector": "blackhole"}))
    statements = t_env.create_statement_set()
    statements.add_insert_sql("INSERT INTO `sink` SELECT `payload` FROM `raw_in`")
    return execute(t_env, statements, "bench source", wait=True)


def run_flink(job: str, overrides: dict, log_dir: Path, label: str, timeout_s: float) -> dict:
    """Start one Flink run as a child process; bounded wait, its log kept on failure."""
    log = log_dir / f"{label}.log"
    argv = [sys.executable, __file__, "_flink", "--job", job, "--overrides", json.dumps(overrides)]
    with open(log, "w") as out:
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=out, text=True, start_new_session=True
        )
        try:
            stdout, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the child and the JVM it started
            proc.wait()
            # a bounded job that never ends is usually restarting: its Flink log says why
            flink_log = Path(overrides["stack"]["state_dir"]) / "flink-local"
            raise BenchError(
                f"{label}: no result after {timeout_s:.0f}s; Flink's log is under {flink_log}"
            ) from None
    out_lines = [ln for ln in stdout.splitlines() if ln.startswith(RESULT_TAG)]
    if proc.returncode != 0 or not out_lines:
        tail = log.read_text().strip().splitlines()[-1:] or ["(empty log)"]
        raise BenchError(f"{label}: exit {proc.returncode}: {tail[0][:200]}; see {log}")
    return json.loads(out_lines[-1][len(RESULT_TAG) :])


# -- ceilings outside Flink ----------------------------------------------------------------


def consumer_performance(bootstrap: str, topic: str, events: int) -> dict:
    """Kafka's own ConsumerPerformance tool; fetch.nMsg.sec leaves out the group join."""
    classpath = str(ROOT / ".cache" / "jars" / "kafka" / "*")
    argv = [
        "java",
        "-Xmx512m",
        "-cp",
        classpath,
        "org.apache.kafka.tools.ConsumerPerformance",
        "--bootstrap-server",
        bootstrap,
        "--topic",
        topic,
        "--messages",
        str(events),
        "--timeout",
        "30000",
    ]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise BenchError(f"ConsumerPerformance: no result after {TOOL_TIMEOUT_S}s") from None
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    header = next((i for i, ln in enumerate(lines) if "nMsg.sec" in ln), None)
    if proc.returncode != 0 or header is None or header + 1 >= len(lines):
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise BenchError(f"ConsumerPerformance: exit {proc.returncode}: {tail[:200]}")
    keys = [k.strip() for k in lines[header].split(",")]
    values = [v.strip() for v in lines[header + 1].split(",")]
    row = dict(zip(keys, values, strict=False))
    consumed = int(float(row["data.consumed.in.nMsg"]))
    if consumed < events:
        raise BenchError(f"ConsumerPerformance read {consumed} of {events} records")
    return {
        "events": consumed,
        "events_per_s": float(row["fetch.nMsg.sec"]),
        "fetch_time_ms": float(row["fetch.time.ms"]),
        "rebalance_time_ms": float(row["rebalance.time.ms"]),
        "measured": "fetch.nMsg.sec: records / fetch time (group join excluded)",
    }


def kafka_python_read(kafka_settings, topic: str, events: int, *, check_crcs: bool = True) -> dict:
    """kafka-python reading the raw values (no JSON decoding), first record to last.

    kafka-python verifies each batch's CRC-32C in pure Python unless the optional `crc32c`
    package is installed (it is not a dependency here); ``check_crcs=False`` shows that cost."""
    from kafka import KafkaConsumer, TopicPartition

    from genai_apm.kafka_io import client_args, kafka_errors

    with kafka_errors(kafka_settings):
        consumer = KafkaConsumer(
            **client_args(kafka_settings), enable_auto_commit=False, check_crcs=check_crcs
        )
        try:
            partitions = consumer.partitions_for_topic(topic) or set()
            tps = [TopicPartition(topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            count, first, size = 0, None, 0
            deadline = time.monotonic() + TOOL_TIMEOUT_S
            while count < events:
                if time.monotonic() > deadline:
                    raise BenchError(f"kafka-python read {count} of {events} records in time")
                for records in consumer.poll(timeout_ms=1000).values():
                    if first is None:
                        first = time.perf_counter()
                    count += len(records)
                    size += sum(len(r.value) for r in records)
            seconds = time.perf_counter() - first
        finally:
            consumer.close()
    return {
        "events": count,
        "events_per_s": count / seconds,
        "seconds": seconds,
        "mean_value_bytes": size / count,
        "check_crcs": check_crcs,
        "measured": "first poll with records to the last record; values not decoded",
    }


# -- the orchestration -----------------------------------------------------------------------


def machine() -> dict:
    meminfo = Path("/proc/meminfo").read_text()
    total_kb = int(re.search(r"MemTotal:\s+(\d+)", meminfo).group(1))
    from importlib.metadata import version

    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr
    jars = sorted(p.name for p in (ROOT / ".cache" / "jars").rglob("*.jar"))
    connector = next((j for j in jars if j.startswith("flink-sql-connector-kafka")), None)
    broker = next((j for j in jars if re.match(r"kafka_2\.13-[\d.]+\.jar", j)), None)
    return {
        "cores": os.cpu_count(),
        "memory_gb": round(total_kb / 1024 / 1024, 1),
        "cpu": _cpu_model(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "java": java.splitlines()[0] if java else None,
        "apache_flink": version("apache-flink"),
        "kafka_python": version("kafka-python"),
        "kafka_broker_jar": broker,
        "flink_kafka_connector_jar": connector,
    }


def _cpu_model() -> str | None:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return None


def marginal(big: dict, small: dict, events: int, baseline_events: int) -> dict:
    """Rate over the records beyond the baseline run: start-up and shutdown cancel out."""
    delta = big["wall_s"] - small["wall_s"]
    return {
        "events_per_s": (events - baseline_events) / delta if delta > 0 else None,
        "wall_s": big["wall_s"],
        "baseline_wall_s": small["wall_s"],
        "events_per_s_incl_startup": events / big["wall_s"],
        "jvm_peak_rss_mb": big["jvm_peak_rss_mb"],
        "python_peak_rss_mb": big["python_peak_rss_mb"],
    }


def bench(args: argparse.Namespace) -> dict:
    from genai_apm import config, generator, kafka_io
    from genai_apm.config import TopicSettings
    from genai_apm.stack.local import LocalStack
    from genai_apm.stack.process import free_port

    events, baseline_events = args.events, args.baseline_events
    if not 0 < baseline_events < events:
        raise BenchError("--baseline-events must be between 0 and --events")
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="genai-apm-bench-"))
    log_dir = tmp / "logs"
    log_dir.mkdir()
    stack_settings = config.load(path=None, environ={}).replace(
        stack={
            "state_dir": str(tmp / "state"),
            "kafka_port": free_port(),
            "controller_port": free_port(),
            "moto_port": free_port(),
        }
    )
    stack = LocalStack(stack_settings)
    print(f"bench: stack on free ports, state in {tmp}", flush=True)
    stack.up()
    try:
        kafka = {
            "bootstrap_servers": stack.kafka.bootstrap,
            "startup_mode": "earliest-offset",
            "partitions": 2,
        }
        base = stack_settings.replace(kafka=kafka, aws={"endpoint_url": stack.moto.endpoint_url})
        topics = {"big": "bench.invocations", "small": "bench.invocations.baseline"}
        spec = generator.TrafficSpec(count=events)
        kafka_io.ensure_topics(base.kafka, topics.values(), partitions=2)
        t0 = time.perf_counter()
        for name, count in (("big", events), ("small", baseline_events)):
            sent = kafka_io.produce_json(
                base.kafka,
                topics[name],
                generator.invocations(spec, count),
                key_field="model_id",
            )
            if sent != count:
                raise BenchError(f"produced {sent} of {count} events to {topics[name]}")
        print(f"bench: produced {events:,} + {baseline_events:,} events", flush=True)
        produce_s = time.perf_counter() - t0

        results: dict = {"ceilings": {}, "pipeline": {}}
        print("bench: ConsumerPerformance", flush=True)
        results["ceilings"]["kafka_consumer_perf"] = consumer_performance(
            stack.kafka.bootstrap, topics["big"], events
        )
        print("bench: kafka-python consumer", flush=True)
        results["ceilings"]["kafka_python"] = kafka_python_read(base.kafka, topics["big"], events)
        results["ceilings"]["kafka_python_no_crc"] = kafka_python_read(
            base.kafka, topics["big"], events, check_crcs=False
        )

        output_topics = [
            f.name for f in dataclasses.fields(TopicSettings) if f.name != "invocations"
        ]
        runs = [
            ("ceilings", "flink_source_blackhole_p1", "source", 1),
            ("pipeline", "analytics_p1", "analytics", 1),
            ("pipeline", "analytics_p2", "analytics", 2),
            ("pipeline", "latency_p1", "latency", 1),
        ]
        for group, label, job, parallelism in runs:
            walls = {}
            for size in ("small", "big"):
                run_label = f"{label}-{size}"
                overrides = {
                    "stack": {"state_dir": str(tmp / "state")},
                    "kafka": kafka | {"consumer_group": f"bench-{run_label}"},
                    "aws": {"endpoint_url": stack.moto.endpoint_url},
                    "flink": {"parallelism": parallelism},
                    # every output topic is this job's own; the source is the shared input
                    "topics": {name: f"bench.{label}.{name}" for name in output_topics}
                    | {"invocations": topics[size]},
                    "output": {"tables_path": str(tmp / "tables" / run_label)},
                }
                if job != "source":
                    outputs = overrides["topics"]
                    kafka_io.ensure_topics(base.kafka, [outputs[name] for name in output_topics])
                print(f"bench: flink {run_label}", flush=True)
                try:
                    walls[size] = run_flink(job, overrides, log_dir, run_label, args.run_timeout)
                except BenchError as e:
                    # one failed job must not hide what the others measured
                    print(f"bench: {e}", file=sys.stderr, flush=True)
                    walls["error"] = str(e)
                    break
            if "error" in walls:
                results[group][label] = {"events_per_s": None, "error": walls["error"]}
            else:
                results[group][label] = marginal(
                    walls["big"], walls["small"], events, baseline_events
                )
            results[group][label]["parallelism"] = parallelism

        flink_ceiling = results["ceilings"]["flink_source_blackhole_p1"]["events_per_s"]
        python_ceiling = results["ceilings"]["kafka_python"]["events_per_s"]
        results["ratios"] = {
            label: {
                "of_flink_source": _ratio(row["events_per_s"], flink_ceiling),
                "of_kafka_python": _ratio(row["events_per_s"], python_ceiling),
            }
            for label, row in results["pipeline"].items()
        }
    finally:
        stack.down()
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": "make bench" + ("" if events == 300_000 else f" EVENTS={events}"),
        "events": events,
        "baseline_events": baseline_events,
        "topic": {
            "partitions": 2,
            "traffic": "generator.TrafficSpec defaults (seed 7), keyed by model_id",
            # produce_json compresses with lz4 only when the lz4 package is installed
            "compression": "lz4" if importlib.util.find_spec("lz4") else "none",
            "mean_value_bytes": round(results["ceilings"]["kafka_python"]["mean_value_bytes"]),
        },
        "flink_rate": (
            "marginal: (events - baseline_events) / (wall(events) - wall(baseline_events)), "
            "each wall from job submission to the bounded job's end; one run each"
        ),
        "machine": machine(),
        "produce_s": round(produce_s, 1),
        "bench_s": round(time.perf_counter() - started, 1),
        **results,
    }


def _ratio(value: float | None, ceiling: float | None) -> float | None:
    return round(value / ceiling, 3) if value and ceiling else None


def chart(result: dict, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("bench: matplotlib is not installed; no chart (pip install '.[bench]')")
        return False
    rows = [(f"ceiling: {k}", v["events_per_s"] or 0) for k, v in result["ceilings"].items()] + [
        (k, v["events_per_s"] or 0) for k, v in result["pipeline"].items()
    ]
    labels, values = zip(*reversed(rows), strict=True)
    fig, ax = plt.subplots(figsize=(8, 3.5))
    colours = ["tab:blue" if not label.startswith("ceiling") else "tab:gray" for label in labels]
    ax.barh(labels, values, color=colours)
    for i, v in enumerate(values):
        ax.text(v, i, f" {v:,.0f}", va="center", fontsize=8)
    m = result["machine"]
    ax.set_xlabel("events/s (marginal, wall time)")
    ax.set_title(
        f"genai-apm bench, {result['events']:,} events, {m['cores']} cores, "
        f"{m['memory_gb']} GB, {result['date'][:10]}",
        fontsize=9,
    )
    ax.margins(x=0.2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def markdown(result: dict) -> str:
    """The README table of a run."""
    ceilings, pipeline, ratios = result["ceilings"], result["pipeline"], result["ratios"]

    def rate(row: dict) -> str:
        if row.get("error"):
            return "failed (see JSON)"
        return f"{row['events_per_s']:,.0f}" if row["events_per_s"] else "n/a"

    def mem(row: dict, key: str) -> str:
        return f"{row[key]:,.0f}" if row.get(key) else ""

    def share(value: float | None) -> str:
        return f"{value:.0%}" if value is not None else ""

    lines = [
        "| what | parallelism | events/s | JVM peak RSS (MiB) | Python peak RSS (MiB) "
        "| of Flink source | of kafka-python |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| ceiling: Kafka ConsumerPerformance | | {rate(ceilings['kafka_consumer_perf'])} "
        "| | | | |",
        f"| ceiling: kafka-python consumer (no decoding) | 1 | {rate(ceilings['kafka_python'])} "
        "| | | | |",
        "| ceiling: kafka-python consumer, CRC checks off | 1 "
        f"| {rate(ceilings['kafka_python_no_crc'])} | | | | |",
    ]
    flink = ceilings["flink_source_blackhole_p1"]
    lines.append(
        f"| ceiling: Flink raw Kafka source -> blackhole | 1 | {rate(flink)} "
        f"| {mem(flink, 'jvm_peak_rss_mb')} | {mem(flink, 'python_peak_rss_mb')} | | |"
    )
    for label, row in pipeline.items():
        name = label.rsplit("_p", 1)[0]
        lines.append(
            f"| pipeline: `{name}` | {row['parallelism']} | {rate(row)} "
            f"| {mem(row, 'jvm_peak_rss_mb')} | {mem(row, 'python_peak_rss_mb')} "
            f"| {share(ratios[label]['of_flink_source'])} "
            f"| {share(ratios[label]['of_kafka_python'])} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    child = sub.add_parser("_flink", help=argparse.SUPPRESS)
    child.add_argument("--job", choices=("source", "analytics", "latency"), required=True)
    child.add_argument("--overrides", required=True)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--baseline-events", type=int, default=5_000)
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results")
    parser.add_argument(
        "--run-timeout",
        type=float,
        default=FLINK_RUN_TIMEOUT_S,
        help="seconds one Flink run may take before it counts as failed",
    )
    args = parser.parse_args(argv)
    if args.command == "_flink":
        return flink_child(args)

    from genai_apm.errors import GenaiApmError

    try:
        result = bench(args)
    except (BenchError, GenaiApmError) as e:
        print(f"bench: error: {e}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / result["date"][:10]
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    drew = chart(result, stem.with_suffix(".png"))
    print(f"bench: wrote {stem}.json" + (f" and {stem}.png" if drew else ""))
    print(markdown(result))
    failed = [k for g in ("ceilings", "pipeline") for k, v in result[g].items() if v.get("error")]
    if failed:
        print(f"bench: error: {', '.join(failed)} failed; see the JSON", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
