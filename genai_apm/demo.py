"""`make run`: the embedded default, end to end, in a couple of minutes.

Starts the local stack (unless it is already up), generates a few minutes of event time
(with a throttling storm), runs the analytics job to the end of what was produced, prints
latency, outcomes and spend, and stops whatever this run started.

``make run SOURCE=kinesis`` takes the AWS path in: the events go into a Kinesis stream on the
stack's moto server (as `genai-apm generate --to kinesis` sends them), the Kinesis -> Kafka
bridge (genai_apm.kafka.bridge) copies them into the invocations topic exactly once, and the same
analytics job reads them from there.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from genai_apm import traffic
from genai_apm.errors import GenaiApmError
from genai_apm.kafka import io as kafka_io
from genai_apm.serve import query
from genai_apm.settings.config import Settings
from genai_apm.stack.local import LocalStack

MALFORMED = (b"{not json", b'{"event_time": "yesterday", "model_id": "m"}', b"\xff\xfe\x00")
SOURCES = ("kafka", "kinesis")
# a bridge JVM starts in ~10 s on a loaded 2-core machine, then copies the backlog in seconds
BRIDGE_TIMEOUT_S = 180


class Progress:
    def __init__(self, steps: int, out: Callable[[str], None] = print):
        self.steps, self.done, self.out = steps, 0, out

    @contextmanager
    def step(self, text: str, ticker: bool = False):
        self.done += 1
        t0 = time.monotonic()
        self.out(f"[{self.done}/{self.steps}] {text} ...")
        stop = threading.Event()
        if ticker:  # long steps say they are alive every few seconds

            def tick():
                while not stop.wait(5):
                    self.out(f"      ... {time.monotonic() - t0:.0f}s")

            threading.Thread(target=tick, daemon=True).start()
        try:
            yield
        finally:
            stop.set()
        self.out(f"      done in {time.monotonic() - t0:.1f}s")


def latency_table(rows: list[dict], percentiles: tuple[float, ...]) -> str:
    """Per-model rows of the tumbling windows (app_id = '*'), as an aligned text table."""
    from genai_apm.schemas.outputs import ALL, percentile_name

    names = [f"latency_{percentile_name(p)}_ms" for p in percentiles]
    header = [
        "window (UTC)",
        "model_id",
        "requests",
        "errors",
        *[n.removeprefix("latency_").removesuffix("_ms") + " ms" for n in names],
        "ttft p50 ms",
        "tokens/s p50",
    ]
    tumbling = min((r["window"] for r in rows), key=lambda w: int(w.rstrip("m")), default="")
    body = [
        [
            r["window_start"][:16].replace("T", " "),
            r["model_id"],
            str(r["requests"]),
            str(r["errors"]),
            *[_num(r[n]) for n in names],
            _num(r["ttft_p50_ms"]),
            _num(r["output_tokens_per_s_p50"]),
        ]
        for r in sorted(
            rows, key=lambda r: (r["window_start"], r["model_id"] == ALL, r["model_id"])
        )
        if r["window"] == tumbling and r["app_id"] == ALL
    ]
    # window and model left-aligned, the numbers right-aligned
    return "\n".join(query.aligned(header, body, [i >= 2 for i in range(len(header))]))


def _num(value) -> str:
    return "-" if value is None else f"{value:,.0f}"


def format_errors(rows: list[dict]) -> str:
    """Per model over the whole run (from the tumbling rows): outcomes and availability."""
    from collections import defaultdict

    from genai_apm.schemas.outputs import ALL

    tumbling = min((r["window"] for r in rows), key=lambda w: int(w.rstrip("mh")), default="")
    totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    columns = (
        "requests",
        "client_errors",
        "server_errors",
        "throttles",
        "timeouts",
        "content_filtered",
    )
    for r in rows:
        if r["window"] == tumbling and r["app_id"] == ALL:
            for c in columns:
                totals[r["model_id"]][c] += r[c] or 0
    lines = [
        f"{'model_id':44} {'calls':>7} {'client':>7} {'server':>7} {'throttle':>8} "
        f"{'timeout':>7} {'filtered':>8}"
    ]
    for model in sorted(totals, key=lambda m: (m == ALL, m)):
        t = totals[model]
        lines.append(
            f"{model:44} {t['requests']:>7,} {t['client_errors']:>7,} "
            f"{t['server_errors']:>7,} {t['throttles']:>8,} {t['timeouts']:>7,} "
            f"{t['content_filtered']:>8,}"
        )
    return "\n".join(lines)


def format_spend(rows: list[dict], dimension: str = "app", top: int = 5) -> str:
    spend: dict[str, float] = {}
    for r in rows:
        if r["dimension"] == dimension and r["cost_usd"] is not None:
            spend[r["key"]] = spend.get(r["key"], 0.0) + r["cost_usd"]
    ranked = sorted(spend.items(), key=lambda kv: -kv[1])[:top]
    return "\n".join(f"  {key:30} ${value:,.2f}" for key, value in ranked)


def write_report(
    settings: Settings, alerts: list[dict], written_after: float, out: Callable[[str], None]
) -> Path | None:
    """The HTML dashboard of this run's tables (and the alerts it read from Kafka)."""
    from genai_apm.errors import GenaiApmError
    from genai_apm.serve import report

    target = Path(settings.stack.state_dir) / "report.html"
    try:
        written = report.build(settings, target, alerts=alerts, written_after=written_after)
    except GenaiApmError as e:  # the demo's results are printed already; say why, go on
        out(f"No HTML report: {e}")
        return None
    out(f"HTML dashboard: {written.path} (open it in a browser; `genai-apm report` rewrites it)")
    return written.path


def demo_stream_settings(settings: Settings, stack: LocalStack) -> Settings:
    """The stack's moto Kinesis, a stream and bridge checkpoints of this run's own: a
    bridge must not resume from an earlier run's checkpoint of another stream."""
    run = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    folder = Path(settings.stack.state_dir).resolve() / "kinesis-bridge" / f"demo-{run}"
    return settings.replace(
        # moto takes any key; boto3 and the connector need one to sign with
        aws={
            "endpoint_url": stack.moto.endpoint_url,
            "access_key_id": "testing",
            "secret_access_key": "testing",
        },
        bridge={
            "stream": f"{settings.bridge.stream}-demo-{run}",
            "checkpoint_dir": str(folder / "checkpoints"),
            "checkpoint_interval_s": 2,
            "start_position": "TRIM_HORIZON",
        },
    )


def create_stream(settings: Settings) -> None:
    """One shard. The bridge keys each record by its shard, and the analytics' watermark is
    per Kafka partition: several shards sharing a partition arrive there shard after shard
    when a backlog is copied (each GetRecords returns up to 10,000 records), so a lagging
    shard's calls would fall behind the watermark and count as late (docs/aws.md)."""
    from genai_apm.aws import client

    kinesis = client(settings.aws, "kinesis")
    kinesis.create_stream(StreamName=settings.bridge.stream, ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(
        StreamName=settings.bridge.stream, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100}
    )


def put_to_kinesis(settings: Settings, payloads) -> int:
    """Through `genai-apm generate --to kinesis`'s output (PutRecords, 500 a call)."""
    from genai_apm.kafka.publish import KinesisOutput

    output = KinesisOutput(settings, settings.bridge.stream)
    for payload in payloads:
        output.send("invocations", payload)
    output.close()
    return output.sent


def bridge_into_kafka(settings: Settings, start: dict[int, int], expected: int) -> None:
    """Run the bridge until the invocations topic holds ``expected`` committed records after
    ``start``, then stop it (everything it copied is committed by then)."""
    from genai_apm.kafka import bridge

    proc = bridge.start(settings)
    log = bridge.state_dir(settings) / "bridge.log"
    try:
        deadline = time.monotonic() + BRIDGE_TIMEOUT_S
        found = 0
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise GenaiApmError(f"the Kinesis bridge exited with {proc.returncode}; see {log}")
            found = committed_since(settings, start)
            if found >= expected:
                return
            time.sleep(1)
        raise GenaiApmError(
            f"the Kinesis bridge copied {found} of {expected} records in {BRIDGE_TIMEOUT_S} s; "
            f"see {log}"
        )
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # its own session: the JVM and nothing else
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)


def committed_since(settings: Settings, start: dict[int, int]) -> int:
    """Records a read_committed consumer sees in the invocations topic after ``start``."""
    from kafka import KafkaConsumer, TopicPartition

    topic = settings.topics.invocations
    with kafka_io.kafka_errors(settings.kafka):
        consumer = KafkaConsumer(
            **kafka_io.client_args(settings.kafka),
            isolation_level="read_committed",
            enable_auto_commit=False,
        )
        try:
            tps = [TopicPartition(topic, p) for p in sorted(start)]
            # the last stable offset counts transaction markers too: count records instead
            consumer.assign(tps)
            ends = consumer.end_offsets(tps)
            count = 0
            for tp in tps:
                if ends[tp] <= start[tp.partition]:
                    continue
                consumer.seek(tp, start[tp.partition])
                while consumer.position(tp) < ends[tp]:
                    batch = consumer.poll(timeout_ms=1000, max_records=10_000)
                    if not batch:
                        break
                    count += sum(len(records) for records in batch.values())
            return count
        finally:
            consumer.close()


def run_demo(
    settings: Settings,
    *,
    minutes: int = 5,
    rate_per_s: float = 60.0,
    source: str = "kafka",
    out: Callable[[str], None] = print,
) -> list[dict]:
    from genai_apm.jobs import analytics
    from genai_apm.schemas.outputs import describe

    if source not in SOURCES:
        raise GenaiApmError(f"unknown demo source {source!r} (known: {', '.join(SOURCES)})")
    stack = LocalStack(settings)
    # the demo always talks to the embedded broker, whatever kafka.bootstrap_servers says
    settings = settings.replace(kafka={"bootstrap_servers": stack.kafka.bootstrap})
    if source == "kinesis":
        settings = demo_stream_settings(settings, stack)
    kafka, topics = settings.kafka, settings.topics
    outputs = (
        topics.invocations,
        topics.latency,
        topics.errors,
        topics.cost,
        topics.alerts,
        topics.deadletter,
    )
    progress = Progress(6 if source == "kinesis" else 5, out)
    with progress.step("starting the local stack (Kafka 4 KRaft broker, moto)"):
        started = stack.up()
    try:
        count = int(minutes * 60 * rate_per_s)
        spec = traffic.TrafficSpec(rate_per_s=rate_per_s, count=count)
        storm_model = traffic.traffic(spec).__next__().event["model_id"]
        third = spec.start_ms + minutes * 20_000
        spec = traffic.TrafficSpec(
            rate_per_s=rate_per_s,
            count=count,
            incidents=(traffic.throttling_storm(storm_model, third, third + minutes * 20_000),),
        )
        into = f"Kinesis stream {settings.bridge.stream}" if source == "kinesis" else "Kafka"
        with progress.step(
            f"producing {count:,} invocation events ({minutes} min of event time, a throttling "
            f"storm on {storm_model}) and {len(MALFORMED)} malformed records into {into}"
        ):
            kafka_io.ensure_topics(kafka, outputs)
            # read only what this run writes, even if earlier runs left data in the topics
            start = {t: kafka_io.end_offsets(kafka, t) for t in outputs}
            if source == "kinesis":
                create_stream(settings)
                events = traffic.invocations(spec, count)
                encoded = (json.dumps(e, separators=(",", ":")).encode() for e in events)
                put_to_kinesis(settings, [*encoded, *MALFORMED])
            else:
                kafka_io.produce_json(
                    kafka,
                    topics.invocations,
                    traffic.invocations(spec, count),
                    key_field="model_id",
                )
                kafka_io.produce_raw(kafka, topics.invocations, MALFORMED)
        if source == "kinesis":
            with progress.step(
                f"bridging {settings.bridge.stream} into {topics.invocations} (Flink 1.19 "
                "Kinesis consumer -> Kafka transactions; log in "
                f"{settings.bridge.checkpoint_dir.removesuffix('/checkpoints')})",
                ticker=True,
            ):
                bridge_into_kafka(settings, start[topics.invocations], count + len(MALFORMED))
        job_started = time.time()  # the report shows this run's Parquet files only
        with progress.step(
            "running the analytics job (latency, errors, cost, alerts) on a local Flink "
            "MiniCluster",
            ticker=True,
        ):
            analytics.run(
                settings, bounded=True, wait=True, start_offsets=start[topics.invocations]
            )
        with progress.step("reading the results"):
            read = {
                t: kafka_io.consume_json(kafka, t, start=start[t], until_end=True)
                for t in outputs[1:]
            }
        rows, dead = read[topics.latency], read[topics.deadletter]
        out("")
        out("Latency per model and minute (successful calls):")
        out(latency_table(rows, settings.latency.percentiles))
        out("")
        out("Outcomes per model over the run:")
        out(format_errors(read[topics.errors]))
        out("")
        out("Top spend by app (USD, list prices from genai_apm/data/pricing.toml):")
        out(format_spend(read[topics.cost]))
        out("")
        for a in read[topics.alerts]:
            out(
                f"alert: {a['alert_time'][:16].replace('T', ' ')} {a['rule']} {a['key']}: "
                + describe(a)
            )
        out(
            f"{len(rows)} rows in {topics.latency}, {len(read[topics.errors])} in "
            f"{topics.errors}, {len(read[topics.cost])} in {topics.cost}, "
            f"{len(read[topics.alerts])} in {topics.alerts}; {len(dead)} dead letters in "
            f"{topics.deadletter} (Kafka at {kafka.bootstrap_servers})."
        )
        out(f"Parquet tables under {settings.output.tables_path}.")
        out("Read topics again with `genai-apm consume TOPIC` while the stack is up (`make up`).")
        write_report(settings, read[topics.alerts], job_started, out)
        return rows
    finally:
        with progress.step("stopping what this run started: " + (", ".join(started) or "nothing")):
            stack.down(only=started)
