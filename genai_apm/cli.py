"""`genai-apm`: one command for the local stack, Flink jobs, traffic and derived topics."""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable

from genai_apm import config
from genai_apm.errors import GenaiApmError


def _settings(args) -> config.Settings:
    return config.load(args.config)


def cmd_stack(args) -> int:
    from genai_apm.stack.local import LocalStack

    stack = LocalStack(_settings(args))
    if args.action == "up":
        started = stack.up()
        print("started: " + (", ".join(started) or "nothing (already running)"))
    elif args.action == "down":
        stopped = stack.down()
        print("stopped: " + (", ".join(stopped) or "nothing (not running)"))
    for name, status in stack.status().items():
        print(f"{name:6} {status}")
    return 0


def cmd_cluster(args) -> int:
    from genai_apm.flink_cluster import LocalFlinkCluster

    cluster = LocalFlinkCluster(_settings(args))
    if args.action == "up":
        print("started" if cluster.up() else "already running")
    elif args.action == "down":
        print("stopped" if cluster.down() else "not running")
    print(f"flink  {cluster.status()}")
    return 0


def cmd_submit(args) -> int:
    from genai_apm import jobs, kafka_io

    module = jobs.module(args.job)  # an unknown name: one line, before anything starts
    settings = _settings(args)
    job_args = ["--bounded"] if args.bounded else []
    kafka_io.require_topics(settings.kafka, jobs.input_topics(args.job, settings))
    if args.cluster:
        from genai_apm.flink_cluster import submit_to_cluster

        if args.config:
            job_args += ["--config", args.config]
        job_id = submit_to_cluster(args.cluster, module, job_args)
        print(f"submitted {args.job} to {args.cluster}: job {job_id}")
        return 0
    print(f"running {args.job} on a local MiniCluster (Ctrl-C stops it)", flush=True)
    jobs.load(args.job).run(settings, bounded=args.bounded, wait=True)
    return 0


def cmd_jobs(args) -> int:
    from genai_apm.flink_cluster import FlinkRest

    address = args.cluster or _settings(args).flink.rest_address
    jobs = FlinkRest(address).jobs()
    if not jobs:
        print(f"no jobs on {address}")
    for job in sorted(jobs, key=lambda j: -j["start-time"]):
        print(f"{job['jid']}  {job['state']:10}  {job['name']}")
    return 0


def cmd_cancel(args) -> int:
    from genai_apm.flink_cluster import FlinkRest

    address = args.cluster or _settings(args).flink.rest_address
    FlinkRest(address).cancel(args.job_id)
    print(f"cancelling {args.job_id} on {address}")
    return 0


def _output(args, settings):
    from genai_apm import publish

    if args.to == "file":
        if not args.out:
            raise GenaiApmError("--to file needs --out DIR")
        return publish.FileOutput(args.out)
    if args.to == "kinesis":
        # default: the stream the Kinesis bridge reads
        return publish.KinesisOutput(settings, args.stream or settings.bridge.stream)
    return publish.KafkaOutput(settings, args.topic)


# TrafficSpec's field -> the `generate` option that sets it, for its error messages
_SPEC_OPTIONS = {
    "rate_per_s": "--rate",
    "duration_s": "--duration",
    "error_rate": "--error-rate",
    "agent_share": "--agents",
    "count": "--count",
}


def _option_names(message: str) -> str:
    for field, option in _SPEC_OPTIONS.items():
        message = re.sub(rf"\b{field}\b", option, message)
    return f"generate: {message}"


def _traffic_spec(generator, args):
    return generator.TrafficSpec(
        rate_per_s=args.rate,
        seed=args.seed,
        models=args.models,
        apps=args.apps,
        users=args.users,
        error_rate=args.error_rate,
        diurnal=args.diurnal,
        agent_share=args.agents,
        count=None if args.duration else args.count,
        duration_s=args.duration,
    )


def cmd_generate(args) -> int:
    from pathlib import Path

    from genai_apm import generator, progress, publish
    from genai_apm.traffic.presets import PRESETS

    settings = _settings(args)
    try:
        spec = _traffic_spec(generator, args)
    except ValueError as e:  # the spec checks its numbers; a bad option is one line
        raise GenaiApmError(_option_names(str(e))) from None
    if args.incidents:
        span_s = args.duration or args.count / args.rate
        try:
            incidents = PRESETS[args.incidents](spec, span_s, settings)
        except ValueError as e:  # e.g. no traffic to put them in
            raise GenaiApmError(f"generate: --incidents {args.incidents}: {e}") from None
        spec = generator.TrafficSpec(**{**spec.__dict__, "incidents": incidents})
    records = generator.traffic(spec)
    if args.disorder_ms:
        records = generator.with_disorder(records, args.disorder_ms, args.seed)
    if args.pace:
        records = generator.paced(records, args.pace)
    # the bar counts invocations (agent spans come on top), against --count when given
    records = progress.track(
        records,
        "generated",
        None if args.duration else args.count,
        counts=lambda r: r.contract == generator.INVOCATION,
    )
    output = _output(args, settings)
    if isinstance(output, publish.KafkaOutput):
        from genai_apm import kafka_io

        streams = {
            "native": ["invocations", "spans"],
            "bedrock": ["bedrock"],
            "otlp-json": ["otlp"],
        }[args.format]
        kafka_io.ensure_topics(settings.kafka, output.topics(streams))
    for stream, payload in publish.encode(records, args.format):
        output.send(stream, payload)
    where = output.close()
    print(f"wrote {output.sent:,} {args.format} records to {where}")
    labels = args.labels or (str(Path(args.out) / "labels.json") if args.to == "file" else None)
    if spec.incidents:
        labels = labels or str(Path(settings.stack.state_dir) / "labels.json")
        Path(labels).parent.mkdir(parents=True, exist_ok=True)
        Path(labels).write_text(generator.labels_json(spec.incidents))
        print(f"incident labels ({len(spec.incidents)}) in {labels}")
    return 0


def cmd_replay(args) -> int:
    from genai_apm import kafka_io, progress, publish

    settings = _settings(args)
    stream = {"native": "invocations", "bedrock": "bedrock", "otlp-json": "otlp"}[args.format]
    lines = publish.read_lines(args.path, settings)  # a missing path: one line, no broker
    output = publish.KafkaOutput(settings, args.topic)
    topic = output.topics([stream])[0]
    kafka_io.ensure_topics(settings.kafka, [topic])
    for line in progress.track(lines, "replayed"):
        output.send(stream, line)
    where = output.close()
    print(f"replayed {output.sent:,} {args.format} records from {args.path} to {topic} ({where})")
    return 0


def cmd_backfill(args) -> int:
    import tempfile
    from pathlib import Path

    from genai_apm import progress, publish
    from genai_apm.adapters import AdapterError, decode
    from genai_apm.jobs import BACKFILL_JOBS, load, source_kind

    if args.job not in BACKFILL_JOBS:
        raise GenaiApmError(f"backfill supports: {', '.join(BACKFILL_JOBS)} (not {args.job!r})")
    # the agents job reads SpanEvents, every other one InvocationEvents
    wanted = "SpanEvent" if source_kind(args.job) == "spans" else "InvocationEvent"

    settings = _settings(args)
    if args.format == "native" and "://" not in args.input:
        source = args.input
        if not Path(source).exists():
            raise GenaiApmError(f"{source} does not exist")
    else:
        # foreign formats (and S3) are normalised by the same adapters the ingest job runs
        source = tempfile.mkdtemp(prefix="genai-apm-backfill-")
        rejected = Path(args.output) / "deadletters-adapters.jsonl"
        rejected.parent.mkdir(parents=True, exist_ok=True)
        kept = dropped = 0
        with open(Path(source) / "events.jsonl", "wb") as out, open(rejected, "w") as bad:
            for line in progress.track(publish.read_lines(args.input, settings), "normalised"):
                try:
                    for contract, event in decode(args.format, line):
                        if contract == wanted:
                            out.write(json.dumps(event).encode() + b"\n")
                            kept += 1
                except AdapterError as e:
                    dropped += 1
                    bad.write(
                        json.dumps(
                            {
                                "payload": line.decode(errors="replace"),
                                "format": args.format,
                                "reason": str(e),
                            }
                        )
                        + "\n"
                    )
        print(f"normalised {kept:,} {wanted}s; {dropped:,} records rejected ({rejected})")
    print(f"running the {args.job} backfill on a local MiniCluster", flush=True)
    with progress.elapsed(f"{args.job} backfill"):
        load(args.job).backfill(settings, input_path=source, output_path=args.output)
    print(f"tables written under {args.output}")
    return 0


def cmd_consume(args) -> int:
    import datetime as dt

    from genai_apm import kafka_io
    from genai_apm.record_filter import RecordFilter, parse_since, table_columns, table_rows
    from genai_apm.serve import query

    settings = _settings(args)
    keep = RecordFilter(args.model, args.app, parse_since(args.since, dt.datetime.now(dt.UTC)))
    filtering = keep != RecordFilter()
    shown, table = 0, []
    for value in kafka_io.consume(
        settings.kafka, args.topic, from_beginning=not args.latest, idle_timeout_s=args.idle_timeout
    ):
        try:
            record = json.loads(value)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            if filtering:  # a record that is not a JSON object has no field to match
                continue
            print(value.decode(errors="replace"))
        elif not keep(record):
            continue
        elif args.pretty:
            table.append(record)  # printed at the end: columns must be as wide as their data
        else:
            print(json.dumps(record, sort_keys=False))
        shown += 1
        if args.max and shown >= args.max:
            break
    if args.pretty and table:
        columns = table_columns(table, args.columns.split(",") if args.columns else None)
        print(query.format_table(columns, table_rows(table, columns)))
    print(f"-- {shown} record(s) from {args.topic}", file=sys.stderr)
    return 0


def cmd_report(args) -> int:
    from genai_apm import kafka_io
    from genai_apm.serve import report

    settings = _settings(args)
    alerts = None
    if args.alerts_from_kafka:
        alerts = kafka_io.consume_json(
            settings.kafka, settings.topics.alerts, idle_timeout_s=3.0, until_end=True
        )
    written = report.build(
        settings, args.out, tables_path=args.tables_path, since=args.since, alerts=alerts
    )
    print(
        f"report: {written.path} ({written.charts} charts, {written.empty_panels} panels "
        "without data); open it in a browser"
    )
    return 0


def cmd_demo(args) -> int:
    from genai_apm.demo import run_demo

    run_demo(_settings(args), minutes=args.minutes, rate_per_s=args.rate, source=args.source)
    return 0


def cmd_query(args) -> int:
    from genai_apm.serve import query

    columns, rows = query.run(_settings(args), args.sql, tables_path=args.tables_path)
    if args.format == "json":
        for row in rows:
            print(json.dumps(dict(zip(columns, row, strict=True)), default=str))
    elif args.format == "csv":
        import csv

        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows(rows)
    else:
        print(query.format_table(columns, rows))
    return 0


def cmd_compact(args) -> int:
    from genai_apm import compact

    report = compact.run(
        _settings(args),
        tables_path=args.tables_path,
        tables=args.table or None,
        after_minutes=args.after_minutes,
        out=lambda line: print(line, file=sys.stderr),
    )
    print(report.summary())
    return 0


def cmd_evaluate_anomalies(args) -> int:
    from genai_apm import scoring

    return scoring.run(args)


def cmd_athena_ddl(args) -> int:
    from genai_apm.deploy import athena

    return athena.run(args)


def cmd_export(args) -> int:
    from genai_apm.export import cloudwatch

    settings = _settings(args)
    if args.emf:
        settings = settings.replace(cloudwatch={"output": "emf"})
    where = "stdout (EMF)" if settings.cloudwatch.output == "emf" else "CloudWatch"
    print(f"exporting the metric topics to {where}", file=sys.stderr, flush=True)
    # Ctrl-C leaves the offsets of undelivered records uncommitted: they are sent again
    stats = cloudwatch.export(settings, once=args.once)
    print(stats.summary(), file=sys.stderr)
    return 0


def cmd_bridge(args) -> int:
    from genai_apm import bridge

    settings = _settings(args)
    if args.stream:
        settings = settings.replace(bridge={"stream": args.stream})
    if args.check:
        shards = bridge.check_stream(settings)
        print(f"Kinesis stream {settings.bridge.stream}: ACTIVE, {shards} open shards")
        return 0
    return bridge.run(settings)


def cmd_config(args) -> int:
    for section, values in _settings(args).redacted().items():
        print(f"[{section}]")
        for key, value in values.items():
            print(f"{key} = {json.dumps(list(value) if isinstance(value, tuple) else value)}")
        print()
    return 0


class OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line, like every other input error (``--help`` shows the usage)."""

    def error(self, message: str):
        command = self.prog.removeprefix("genai-apm").strip()
        where = f"{command}: " if command else ""
        self.exit(2, f"genai-apm: error: {where}{message} (see `{self.prog} --help`)\n")


def number(kind: type = float, *, minimum: float | None = None, positive: bool = False):
    """An argparse type: a number of ``kind``, > 0 when ``positive``, >= ``minimum``."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if positive and not value > 0:
            raise argparse.ArgumentTypeError(f"must be positive, not {text}")
        if minimum is not None and value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {text}")
        return value

    return parse


AT_LEAST_ONE = number(int, minimum=1)
POSITIVE = number(positive=True)
NON_NEGATIVE = number(minimum=0)


def parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="genai-apm",
        description="Streaming monitoring for generative-AI applications on Apache Flink.",
    )
    p.add_argument(
        "--config",
        help="config file (TOML); default $GENAI_APM_CONFIG or "
        "./genai-apm.toml; GENAI_APM_<SECTION>_<KEY> env vars override it",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, fn: Callable, help: str) -> argparse.ArgumentParser:
        s = sub.add_parser(name, help=help, description=help)
        s.set_defaults(fn=fn)
        return s

    s = add("stack", cmd_stack, "start, stop or inspect the local Kafka broker and moto server")
    s.add_argument("action", choices=["up", "down", "status"], help="what to do")
    s = add("cluster", cmd_cluster, "start, stop or inspect a standalone Flink cluster on loopback")
    s.add_argument("action", choices=["up", "down", "status"], help="what to do")
    s = add("submit", cmd_submit, "run a job: local MiniCluster by default, or --cluster")
    s.add_argument("job", help="job name, e.g. latency")
    s.add_argument(
        "--cluster",
        metavar="HOST:PORT",
        help="submit detached to this Flink REST address and print the job id",
    )
    s.add_argument(
        "--bounded",
        action="store_true",
        help="stop at the offsets that are latest when the job starts",
    )
    s = add("jobs", cmd_jobs, "list the jobs of a Flink cluster")
    s.add_argument("--cluster", metavar="HOST:PORT", help="default: flink.rest_address")
    s = add("cancel", cmd_cancel, "cancel a job on a Flink cluster")
    s.add_argument("job_id", help="the job id, as `genai-apm jobs` lists it")
    s.add_argument("--cluster", metavar="HOST:PORT", help="default: flink.rest_address")
    s = add("generate", cmd_generate, "generate deterministic, realistic traffic")
    s.add_argument("--count", type=int, default=10_000, help="invocations to generate")
    s.add_argument("--duration", type=float, help="seconds of event time (instead of --count)")
    s.add_argument(
        "--rate",
        type=float,
        default=50.0,
        help="invocations per second of "
        "event time (event time is compressed: generation runs as fast as it can)",
    )
    s.add_argument(
        "--pace",
        type=POSITIVE,
        help="also limit output to this many records per second of wall-clock time",
    )
    s.add_argument("--seed", type=int, default=7, help="same seed, same traffic (default 7)")
    s.add_argument(
        "--models", type=AT_LEAST_ONE, default=8, help="how many models to call (default 8)"
    )
    s.add_argument("--apps", type=AT_LEAST_ONE, default=8, help="how many calling apps (default 8)")
    s.add_argument(
        "--users", type=AT_LEAST_ONE, default=200, help="how many end users (default 200)"
    )
    s.add_argument(
        "--error-rate", type=float, default=0.04, help="share of failed calls (default 0.04)"
    )
    s.add_argument(
        "--agents",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="share of calls made by agents (adds OpenTelemetry spans)",
    )
    s.add_argument("--diurnal", action="store_true", help="follow a daily rate curve")
    s.add_argument(
        "--incidents",
        choices=["demo", "quota-ramp"],
        help="inject labelled incidents: one of each kind (demo), or an app's traffic growing "
        "into its model's quota and a throttling storm (quota-ramp, quota.quota_file)",
    )
    s.add_argument("--labels", metavar="FILE", help="where to write the incident labels")
    s.add_argument(
        "--disorder-ms",
        type=NON_NEGATIVE,
        default=0.0,
        help="shuffle records within this much event time",
    )
    s.add_argument(
        "--format",
        choices=["native", "bedrock", "otlp-json"],
        default="native",
        help="record format (default native)",
    )
    s.add_argument(
        "--to", choices=["kafka", "kinesis", "file"], default="kafka", help="where (default kafka)"
    )
    s.add_argument("--topic", help="Kafka topic (default: by format, from settings)")
    s.add_argument("--stream", help="Kinesis stream (with --to kinesis; default bridge.stream)")
    s.add_argument("--out", metavar="DIR", help="directory for --to file")
    s = add(
        "bridge",
        cmd_bridge,
        "copy a Kinesis stream into the invocations topic, exactly once (docs/aws.md)",
    )
    s.add_argument("source", choices=["kinesis"], help="where records come from")
    s.add_argument("--stream", help="Kinesis stream (default: bridge.stream)")
    s.add_argument("--check", action="store_true", help="only check the stream and credentials")
    s = add("replay", cmd_replay, "publish a file, directory or s3:// prefix to Kafka")
    s.add_argument("path", help="file, directory or s3:// prefix; .gz files are decompressed")
    s.add_argument(
        "--format",
        choices=["native", "bedrock", "otlp-json"],
        required=True,
        help="the records' format: it picks the topic",
    )
    s.add_argument("--topic", help="Kafka topic (default: by format, from settings)")
    s = add("backfill", cmd_backfill, "run a job bounded over files into Parquet tables")
    s.add_argument("job", help="job name: any job but ingest (latency, errors, ..., all)")
    s.add_argument("--input", required=True, help="file, directory or s3:// prefix")
    s.add_argument(
        "--format",
        choices=["native", "bedrock", "otlp-json"],
        default="native",
        help="the input's format (default native)",
    )
    s.add_argument("--output", required=True, metavar="DIR", help="where to write the tables")
    s = add(
        "consume",
        cmd_consume,
        "print a topic's records as JSON lines, or as a table (--pretty), filtered",
    )
    s.add_argument("topic", help="e.g. genai.metrics.latency, genai.alerts")
    s.add_argument("--latest", action="store_true", help="only records arriving from now on")
    s.add_argument(
        "--idle-timeout",
        type=POSITIVE,
        default=5.0,
        help="stop after this many seconds without a record",
    )
    s.add_argument("--max", type=AT_LEAST_ONE, help="stop after this many records")
    s.add_argument("--model", help="only records with this model_id")
    s.add_argument("--app", help="only records with this app_id")
    s.add_argument(
        "--since",
        metavar="WHEN",
        help="only records from then on (by window_start, alert_time, session_start or "
        "event_time): ISO-8601 (2026-01-01T00:00Z) or a duration back from now (30m, 6h, 2d)",
    )
    s.add_argument(
        "--pretty", action="store_true", help="an aligned table when the records are read"
    )
    s.add_argument(
        "--columns",
        metavar="A,B,...",
        help="the table's columns (default: every field that is not a map or list)",
    )
    s = add("demo", cmd_demo, "the embedded default end to end (what `make run` runs)")
    s.add_argument(
        "--minutes", type=AT_LEAST_ONE, default=5, help="minutes of event time to generate"
    )
    s.add_argument("--rate", type=POSITIVE, default=60.0, help="events per second of event time")
    s.add_argument(
        "--source",
        choices=["kafka", "kinesis"],
        default="kafka",
        help="where the events go in: Kafka, or a Kinesis stream on moto bridged into Kafka",
    )
    add("config", cmd_config, "print the effective settings (secrets masked)")
    s = add(
        "compact",
        cmd_compact,
        "merge each closed hour of the Parquet tables into one file (local or s3://)",
    )
    s.add_argument("--tables-path", help="default: output.tables_path")
    s.add_argument("--table", action="append", help="only this table (repeatable)")
    s.add_argument(
        "--after-minutes",
        type=NON_NEGATIVE,
        help="an hour is closed this long after it ended and its last change "
        "(default: output.compact_after_minutes; 0 right after a finished backfill)",
    )
    s = add("query", cmd_query, "run SQL with DuckDB over the Parquet tables (local or s3://)")
    s.add_argument("sql", help='e.g. "SELECT model_id, SUM(requests) FROM latency_1m GROUP BY 1"')
    s.add_argument("--tables-path", help="default: output.tables_path")
    s.add_argument(
        "--format", choices=["table", "csv", "json"], default="table", help="default table"
    )
    s = add(
        "report",
        cmd_report,
        "write a self-contained HTML dashboard from the Parquet tables (local or s3://)",
    )
    s.add_argument("--tables-path", help="default: output.tables_path")
    s.add_argument(
        "--out", default="report.html", metavar="FILE", help="the HTML file (default report.html)"
    )
    s.add_argument(
        "--since",
        metavar="WHEN",
        help="only windows from then on: ISO-8601 (2026-01-01T00:00Z) or a duration back from "
        "the newest window in the tables (30m, 6h, 2d)",
    )
    s.add_argument(
        "--alerts-from-kafka",
        action="store_true",
        help="also read the alert transitions on the alerts topic (streaming jobs send them "
        "there; bounded runs write them under <tables>/alerts)",
    )
    s = add("athena-ddl", cmd_athena_ddl, "write infra/athena (Athena DDL and example queries)")
    from genai_apm.deploy.athena import add_arguments

    add_arguments(s)
    s = add(
        "evaluate-anomalies",
        cmd_evaluate_anomalies,
        "score the anomaly job on labelled incidents, clean traffic and NAB, against a "
        "rolling z-score baseline",
    )
    from genai_apm.scoring import add_arguments as scoring_arguments

    scoring_arguments(s)
    s = add("export", cmd_export, "publish derived metric topics to a monitoring service")
    s.add_argument("target", choices=["cloudwatch"], help="the monitoring service")
    s.add_argument("--once", action="store_true", help="drain what is there, then exit")
    s.add_argument("--emf", action="store_true", help="EMF JSON lines on stdout, not the API")
    return p


def _flink_failure(e: BaseException) -> str | None:
    """The root cause of a Py4J-wrapped Flink failure, as one line."""
    text = str(e)
    causes = [line.strip() for line in text.splitlines() if line.strip().startswith("Caused by:")]
    if "py4j" not in type(e).__module__ and not causes:
        return None
    last = causes[-1] if causes else text.strip().splitlines()[0]
    return "Flink job failed: " + last.removeprefix("Caused by:").strip()[:400]


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.fn(args)
    except GenaiApmError as e:
        print(f"genai-apm: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("genai-apm: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        summary = _flink_failure(e)
        if summary is None:
            raise
        print(f"genai-apm: error: {summary}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
