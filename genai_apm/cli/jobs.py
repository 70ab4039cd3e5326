"""`genai-apm` commands that run the Flink jobs: submitted, listed, cancelled, bounded over
files (backfill), and the anomaly job's evaluation."""

from __future__ import annotations

import json

from genai_apm.cli.common import load_settings
from genai_apm.errors import GenaiApmError


def cmd_submit(args) -> int:
    from genai_apm import jobs
    from genai_apm.kafka import io as kafka_io

    module = jobs.module(args.job)  # an unknown name: one line, before anything starts
    settings = load_settings(args)
    job_args = ["--bounded"] if args.bounded else []
    kafka_io.require_topics(settings.kafka, jobs.input_topics(args.job, settings))
    if args.cluster:
        from genai_apm.flink.cluster import submit_to_cluster

        if args.config:
            job_args += ["--config", args.config]
        job_id = submit_to_cluster(args.cluster, module, job_args)
        print(f"submitted {args.job} to {args.cluster}: job {job_id}")
        return 0
    print(f"running {args.job} on a local MiniCluster (Ctrl-C stops it)", flush=True)
    jobs.load(args.job).run(settings, bounded=args.bounded, wait=True)
    return 0


def cmd_jobs(args) -> int:
    from genai_apm.flink.cluster import FlinkRest

    address = args.cluster or load_settings(args).flink.rest_address
    jobs = FlinkRest(address).jobs()
    if not jobs:
        print(f"no jobs on {address}")
    for job in sorted(jobs, key=lambda j: -j["start-time"]):
        print(f"{job['jid']}  {job['state']:10}  {job['name']}")
    return 0


def cmd_cancel(args) -> int:
    from genai_apm.flink.cluster import FlinkRest

    address = args.cluster or load_settings(args).flink.rest_address
    FlinkRest(address).cancel(args.job_id)
    print(f"cancelling {args.job_id} on {address}")
    return 0


def normalised_input(settings, path: str, fmt: str, wanted: str, output: str) -> str:
    """A directory of native ``wanted`` events (InvocationEvent, SpanEvent) from ``path``:
    ``path`` itself for local native files; otherwise records read (S3 too) and normalised by
    the adapters the ingest job runs, into a temporary directory. Records no adapter reads
    are kept with their reason in ``output``/deadletters-adapters.jsonl."""
    import tempfile
    from pathlib import Path

    from genai_apm import progress
    from genai_apm.adapters import AdapterError, decode
    from genai_apm.kafka import publish

    if fmt == "native" and "://" not in path:
        if not Path(path).exists():
            raise GenaiApmError(f"{path} does not exist")
        return path
    source = tempfile.mkdtemp(prefix="genai-apm-backfill-")
    rejected = Path(output) / "deadletters-adapters.jsonl"
    rejected.parent.mkdir(parents=True, exist_ok=True)
    kept = dropped = 0
    with open(Path(source) / "events.jsonl", "wb") as out, open(rejected, "w") as bad:
        for line in progress.track(publish.read_lines(path, settings), "normalised"):
            try:
                for contract, event in decode(fmt, line):
                    if contract == wanted:
                        out.write(json.dumps(event).encode() + b"\n")
                        kept += 1
            except AdapterError as e:
                dropped += 1
                reason = {"payload": line.decode(errors="replace"), "format": fmt, "reason": str(e)}
                bad.write(json.dumps(reason) + "\n")
    print(f"normalised {kept:,} {wanted}s; {dropped:,} records rejected ({rejected})")
    return source


def cmd_backfill(args) -> int:
    from genai_apm import progress
    from genai_apm.jobs import BACKFILL_JOBS, load, source_kind

    if args.job not in BACKFILL_JOBS:
        raise GenaiApmError(f"backfill supports: {', '.join(BACKFILL_JOBS)} (not {args.job!r})")
    # the agents job reads SpanEvents, every other one InvocationEvents
    wanted = "SpanEvent" if source_kind(args.job) == "spans" else "InvocationEvent"
    settings = load_settings(args)
    source = normalised_input(settings, args.input, args.format, wanted, args.output)
    print(f"running the {args.job} backfill on a local MiniCluster", flush=True)
    with progress.elapsed(f"{args.job} backfill"):
        load(args.job).backfill(settings, input_path=source, output_path=args.output)
    print(f"tables written under {args.output}")
    return 0


def cmd_evaluate_anomalies(args) -> int:
    from genai_apm.evaluation import scoring

    return scoring.run(args)


def add_commands(add) -> None:
    """This module's subcommands and their arguments (``add(name, fn, help)``)."""
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
        "evaluate-anomalies",
        cmd_evaluate_anomalies,
        "score the anomaly job on labelled incidents, clean traffic and NAB, against a "
        "rolling z-score baseline",
    )
    from genai_apm.evaluation.scoring import add_arguments as scoring_arguments

    scoring_arguments(s)
