"""`make bench`: events/s, CPU per event, freshness and memory of the pipeline next to its
ceilings and to what a user would run instead, on a stack of its own.

On free ports and a temporary state folder (a running default stack is never touched) it
produces N generated native InvocationEvents to one topic with 2 partitions (and the first
``--baseline-events`` of the same traffic to a small topic that warms Spark up), then
measures, by section:

- ceilings: Kafka's ConsumerPerformance and a kafka-python consumer (one run each);
- throughput: the compared rows, each run ``--repeats`` times (3), interleaved (one round
  runs every row, the next round runs them in the reverse order):
  Flink Kafka source -> blackhole as raw bytes and through the JSON format (the ceilings);
  three labelled Flink rows on the same topic: the per-minute per-model table the
  alternatives compute (JSON format source), the same table over the project's contract
  checks (the `invocations` views of jobs/invocations.py, dead letters included), and all
  analyses (the `all` job, p1, to its real outputs); kafka-python + polars; Spark Structured
  Streaming, bounded, in complete mode and in its streaming form (watermark, append mode,
  micro-batches). The Flink tables and Spark write the same JSON rows to a Kafka topic with
  the same at-least-once guarantee; every table is checked group by group against polars;
- scaling: all analyses at p1 as distinct keys grow (10, 1k, 100k nominal models x apps x
  users), one run each;
- table freshness: the Flink checked table and Spark's streaming form, unbounded, side by side
  on paced traffic stamped with the wall clock: when each 1-minute row becomes readable;
- freshness and soak: the streaming `all` job for 10 minutes on paced traffic at 80% of its
  streaming capacity on that traffic (measured first, soak_capacity): freshness, lag and
  memory over time (bench/freshness.py).

Rates come from each job's own phases, not wall time: a Flink run's processing time runs from
its first split fetcher's start to its last "Finished reading split(s)" in its own Flink log
(JVM start, planning, code generation, deployment and the final checkpoint are outside it);
Spark's is the sum of its micro-batches' triggerExecution; polars' runs from the first poll
to the last minute aggregated. CPU-seconds are the process CPU time (utime + stime, /proc) of
the run's process tree (Python driver and JVM) over that same span, sampled every 0.25 s;
beside them each run records the load average and the CPU time of everything else on the
machine in that span (/proc/stat busy time minus the bench's own process tree). Each run is
its own Python process (its own JVM), so peak resident memory belongs to that run alone.
Results go to bench/results/<date>.json, a PNG chart beside it, and README.md between the
bench markers.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import importlib.util
import json
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make `bench` importable
    sys.path.insert(0, str(ROOT))

from bench import alternatives, ceilings, freshness, report  # noqa: E402
from bench.memory import java_below, jvm_hwm_mb, vm_hwm_mb  # noqa: E402

BENCH_DIR = ROOT / "bench"
RESULT_TAG = "BENCH_RESULT "
SECTIONS = ("ceilings", "throughput", "scaling", "table_freshness", "freshness")
# a Flink run that takes longer than this is stuck, not slow
FLINK_RUN_TIMEOUT_S = 900
BUDGET_S = 25 * 60  # the limit for one `make bench`
# nominal distinct keys -> (models, apps, users) of the generated traffic
KEY_LEVELS = {"10": (2, 1, 5), "1k": (10, 10, 10), "100k": (10, 10, 1000)}
LARGE_ATTRIBUTES = 32  # entries of the extra map that makes an event "large"
KAFKA_PYTHON_EVENTS = 50_000  # records the kafka-python ceiling reads
SAMPLE_PERIOD_S = 0.25
TABLE_DELIVERY = "at-least-once"  # Spark's Kafka sink has no other; the Flink tables match it

# the compared rows: label -> what. The "spark" unit of a round runs both Spark rows.
ROWS = {
    "flink_raw_source": "ceiling: Flink Kafka source, raw bytes -> blackhole, p1",
    "flink_json_source": "ceiling: Flink Kafka source, JSON format -> blackhole, p1",
    "flink_table": "Flink: per-minute per-model table, JSON format source, p1",
    "flink_table_checked": "Flink: the same table over the contract checks (`invocations`), p1",
    "flink_shared_minutes": (
        "Flink: the shared per-minute rows of `all` (jobs/minutes.py) over the contract checks, "
        "to a blackhole, p1"
    ),
    "all_p1": "Flink: all analyses (the `all` job), p1",
    "all_p2": "Flink: all analyses (the `all` job), p2",
    "analytics_p1": "Flink: `analytics` alone (latency, errors, cost), p1",
    "anomalies_p1": "Flink: `anomalies` alone, p1",
    "polars": "alternative: kafka-python + polars micro-batches",
    "spark_complete": "alternative: Spark, complete mode, one bounded batch",
    "spark_stream": "alternative: Spark streaming form: watermark, append, 50k-record batches",
}
# Flink row -> (job of flink_child, parallelism)
FLINK_ROWS = {
    "flink_raw_source": ("source", 1),
    "flink_json_source": ("json-source", 1),
    "flink_table": ("table", 1),
    "flink_table_checked": ("table-checked", 1),
    "flink_shared_minutes": ("shared-minutes", 1),
    "all_p1": ("all", 1),
    "all_p2": ("all", 2),
    "analytics_p1": ("analytics", 1),
    "anomalies_p1": ("anomalies", 1),
}
DEFAULT_ROWS = [
    "flink_raw_source",
    "flink_json_source",
    "flink_table",
    "flink_table_checked",
    "flink_shared_minutes",
    "all_p1",
    "polars",
    "spark_complete",
    "spark_stream",
]
TABLE_ROWS = ("flink_table", "flink_table_checked", "spark_complete", "spark_stream")
SCALING_POINTS = {  # label -> (key level, extra attributes)
    "10": ("10 keys", "10", 0),
    "1k": ("1k keys", "1k", 0),
    "100k": ("100k keys", "100k", 0),
    "1k-large": (f"1k keys, large events (+{LARGE_ATTRIBUTES}-entry attribute map)", "1k", 32),
}


class BenchError(Exception):
    pass


# -- child processes: one measured run each, result as one tagged JSON line ----------------


def flink_child(args: argparse.Namespace) -> int:
    """Run one Flink job (bounded unless --streaming); print its phases and peak memory."""
    from genai_apm.settings import config

    overrides = json.loads(args.overrides)
    settings = config.load(path=None, environ={}).replace(**overrides)
    bounded = not args.streaming
    started = time.perf_counter()
    if args.job in ("source", "json-source"):
        job_id = _source_to_blackhole(settings, json_format=args.job == "json-source")
    elif args.job in ("table", "table-checked"):
        job_id = minute_table(settings, checked=args.job == "table-checked", bounded=bounded)
    elif args.job == "shared-minutes":
        job_id = shared_minutes(settings, bounded=bounded)
    else:
        from genai_apm.jobs import load

        job_id = load(args.job).run(settings, bounded=bounded, wait=True)
    wall = time.perf_counter() - started
    phases = flink_phases(_flink_log(os.environ["FLINK_LOG_DIR"])) if bounded else {}
    _print_result(
        {
            "job_id": job_id,
            "wall_s": wall,
            **phases,
            "jvm_peak_rss_mb": jvm_hwm_mb(),
            "python_peak_rss_mb": vm_hwm_mb(),
        }
    )
    return 0


# the JSON source's columns: the contract's, but event_time as the epoch milliseconds it is
# on the wire (Flink's JSON format reads TIMESTAMP_LTZ only from text)
def _json_columns() -> list[tuple[str, str]]:
    from genai_apm.schemas.flink_sql import flink_columns
    from genai_apm.schemas.invocation import INVOCATION_V1

    return [(n, "BIGINT" if n == "event_time" else t) for n, t in flink_columns(INVOCATION_V1)]


def _json_source_options(settings) -> dict:
    from genai_apm.connectors import kafka

    return {
        "connector": "kafka",
        "topic": settings.topics.invocations,
        **kafka.client_properties(settings.kafka),
        "properties.group.id": settings.kafka.consumer_group,
        "scan.startup.mode": "earliest-offset",
        "scan.bounded.mode": "latest-offset",
        "format": "json",
        "json.ignore-parse-errors": "true",
    }


def _source_to_blackhole(settings, *, json_format: bool) -> str:
    """The Flink ceilings: Kafka records, bounded, into a blackhole, either as raw bytes or
    decoded by Flink's JSON format into the contract's typed columns (no validation)."""
    from genai_apm.connectors.ddl import create_table, typed_columns
    from genai_apm.flink.env import table_env
    from genai_apm.jobs.runner import execute

    t_env = table_env(settings, "bench source", bounded=True)
    options = _json_source_options(settings)
    columns = typed_columns(_json_columns())
    if not json_format:
        columns = ["`payload` BYTES"]
        options = {k: v for k, v in options.items() if not k.startswith("json.")}
        options["format"] = "raw"
    t_env.execute_sql(create_table("source_in", columns, options))
    t_env.execute_sql(create_table("sink", columns, {"connector": "blackhole"}))
    statements = t_env.create_statement_set()
    statements.add_insert_sql("INSERT INTO `sink` SELECT * FROM `source_in`")
    return execute(t_env, statements, "bench source", wait=True)


# the per-minute per-model table: the columns polars and Spark produce, as JSON rows
TABLE_COLUMNS = [
    ("window", "STRING"),
    ("window_start", "STRING"),
    ("window_end", "STRING"),
    ("model_id", "STRING"),
    ("requests", "BIGINT"),
    ("errors", "BIGINT"),
    *((f"p{round(q * 100)}", "DOUBLE") for q in alternatives.QUANTILES),
]


def table_select(source: str) -> str:
    """The per-minute per-model table over ``source`` (rowtime `event_ts`): the same counts and
    exact percentiles of successful latencies (PERCENTILE interpolates linearly, as polars'
    and Spark's percentile do)."""
    iso = "'yyyy-MM-dd''T''HH:mm:ss''Z'''"
    percentiles = ",\n  ".join(
        f"PERCENTILE(`latency_ms`, {q}) FILTER (WHERE `status` = 'success') AS `p{round(q * 100)}`"
        for q in alternatives.QUANTILES
    )
    return f"""
SELECT
  '1m' AS `window`,
  DATE_FORMAT(window_start, {iso}) AS `window_start`,
  DATE_FORMAT(window_end, {iso}) AS `window_end`,
  `model_id`,
  COUNT(*) AS `requests`,
  COUNT(*) FILTER (WHERE `status` = 'error') AS `errors`,
  {percentiles}
FROM TABLE(TUMBLE(TABLE {source}, DESCRIPTOR(`event_ts`), INTERVAL '1' MINUTE))
GROUP BY window_start, window_end, `model_id`"""


def _bench_job(settings, name: str, *, checked: bool, bounded: bool):
    """(table environment, statement set, sinks) of a bench job; ``checked``: with the
    project's raw source and `invocations` views registered (every contract check, rejects
    to the dead-letter topic), as the `all` job reads its events."""
    from genai_apm.flink.env import table_env
    from genai_apm.jobs import sources
    from genai_apm.jobs.sinks import Sinks

    t_env = table_env(settings, name, bounded=bounded)
    statements = t_env.create_statement_set()
    sinks = Sinks(t_env, settings, name, kafka=True, tables_path=settings.output.tables_path)
    if checked:
        rejected = sources.from_kafka("invocations", t_env, settings, bounded=bounded)
        sources.add_deadletters(statements, sinks, rejected)
    return t_env, statements, sinks


def minute_table(settings, *, checked: bool, bounded: bool = True) -> str:
    """The alternatives' per-minute per-model table in Flink, to a Kafka topic (the latency
    topic of ``settings``) with ``settings.flink.delivery_guarantee``. Plain: Flink's JSON
    format into typed columns, rowtime from event_time, the project's watermark. Checked: the
    project's raw source and `invocations` views (every contract check, rejects to the
    dead-letter topic), then the same aggregation."""
    from genai_apm.connectors import kafka
    from genai_apm.connectors.ddl import create_table, typed_columns, watermark_options
    from genai_apm.jobs.runner import execute

    name = "bench table checked" if checked else "bench table"
    t_env, statements, sinks = _bench_job(settings, name, checked=checked, bounded=bounded)
    if checked:
        source = "invocations"
    else:
        delay = f"INTERVAL '{int(settings.flink.watermark_delay_s)}' SECOND"
        columns = [
            *typed_columns(_json_columns()),
            "`event_ts` AS TO_TIMESTAMP_LTZ(`event_time`, 3)",
            f"WATERMARK FOR `event_ts` AS `event_ts` - {delay}",
        ]
        options = _json_source_options(settings) | watermark_options(settings.flink)
        if not bounded:
            del options["scan.bounded.mode"]
        t_env.execute_sql(create_table("source_in", columns, options))
        source = "source_in"
    t_env.execute_sql(
        kafka.json_sink_ddl(
            "table_out",
            settings.topics.latency,
            settings.kafka,
            TABLE_COLUMNS,
            delivery=sinks.delivery,
        )
    )
    statements.add_insert_sql("INSERT INTO `table_out`" + table_select(source))
    return execute(t_env, statements, name, wait=True)


def shared_minutes(settings, *, bounded: bool = True) -> str:
    """What every analysis of `all` derives from, alone: the raw source, the contract checks
    with their dead letters, and the one per-minute aggregation (minute_stats with its user
    and session arrays, jobs/minutes.py), every column into a blackhole (a column left out
    would let the planner drop its aggregate). All analyses cannot run faster than this."""
    from pyflink.table import Schema, TableDescriptor
    from pyflink.table.expressions import col

    from genai_apm.jobs import minutes
    from genai_apm.jobs.runner import execute

    name = "bench shared minutes"
    t_env, statements, _ = _bench_job(settings, name, checked=True, bounded=bounded)
    minutes.register(t_env, settings)
    # the rowtime column is the only one a blackhole cannot take as it is
    rows = t_env.from_path("minute_stats").drop_columns(col("minute_time"))
    schema = Schema.new_builder().from_resolved_schema(rows.get_resolved_schema()).build()
    t_env.create_temporary_table(
        "sink", TableDescriptor.for_connector("blackhole").schema(schema).build()
    )
    statements.add_insert("sink", rows)
    return execute(t_env, statements, name, wait=True)


_LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


def _flink_log(log_dir: str) -> Path:
    logs = sorted(Path(log_dir).glob("flink-*.log"))
    if not logs:
        raise BenchError(f"no Flink log in {log_dir}")
    return logs[0]


def flink_phases(log: Path) -> dict:
    """Processing time of the one bounded job in ``log``: from its first split fetcher's start
    (every task RUNNING, the splits assigned) to its last "Finished reading split(s)". The
    drain after it (the last windows, the sinks' flush, the final checkpoint) is reported
    apart; times are the log's, which the JVM writes in this machine's zone."""
    marks: dict[str, float] = {}
    for line in log.read_text(errors="replace").splitlines():
        m = _LOG_TIME.match(line)
        if not m:
            continue
        if "Starting split fetcher" in line:
            key = "fetch_start"
            if key in marks:
                continue  # a reader starts another fetcher when it learns there is no more
        elif "Finished reading split(s)" in line:
            key = "read_end"
        elif "switched from state RUNNING to FINISHED" in line:
            key = "finished"
        elif "Submitting job" in line:
            key = "submitted"
        else:
            continue
        t = dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
        marks[key] = t if key != "read_end" else max(t, marks.get(key, t))
    if "fetch_start" not in marks or "read_end" not in marks:
        raise BenchError(f"{log}: no split fetcher start or end of reading in the Flink log")
    out = {
        "phase_start": marks["fetch_start"],
        "phase_end": marks["read_end"],
        "processing_s": marks["read_end"] - marks["fetch_start"],
    }
    if "submitted" in marks:
        out["startup_s"] = round(marks["fetch_start"] - marks["submitted"], 2)
    if "finished" in marks:
        out["drain_s"] = round(marks["finished"] - marks["read_end"], 2)
    return out


def alternative_child(args: argparse.Namespace) -> int:
    from genai_apm.settings.config import KafkaSettings

    job = json.loads(args.overrides)
    if args.command == "_polars":
        result = alternatives.polars_microbatch(
            KafkaSettings(bootstrap_servers=job["bootstrap"]), job["topics"]["big"], job["events"]
        )
        result["jvm_peak_rss_mb"] = None
    elif args.command == "_spark_paced":
        alternatives.spark_paced(
            job["bootstrap"], job["topic"], job["out"], Path(job["tmp"]), Path(job["stop"])
        )
        result = {}
    else:
        result = alternatives.spark_streaming(
            job["bootstrap"], job["topics"], job["events"], Path(job["tmp"])
        )
        peak = jvm_hwm_mb()
        for row in result.values():
            row["jvm_peak_rss_mb"] = peak  # one session ran both forms
    result["python_peak_rss_mb"] = vm_hwm_mb()
    _print_result(result)
    return 0


def _print_result(result: dict) -> None:
    print(RESULT_TAG + json.dumps(result), flush=True)


def start_child(
    command: str, options: list[str], log: Path, env: dict | None = None
) -> subprocess.Popen:
    argv = [sys.executable, __file__, command, *options]
    with open(log, "w") as out:
        # its own process group: a stuck run is killed with the JVM it started
        return subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=out,
            text=True,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )


def finish_child(proc: subprocess.Popen, log: Path, label: str, timeout_s: float) -> dict:
    try:
        stdout, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise BenchError(f"{label}: no result after {timeout_s:.0f}s; see {log}") from None
    out_lines = [ln for ln in stdout.splitlines() if ln.startswith(RESULT_TAG)]
    if proc.returncode != 0 or not out_lines:
        tail = log.read_text().strip().splitlines()[-1:] or ["(empty log)"]
        raise BenchError(f"{label}: exit {proc.returncode}: {tail[0][:200]}; see {log}")
    return json.loads(out_lines[-1][len(RESULT_TAG) :])


# -- CPU time and the machine's other load, from /proc ---------------------------------------

TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def proc_table() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, CPU seconds: utime + stime) of every live process."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        # after the command: state ppid ... utime (14th field overall) stime (15th)
        table[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS_PER_S)
    return table


def tree_cpu_s(table: dict[int, tuple[int, float]], root: int) -> float:
    """CPU seconds of ``root`` and its live descendants."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        if pid in table:
            total += table[pid][1]
        todo.extend(children.get(pid, []))
    return total


def machine_busy_s() -> float:
    """CPU seconds every core spent not idle since boot (/proc/stat: all but idle, iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / TICKS_PER_S


class RunMonitor(threading.Thread):
    """Samples, every SAMPLE_PERIOD_S, the CPU time of one run's process tree, of the whole
    bench (this process and all it started: the broker, moto, every run) and of the machine,
    so any span of the run (its processing phase) gets its CPU time and everyone else's."""

    def __init__(self, root: int):
        super().__init__(daemon=True)
        self.root = root
        self.samples: list[tuple[float, float, float, float]] = []
        self.stop = threading.Event()
        self.load_start = os.getloadavg()[0]
        self.load_end: float | None = None

    def sample(self) -> None:
        table = proc_table()
        self.samples.append(
            (
                time.time(),
                tree_cpu_s(table, self.root),
                tree_cpu_s(table, os.getpid()),
                machine_busy_s(),
            )
        )

    def run(self) -> None:
        while True:
            self.sample()
            if self.stop.wait(SAMPLE_PERIOD_S):
                break
        self.load_end = os.getloadavg()[0]

    def finish(self) -> None:
        self.stop.set()
        self.join(5)

    def between(self, start: float, end: float) -> dict:
        """CPU seconds of the run, of the rest of the machine and the cores' busy share
        outside the bench, from ``start`` to ``end`` (epoch seconds), interpolated."""
        if len(self.samples) < 2 or end <= start:
            return {}
        run_cpu, bench_cpu, busy = (
            interpolate(self.samples, end, i) - interpolate(self.samples, start, i)
            for i in (1, 2, 3)
        )
        cores = os.cpu_count() or 1
        return {
            "cpu_s": round(run_cpu, 3),
            "other_cpu_s": round(max(busy - bench_cpu, 0.0), 3),
            "other_cores_busy": round(max(busy - bench_cpu, 0.0) / (end - start), 2),
            "cores": cores,
            "load_average_start": round(self.load_start, 2),
            "load_average_end": None if self.load_end is None else round(self.load_end, 2),
        }


def interpolate(samples: list[tuple], t: float, column: int) -> float:
    """``samples``' column ``column`` at time ``t`` (column 0), linear between the two samples
    around it; the first or last value outside them. A process tree's CPU time drops when a
    child exits, so each value is at least the one before (CPU time never goes back)."""
    previous = None
    for sample in samples:
        if sample[0] >= t:
            if previous is None:
                return sample[column]
            t0, v0, t1, v1 = previous[0], previous[column], sample[0], sample[column]
            return v0 + (max(v1, v0) - v0) * (t - t0) / (t1 - t0) if t1 > t0 else v1
        previous = sample
    return samples[-1][column]


# -- the stack and its topics ----------------------------------------------------------------


@dataclasses.dataclass
class Bench:
    args: argparse.Namespace
    tmp: Path
    stack: object
    kafka: dict  # KafkaSettings overrides for every run

    @property
    def log_dir(self) -> Path:
        return self.tmp / "logs"

    def kafka_settings(self):
        from genai_apm.settings.config import KafkaSettings

        return dataclasses.replace(KafkaSettings(), **self.kafka)

    def overrides(
        self, label: str, source_topic: str, parallelism: int, delivery: str | None = None
    ) -> dict:
        """Settings of one Flink run: its own consumer group, output topics and tables."""
        from genai_apm.kafka import io as kafka_io
        from genai_apm.settings.config import TopicSettings

        outputs = [f.name for f in dataclasses.fields(TopicSettings) if f.name != "invocations"]
        topics = {name: f"bench.{label}.{name}" for name in outputs}
        kafka_io.ensure_topics(self.kafka_settings(), topics.values(), partitions=2)
        flink: dict = {"parallelism": parallelism}
        if delivery:
            flink["delivery_guarantee"] = delivery
        return {
            "stack": {"state_dir": str(self.tmp / "state")},
            "kafka": self.kafka | {"consumer_group": f"bench-{label}"},
            "aws": {"endpoint_url": self.stack.moto.endpoint_url},
            "flink": flink,
            "topics": topics | {"invocations": source_topic},
            "output": {"tables_path": str(self.tmp / "tables" / label)},
        }

    def produce(self, topic: str, spec, count: int, attributes: int = 0) -> dict:
        """``count`` events of ``spec`` to ``topic``: distinct keys and mean size as sent."""
        from genai_apm import traffic as generator
        from genai_apm.kafka import io as kafka_io

        keys: set = set()
        size = 0

        def events():
            nonlocal size
            rng = random.Random(11)
            for event in generator.invocations(spec, count):
                keys.add((event["model_id"], event["app_id"], event["user_id"]))
                if attributes:
                    # not in the contract: parsed past and ignored, so only size changes
                    event["attributes"] = {
                        f"attr.{i}": f"{rng.getrandbits(128):032x}" for i in range(attributes)
                    }
                size += len(json.dumps(event, separators=(",", ":")))
                yield event

        kafka_io.ensure_topics(self.kafka_settings(), [topic], partitions=2)
        sent = kafka_io.produce_json(self.kafka_settings(), topic, events(), key_field="model_id")
        if sent != count:
            raise BenchError(f"produced {sent} of {count} events to {topic}")
        return {"events": count, "distinct_keys": len(keys), "mean_event_bytes": size / count}

    def count_records(self, topic: str) -> int:
        from genai_apm.kafka import io as kafka_io

        return sum(kafka_io.end_offsets(self.kafka_settings(), topic).values())

    # -- one measured run ------------------------------------------------------------------

    def measured(self, command: str, options: list[str], label: str, env=None) -> tuple:
        """Run one child under a RunMonitor: (its result, the monitor)."""
        log = self.log_dir / f"{label}.log"
        proc = start_child(command, options, log, env)
        monitor = RunMonitor(proc.pid)
        monitor.start()
        try:
            return finish_child(proc, log, label, self.args.run_timeout), monitor
        finally:
            monitor.finish()
            if proc.poll() is None:  # the bench itself is stopping: take the run with it
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def flink_run(
        self, row: str, label: str, source: str, events: int, flink: dict | None = None
    ) -> dict:
        """One bounded Flink run of ``row`` over ``source``: rate from its processing phase.
        ``flink``: FlinkSettings overrides of this run."""
        job, parallelism = FLINK_ROWS[row]
        delivery = TABLE_DELIVERY if job.startswith("table") else None
        overrides = self.overrides(label, source, parallelism, delivery)
        overrides["flink"] |= flink or {}
        log_dir = self.tmp / "flink-logs" / label
        log_dir.mkdir(parents=True)
        options = ["--job", job, "--overrides", json.dumps(overrides)]
        result, monitor = self.measured("_flink", options, label, {"FLINK_LOG_DIR": str(log_dir)})
        out = rate_row(result, monitor, events) | {"parallelism": parallelism}
        topics = overrides["topics"]
        if job.startswith("table"):
            out["delivery_guarantee"] = delivery
            out["output_topic"] = topics["latency"]
        elif job not in ("source", "json-source", "shared-minutes"):
            out["delivery_guarantee"] = "exactly-once (the job's configured sinks)"
            out["deadletters"] = self.count_records(topics["deadletter"])
            out["latency_rows"] = self.count_records(topics["latency"])
        if job in ("table-checked", "shared-minutes"):
            out["deadletters"] = self.count_records(topics["deadletter"])
        return out


def rate_row(result: dict, monitor: RunMonitor, events: int) -> dict:
    """A run's rate, CPU per event and the other load, over its processing phase."""
    row = {k: v for k, v in result.items() if k not in ("rows",)}
    seconds = result.get("processing_s")
    row["events"] = events
    row["events_per_s"] = events / seconds if seconds else None
    load = monitor.between(result.get("phase_start", 0), result.get("phase_end", 0))
    row |= load
    if load.get("cpu_s") is not None:
        row["cpu_us_per_event"] = round(load["cpu_s"] / events * 1e6, 2)
    return row


def _ratio(value: float | None, reference: float | None) -> float | None:
    return round(value / reference, 3) if value and reference else None


def summarise(runs: list[dict]) -> dict:
    """Median and min-max of the runs that succeeded; errors kept."""
    rates = [r["events_per_s"] for r in runs if r.get("events_per_s")]
    cpu = [r["cpu_us_per_event"] for r in runs if r.get("cpu_us_per_event") is not None]
    other = [r["other_cores_busy"] for r in runs if r.get("other_cores_busy") is not None]
    out: dict = {"repeats": len(runs), "succeeded": len(rates)}
    if rates:
        median = statistics.median(rates)
        out |= {
            "events_per_s": median,
            "events_per_s_min": min(rates),
            "events_per_s_max": max(rates),
            "spread": round((max(rates) - min(rates)) / median, 3),
        }
    if cpu:
        out["cpu_us_per_event"] = statistics.median(cpu)
    if other:
        out["other_cores_busy_median"] = statistics.median(other)
    errors = [r["error"] for r in runs if r.get("error")]
    if errors:
        out["errors"] = errors
        if not rates:
            out["error"] = errors[0]
    return out


# -- the sections ----------------------------------------------------------------------------


def run_ceilings(b: Bench, topics: dict, events: int) -> dict:
    out = {}
    print("bench: ConsumerPerformance", flush=True)
    out["kafka_consumer_perf"] = ceilings.consumer_performance(
        b.stack.kafka.bootstrap, topics["big"], events
    )
    print("bench: kafka-python consumer", flush=True)
    out["kafka_python"] = ceilings.kafka_python_read(
        b.kafka_settings(), topics["big"], min(events, KAFKA_PYTHON_EVENTS)
    )
    return out


def _units(rows: list[str]) -> list[str]:
    """The runs of one round: each Flink row, polars, and one Spark session for its forms."""
    units = []
    for row in rows:
        unit = "spark" if row.startswith("spark_") else row
        if unit not in units:
            units.append(unit)
    return units


def run_throughput(b: Bench, topics: dict, events: int) -> dict:
    """Every compared row ``--repeats`` times, interleaved: round r runs every row, odd
    rounds in reverse order, so drift in the machine's load spreads over all rows."""
    rows = [r for r in b.args.rows]
    runs: dict[str, list[dict]] = {row: [] for row in rows}
    tables: dict[str, list[list]] = {}  # "row#round" -> its result rows
    units = _units(rows)
    for rep in range(b.args.repeats):
        for unit in units if rep % 2 == 0 else list(reversed(units)):
            print(f"bench: round {rep + 1}/{b.args.repeats}: {unit}", flush=True)
            for row, result in run_unit(b, unit, rep, topics, events, tables).items():
                if row in runs:
                    runs[row].append(result | {"round": rep + 1})
    out = {}
    for row in rows:
        out[row] = {"what": ROWS[row], **summarise(runs[row]), "runs": runs[row]}
    out["agreement"] = agreement(tables, events)
    return out


def run_unit(b: Bench, unit: str, rep: int, topics: dict, events: int, tables: dict) -> dict:
    label = f"{unit.replace('_', '-')}-r{rep + 1}"
    try:
        if unit in FLINK_ROWS:
            row = b.flink_run(unit, label, topics["big"], events)
            if unit in TABLE_ROWS:
                tables[f"{unit}#{rep + 1}"] = alternatives.read_table(
                    b.kafka_settings(), row["output_topic"]
                )
            return {unit: row}
        if unit == "polars":
            job = {"bootstrap": b.stack.kafka.bootstrap, "topics": topics, "events": events}
            result, monitor = b.measured("_polars", ["--overrides", json.dumps(job)], label)
            tables[f"polars#{rep + 1}"] = result.pop("rows")
            return {"polars": rate_row(result, monitor, events)}
        # spark: one session, a warm-up query, then each form over the big topic
        from genai_apm.kafka import io as kafka_io

        outs = {form: f"bench.{label}.{form}" for form in alternatives.SPARK_FORMS}
        outs["warmup_out"] = f"bench.{label}.warmup"
        kafka_io.ensure_topics(b.kafka_settings(), outs.values(), partitions=2)
        job = {
            "bootstrap": b.stack.kafka.bootstrap,
            "topics": topics | outs,
            "events": events,
            "tmp": str(b.tmp / "spark" / label),
        }
        result, monitor = b.measured("_spark", ["--overrides", json.dumps(job)], label)
        python_peak = result.pop("python_peak_rss_mb", None)
        out = {}
        for form in alternatives.SPARK_FORMS:
            out[form] = rate_row(result[form], monitor, events) | {
                "python_peak_rss_mb": python_peak,
                "delivery_guarantee": TABLE_DELIVERY,
                "output_topic": outs[form],
            }
            tables[f"{form}#{rep + 1}"] = alternatives.read_table(b.kafka_settings(), outs[form])
        return out
    except (BenchError, alternatives.AlternativeError) as e:
        # one failed run must not hide what the others measured
        print(f"bench: {e}", file=sys.stderr, flush=True)
        names = list(alternatives.SPARK_FORMS) if unit == "spark" else [unit]
        return {name: {"events_per_s": None, "error": str(e)} for name in names}


def agreement(tables: dict[str, list[list]], events: int) -> dict:
    """Every table run against polars' first run, group by group. A watermark in append mode
    (Spark's streaming form) holds back the windows no later event closes: they show as
    groups only polars has, and are reported as held back, not as differences."""
    ref_key = next((k for k in sorted(tables) if k.startswith("polars#")), None)
    if ref_key is None:
        return {"error": "no polars run to compare with"}
    reference = tables[ref_key]
    out = {}
    last_minute = max((r[0] for r in reference), default=None)
    for key in sorted(tables):
        if key == ref_key:
            continue
        comparison = alternatives.compare(reference, tables[key])
        held = {(r[0], r[1]) for r in reference} - {(r[0], r[1]) for r in tables[key]}
        comparison["held_back_last_minute"] = sum(1 for m, _ in held if m == last_minute)
        comparison["rows"] = len(tables[key])
        out[key] = comparison
    out["reference"] = f"polars, first run ({len(reference)} groups, {events:,} events)"
    return out


def run_scaling(b: Bench) -> dict:
    from genai_apm.traffic import TrafficSpec

    events = b.args.scaling_events
    out = {}
    for point in b.args.scaling_points:
        label, level, attributes = SCALING_POINTS[point]
        models, apps, users = KEY_LEVELS[level]
        spec = TrafficSpec(models=models, apps=apps, users=users)
        slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")[:24]
        topic = f"bench.scale.{slug}"
        print(f"bench: scaling {label}", flush=True)
        produced = b.produce(topic, spec, events, attributes)
        try:
            row = b.flink_run("all_p1", f"scale-{slug}", topic, events)
        except BenchError as e:
            print(f"bench: {e}", file=sys.stderr, flush=True)
            row = {"events_per_s": None, "error": str(e)}
        out[label] = row | produced | {"models_apps_users": [models, apps, users]}
    return out


def run_table_freshness(b: Bench) -> dict:
    """The Flink checked table and Spark's streaming form (default trigger: the next
    micro-batch as soon as the last ends), unbounded, side by side on the same paced traffic
    stamped with the wall clock, each writing its rows at-least-once to its own topic:
    readable_at - window_end of every row of the whole 1-minute windows in the run."""
    from genai_apm.kafka.io import ensure_topics, produce_json
    from genai_apm.traffic import TrafficSpec, invocations

    rate, seconds = b.args.table_fresh_rate, b.args.table_fresh_seconds
    source = "bench.tablefresh.invocations"
    spark_out = "bench.tablefresh.spark"
    ensure_topics(b.kafka_settings(), [source, spark_out], partitions=2)
    print(
        f"bench: table freshness: Flink and Spark streaming, {rate:,}/s for {seconds}s", flush=True
    )
    overrides = b.overrides("tablefresh", source, 1, TABLE_DELIVERY)
    log_dir = b.tmp / "flink-logs" / "tablefresh"
    log_dir.mkdir(parents=True)
    flink_log = b.log_dir / "tablefresh-flink.log"
    options = ["--job", "table-checked", "--streaming", "--overrides", json.dumps(overrides)]
    flink = start_child("_flink", options, flink_log, {"FLINK_LOG_DIR": str(log_dir)})
    stop = b.tmp / "tablefresh.stop"
    job = {
        "bootstrap": b.stack.kafka.bootstrap,
        "topic": source,
        "out": spark_out,
        "tmp": str(b.tmp / "spark" / "tablefresh"),
        "stop": str(stop),
    }
    spark_log = b.log_dir / "tablefresh-spark.log"
    spark = start_child("_spark_paced", ["--overrides", json.dumps(job)], spark_log)
    watchers = {
        "flink_table_checked": freshness.RowWatcher(
            b.kafka_settings(), overrides["topics"]["latency"]
        ),
        "spark_stream": freshness.RowWatcher(b.kafka_settings(), spark_out),
    }
    try:
        for proc, log in ((flink, flink_log), (spark, spark_log)):
            if not _wait_submitted(proc, 240):
                raise BenchError(f"table freshness: a query did not start; see {log}")
        for watcher in watchers.values():
            watcher.start()
        produce_start = time.time()
        spec = TrafficSpec(seed=17)
        events = freshness.until(
            freshness.stamped_now(invocations(spec, int(rate * seconds)), rate),
            produce_start + seconds,
        )
        sent = produce_json(b.kafka_settings(), source, events, key_field="model_id")
        produce_end = time.time()
        time.sleep(alternatives.WATERMARK_DELAY_MS / 1000 + 10)  # the last whole window
    finally:
        stop.touch()
        for watcher in watchers.values():
            watcher.stop.set()
        with contextlib.suppress(subprocess.TimeoutExpired):
            spark.wait(60)  # it stops its query and session when it sees the stop file
        for proc in (flink, spark):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    out = {
        "rate_per_s": rate,
        "achieved_rate_per_s": round(sent / (produce_end - produce_start)),
        "seconds": seconds,
        "delivery_guarantee": TABLE_DELIVERY,
        "watermark_delay_s": alternatives.WATERMARK_DELAY_MS / 1000,
        "spark_trigger": "default (next micro-batch when the last ends)",
    }
    for name, watcher in watchers.items():
        watcher.join(5)
        if watcher.error:
            out[name] = {"error": f"reading the output: {watcher.error}"}
            continue
        measured = freshness.freshness(watcher.rows, produce_start, produce_end)
        out[name] = (
            measured
            if measured["windows"]
            else measured | {"error": f"no whole 1-minute window in {len(watcher.rows)} rows read"}
        )
    return out


SOAK_ROW = "all_p1"  # all analyses, one job, p1
SOAK_JOB = FLINK_ROWS[SOAK_ROW][0]
SOAK_SHARE = 0.8  # of the measured streaming capacity: the soak load
SOAK_KEYS = "100k"  # the soak's traffic: 10 models x 10 apps x 1000 users
SOAK_TRAFFIC = "{} models x {} apps x {} users".format(*KEY_LEVELS[SOAK_KEYS])
CAPACITY_RUNS = 2
CAPACITY_SECONDS = 30  # of processing per capacity run, at the all_p1 rate as a first guess


def soak_spec():
    from genai_apm.traffic import TrafficSpec

    models, apps, users = KEY_LEVELS[SOAK_KEYS]
    return TrafficSpec(models=models, apps=apps, users=users, seed=13)


def soak_capacity(b: Bench, results: dict) -> dict:
    """The streaming capacity the soak's load is a share of: the soak's job over the soak's
    traffic (its keys, not the throughput topic's: 1000 users make ~10x the user-keyed rows),
    with the soak's streaming checkpoint interval, read from a backlog as fast as it goes.

    The source is bounded so the run has a processing phase to time (its own Flink log, as
    every throughput row); the runtime mode, operators, exactly-once sinks and checkpoints
    are those of the unbounded soak. Median of CAPACITY_RUNS runs."""
    from genai_apm.settings.config import FlinkSettings

    guess = results.get("throughput", {}).get("all_p1", {}).get("events_per_s") or 5_000
    events = int(guess * CAPACITY_SECONDS)
    topic = "bench.soak.capacity"
    b.produce(topic, soak_spec(), events)
    # the soak's checkpoint interval, not the longer one of bounded runs
    interval = FlinkSettings().checkpoint_interval_s
    runs = []
    for rep in range(CAPACITY_RUNS):
        print(f"bench: soak capacity {rep + 1}/{CAPACITY_RUNS}: {events:,} events", flush=True)
        runs.append(
            b.flink_run(
                SOAK_ROW,
                f"soak-capacity-r{rep + 1}",
                topic,
                events,
                # and the unbounded job's collector (flink.local_gc is for bounded runs)
                flink={"bounded_checkpoint_interval_s": interval, "local_gc": ""},
            )
        )
    return {
        "job": SOAK_JOB,
        "traffic": SOAK_TRAFFIC,
        "checkpoint_interval_s": interval,
        **summarise(runs),
        "runs": runs,
    }


def soak_rate(b: Bench, results: dict) -> tuple[int, str, dict | None]:
    """The soak's target rate: 80% of the streaming capacity measured on the soak's own
    traffic in this run (soak_capacity), else --fresh-rate."""
    if b.args.fresh_rate is not None:
        return b.args.fresh_rate, "--fresh-rate", None
    capacity = soak_capacity(b, results)
    rate = capacity.get("events_per_s")
    if not rate:
        return 1_000, "1,000/s (the capacity runs failed)", capacity
    return (
        int(rate * SOAK_SHARE),
        f"{SOAK_SHARE:.0%} of the measured streaming capacity ({rate:,.0f}/s)",
        capacity,
    )


def run_freshness(b: Bench, results: dict) -> dict:
    """Freshness and soak in one streaming run: all analyses (the `all` job, p1) on paced
    traffic with 100k keys at 80% of its capacity on that traffic (soak_capacity), for
    --fresh-seconds (600: the issue's 10-minute soak). Lag is freshness over time: a job that
    falls behind reads each window later than the one before."""
    from genai_apm.kafka.io import ensure_topics, produce_json
    from genai_apm.settings.config import FlinkSettings
    from genai_apm.traffic import invocations

    spec = soak_spec()
    (rate, rate_from, capacity), seconds = soak_rate(b, results), b.args.fresh_seconds
    source = "bench.fresh.invocations"
    ensure_topics(b.kafka_settings(), [source], partitions=2)
    print(
        f"bench: freshness and soak: streaming {SOAK_JOB}, {rate:,}/s ({rate_from}) for {seconds}s",
        flush=True,
    )
    overrides = b.overrides("fresh", source, 1)
    log = b.log_dir / "fresh.log"
    options = ["--job", SOAK_JOB, "--streaming", "--overrides", json.dumps(overrides)]
    proc = start_child("_flink", options, log)
    topic = overrides["topics"]["latency"]
    watchers = {
        isolation: freshness.RowWatcher(b.kafka_settings(), topic, isolation)
        for isolation in ("read_committed", "read_uncommitted")
    }
    sampler = freshness.MemorySampler(lambda: java_below(proc.pid))
    flink = FlinkSettings()
    try:
        if not _wait_submitted(proc, 240):
            raise BenchError(f"freshness: the {SOAK_JOB} job did not start; see {log}")
        for watcher in watchers.values():
            watcher.start()
        sampler.start()
        produce_start = time.time()
        # a producer slower than the rate stops at the time, not at the count
        events = freshness.until(
            freshness.stamped_now(invocations(spec, int(rate * seconds)), rate),
            produce_start + seconds,
        )
        sent = produce_json(b.kafka_settings(), source, events, key_field="model_id")
        produce_end = time.time()
        # the last closed windows need the watermark delay, a periodic emit and the
        # checkpoint that commits them to show up
        time.sleep(flink.watermark_delay_s + flink.checkpoint_interval_s + 10)
    finally:
        for watcher in watchers.values():
            watcher.stop.set()
        sampler.stop.set()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    for watcher in watchers.values():
        watcher.join(5)
        if watcher.error:
            raise BenchError(f"freshness: reading the latency topic: {watcher.error}")
    sampler.join(5)
    committed, written = watchers["read_committed"].rows, watchers["read_uncommitted"].rows
    measured = freshness.freshness(committed, produce_start, produce_end)
    if not measured["windows"]:
        # 120 s of traffic always hold one whole minute: none closed means the job lagged
        raise BenchError(
            f"freshness: no 1-minute window closed in {produce_end - produce_start:.0f} s of "
            f"traffic ({len(committed)} committed rows read); see {log}"
        )
    return {
        "job": SOAK_JOB,
        "rate_per_s": rate,
        "rate_from": rate_from,
        "capacity": capacity,
        "achieved_rate_per_s": round(sent / (produce_end - produce_start)),
        "seconds": seconds,
        "produced_s": round(produce_end - produce_start, 1),
        "traffic": SOAK_TRAFFIC,
        "watermark_delay_s": flink.watermark_delay_s,
        "idle_timeout_s": flink.idle_timeout_s,
        "watermark_emit": flink.watermark_emit,
        "checkpoint_interval_s": flink.checkpoint_interval_s,
        "delivery_guarantee": flink.delivery_guarantee,
        "freshness": measured,
        "freshness_written": freshness.freshness(written, produce_start, produce_end),
        # the job's own lag: when it wrote each window, whatever the commits add
        "lag": freshness.lag_trend(written, produce_start, produce_end),
        "memory": freshness.memory_trend(sampler.samples),
    }


def _wait_submitted(proc: subprocess.Popen, timeout_s: float) -> bool:
    submitted = threading.Event()

    def wait():
        for line in proc.stdout:
            if line.startswith("submitted"):
                submitted.set()

    threading.Thread(target=wait, daemon=True).start()
    return submitted.wait(timeout_s) and proc.poll() is None


# -- the orchestration -----------------------------------------------------------------------


def machine() -> dict:
    meminfo = Path("/proc/meminfo").read_text()
    total_kb = int(re.search(r"MemTotal:\s+(\d+)", meminfo).group(1))
    from importlib.metadata import PackageNotFoundError, version

    def installed(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

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
        "apache_flink": installed("apache-flink"),
        "kafka_python": installed("kafka-python"),
        "polars": installed("polars"),
        "pyspark": installed("pyspark"),
        "kafka_broker_jar": broker,
        "flink_kafka_connector_jar": connector,
        "load_average_at_start": os.getloadavg()[0],
    }


def _cpu_model() -> str | None:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return None


def ratios(results: dict) -> dict:
    """Every row's median rate against the median JSON-source ceiling, polars and the faster
    Spark form, all measured in this run."""
    rows = results.get("throughput", {})
    spark = max(
        (rows.get(f, {}).get("events_per_s") or 0 for f in ("spark_complete", "spark_stream")),
        default=0,
    )
    refs = {
        "of_flink_json_source": rows.get("flink_json_source", {}).get("events_per_s"),
        "of_polars": rows.get("polars", {}).get("events_per_s"),
        "of_spark": spark or None,
    }
    return {
        label: {k: _ratio(row.get("events_per_s"), ref) for k, ref in refs.items()}
        for label, row in rows.items()
        if label in ROWS
    }


def targets(results: dict) -> dict:
    """The issue's targets, reported, never asserted."""
    r = results.get("ratios", {})
    fresh = results.get("freshness", {}).get("freshness", {})
    mem = results.get("freshness", {}).get("memory", {})
    lag = results.get("freshness", {}).get("lag", {}).get("slope_s_per_min")
    return {
        "all_analyses_of_flink_json_source": r.get("all_p1", {}).get("of_flink_json_source"),
        "all_analyses_ge_60pct_of_ceiling": _met(
            r.get("all_p1", {}).get("of_flink_json_source"), 0.6
        ),
        "checked_table_of_spark": r.get("flink_table_checked", {}).get("of_spark"),
        "checked_table_ge_spark": _met(r.get("flink_table_checked", {}).get("of_spark"), 1.0),
        "freshness_p99_s": fresh.get("p99_s"),
        "freshness_p99_le_15s": None if fresh.get("p99_s") is None else fresh["p99_s"] <= 15.0,
        "lag_slope_s_per_min": lag,
        "lag_slope_le_0_1": None if lag is None else lag <= 0.1,
        "memory_slope_mb_per_min": mem.get("slope_mb_per_min_second_half"),
        "memory_peak_mb": mem.get("peak_mb"),
        "memory_peak_le_2gb": None if mem.get("peak_mb") is None else mem["peak_mb"] <= 2048,
    }


def _met(value: float | None, at_least: float) -> bool | None:
    return None if value is None else value >= at_least


def bench(args: argparse.Namespace) -> dict:
    from genai_apm.settings import config
    from genai_apm.stack.local import LocalStack
    from genai_apm.stack.process import free_port
    from genai_apm.traffic import TrafficSpec

    events, baseline_events = args.events, args.baseline_events
    if not 0 < baseline_events < events:
        raise BenchError("--baseline-events must be between 0 and --events")
    started = time.perf_counter()
    load_at_start = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="genai-apm-bench-"))
    (tmp / "logs").mkdir()
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
    results: dict = {}
    try:
        kafka = {
            "bootstrap_servers": stack.kafka.bootstrap,
            "startup_mode": "earliest-offset",
            "partitions": 2,
        }
        b = Bench(args, tmp, stack, kafka)
        (tmp / "flink-logs").mkdir()
        topics = {"big": "bench.invocations", "small": "bench.invocations.baseline"}
        spec = TrafficSpec(rate_per_s=args.density)
        t0 = time.perf_counter()
        topic_info = b.produce(topics["big"], spec, events)
        b.produce(topics["small"], spec, baseline_events)
        produce_s = time.perf_counter() - t0
        print(f"bench: produced {events:,} + {baseline_events:,} events", flush=True)

        sections = {
            "ceilings": lambda: run_ceilings(b, topics, events),
            "throughput": lambda: run_throughput(b, topics, events),
            "scaling": lambda: run_scaling(b),
            "table_freshness": lambda: run_table_freshness(b),
            "freshness": lambda: run_freshness(b, results),
        }
        timings = {}
        for name in args.only:
            t = time.perf_counter()
            try:
                results[name] = sections[name]()
            except (BenchError, ceilings.CeilingError, alternatives.AlternativeError) as e:
                print(f"bench: {name}: {e}", file=sys.stderr, flush=True)
                results[name] = {"error": str(e)}
            timings[name] = round(time.perf_counter() - t, 1)
            # a bench stopped later (a timeout, ^C) keeps what it measured so far
            (tmp / "results.partial.json").write_text(json.dumps(results, indent=2) + "\n")
        results["ratios"] = ratios(results)
        results["targets"] = targets(results)
    finally:
        stack.down()
    bench_s = time.perf_counter() - started
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": "make bench"
        + ("" if events == 200_000 else f" EVENTS={events}")
        + (f" BENCH_ARGS='{' '.join(args.argv)}'" if args.argv else ""),
        "sections": list(args.only),
        "events": events,
        "baseline_events": baseline_events,
        "scaling_events": args.scaling_events,
        "repeats": args.repeats,
        "topic": {
            "partitions": 2,
            "traffic": "generator.TrafficSpec defaults (seed 7), keyed by model_id",
            # calls per second of event time: what each window and key holds, so how much of
            # the per-window work (firings, rollups, sink rows) each event carries
            "event_time_density_per_s": args.density,
            # produce_json compresses with lz4 only when the lz4 package is installed
            "compression": "lz4" if importlib.util.find_spec("lz4") else "none",
            "mean_value_bytes": round(topic_info["mean_event_bytes"]),
            "distinct_model_app_user": topic_info["distinct_keys"],
        },
        "rates": (
            "events / processing time from each job's own phases: Flink, its log's first split "
            "fetcher start to its last 'Finished reading split(s)'; Spark, the sum of its "
            "micro-batches' triggerExecution; polars, first poll to last minute aggregated. "
            "Medians of --repeats interleaved runs"
        ),
        "cpu": (
            "utime + stime of the run's process tree (Python driver + JVM) over the same "
            f"span, /proc sampled every {SAMPLE_PERIOD_S} s; other_cores_busy: the machine's "
            "busy CPU time outside the bench's process tree over that span / its length"
        ),
        "machine": machine() | {"load_average_at_start": load_at_start},
        "produce_s": round(produce_s, 1),
        "section_s": timings,
        "bench_s": round(bench_s, 1),
        "within_budget": bench_s <= BUDGET_S,
        "notes": NOTES,
        "work_dir": str(tmp),
        **results,
    }


NOTES = [
    "Agents are not in these runs: the traffic has no spans (agent_share 0).",
    "No binary encoding: genai-apm reads JSON only, so there is no JSON vs binary row.",
    "Same table, same sink: the two Flink table rows and both Spark forms write the same "
    "JSON rows to a Kafka topic at-least-once (Spark's Kafka sink has no other guarantee); "
    "polars keeps its table in memory; all analyses write their real outputs exactly-once.",
    "The Flink JSON source reads event_time as BIGINT (epoch ms, as on the wire).",
]


def _names(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


QUICK = {  # --quick: every row and section, small: a few minutes of checks, not figures
    "events": 20_000,
    "baseline_events": 2_000,
    "repeats": 2,  # still interleaved: the second round runs the rows in reverse
    "scaling_events": 10_000,
    "scaling_points": ["10"],
    "fresh_seconds": 120,
    "table_fresh_seconds": 120,
    "fresh_rate": 500,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    child = sub.add_parser("_flink", help=argparse.SUPPRESS)
    child.add_argument(
        "--job",
        choices=(
            "source",
            "json-source",
            "table",
            "table-checked",
            "shared-minutes",
            "all",
            "analytics",
            "anomalies",
            "latency",
        ),
        required=True,
    )
    child.add_argument("--overrides", required=True)
    child.add_argument("--streaming", action="store_true")
    for name in ("_polars", "_spark", "_spark_paced"):
        sub.add_parser(name, help=argparse.SUPPRESS).add_argument("--overrides", required=True)
    parser.add_argument("--events", type=int, default=200_000, help="events per throughput run")
    parser.add_argument(
        "--baseline-events", type=int, default=5_000, help="events of Spark's warm-up topic"
    )
    parser.add_argument(
        "--density",
        type=float,
        default=50.0,
        help="calls per second of event time in the throughput topic (default 50, the "
        "generator's daily mean: 200k events span 67 minutes; a live stream at the measured "
        "rate is far denser, and per-window work then weighs far less per event)",
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="interleaved runs of every throughput row"
    )
    parser.add_argument(
        "--rows",
        type=_names,
        default=DEFAULT_ROWS,
        help=f"throughput rows: {','.join(ROWS)} (default: {','.join(DEFAULT_ROWS)})",
    )
    parser.add_argument(
        "--scaling-events", type=int, default=60_000, help="events per scaling point"
    )
    parser.add_argument(
        "--scaling-points",
        type=_names,
        default=["10", "100k"],
        help=f"scaling points: {','.join(SCALING_POINTS)} (default: 10,100k)",
    )
    parser.add_argument(
        "--fresh-rate",
        type=int,
        default=None,
        help="events/s of the freshness and soak run (default: 80%% of all_p1, else 1000)",
    )
    parser.add_argument(
        "--fresh-seconds", type=int, default=600, help="freshness and soak run length"
    )
    parser.add_argument(
        "--table-fresh-rate", type=int, default=2_000, help="events/s of the table freshness run"
    )
    parser.add_argument(
        "--table-fresh-seconds", type=int, default=120, help="table freshness run length"
    )
    parser.add_argument(
        "--only",
        type=_names,
        default=list(SECTIONS),
        help=f"comma-separated sections to run: {','.join(SECTIONS)} (default: all)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="every row and section on little data (20k events, 2 rounds, 2-minute soaks): a check",
    )
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results")
    parser.add_argument(
        "--readme", type=Path, default=ROOT / "README.md", help="README to rewrite; '' skips"
    )
    parser.add_argument(
        "--run-timeout",
        type=float,
        default=FLINK_RUN_TIMEOUT_S,
        help="seconds one run may take before it counts as failed",
    )
    args = parser.parse_args(argv)
    # what to print as BENCH_ARGS: the options beyond the --events that `make bench` passes
    given = sys.argv[1:] if argv is None else list(argv)
    args.argv = [
        a for i, a in enumerate(given) if a != "--events" and given[i - 1 : i] != ["--events"]
    ]
    if args.command is None and args.quick:
        for key, value in QUICK.items():
            if f"--{key.replace('_', '-')}" not in " ".join(argv or sys.argv[1:]):
                setattr(args, key, value)
    if args.command is None:
        if min(args.fresh_seconds, args.table_fresh_seconds) < 120:
            parser.error(
                "--fresh-seconds and --table-fresh-seconds must be at least 120: "
                "a whole minute window must close"
            )
        if args.repeats < 1:
            parser.error("--repeats must be at least 1")
        for given, known in (
            (args.only, SECTIONS),
            (args.rows, list(ROWS)),
            (args.scaling_points, list(SCALING_POINTS)),
        ):
            if unknown := [s for s in given if s not in known]:
                parser.error(f"unknown: {', '.join(unknown)}; known: {', '.join(known)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "_flink":
        return flink_child(args)
    if args.command in ("_polars", "_spark", "_spark_paced"):
        return alternative_child(args)

    from genai_apm.errors import GenaiApmError

    # a terminated bench (a timeout) still stops its runs and its stack on the way out
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        result = bench(args)
    except (BenchError, GenaiApmError) as e:
        print(f"bench: error: {e}", file=sys.stderr)
        return 1
    work_dir = Path(result.pop("work_dir"))
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / result["date"][:10]
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    drew = report.chart(result, stem.with_suffix(".png"))
    print(f"bench: wrote {stem}.json" + (f" and {stem}.png" if drew else ""))
    text = report.section(result)
    print(text)
    if str(args.readme) and args.readme.is_file():
        if report.rewrite_readme(args.readme, text):
            print(f"bench: rewrote the bench section of {args.readme}")
        else:
            print(f"bench: no {report.BEGIN} marker in {args.readme}; left as it is")
    if failed := failures(result):
        print(
            f"bench: error: {', '.join(failed)} failed; see the JSON and the logs in {work_dir}",
            file=sys.stderr,
        )
        return 1
    shutil.rmtree(work_dir, ignore_errors=True)  # topics, checkpoints, tables: gigabytes
    return 0


def failures(result: dict) -> list[str]:
    """Sections and rows that failed, and runs of a row that failed while others did not."""
    failed = [s for s in SECTIONS if (result.get(s) or {}).get("error")]
    for section in SECTIONS:
        for k, v in (result.get(section) or {}).items():
            if isinstance(v, dict) and (v.get("error") or v.get("errors")):
                failed.append(f"{section}.{k}")
    agreement = (result.get("throughput") or {}).get("agreement") or {}
    for key, v in agreement.items():
        if isinstance(v, dict) and (
            v.get("count_mismatches")
            or v.get("max_percentile_diff_ms", 0) > 1e-6
            or v.get("only_in_second")
            or v.get("only_in_first", 0) > v.get("held_back_last_minute", 0)
        ):
            failed.append(f"agreement.{key}")
    return failed


if __name__ == "__main__":
    sys.exit(main())
