"""`genai-apm`: one command for the local stack, Flink jobs, traffic and derived topics."""

from __future__ import annotations

import argparse
import importlib
import json
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


def _job_module(name: str) -> str:
    from genai_apm.jobs import JOBS

    if name not in JOBS:
        raise GenaiApmError(f"unknown job {name!r} (known: {', '.join(sorted(JOBS))})")
    return JOBS[name]


def cmd_submit(args) -> int:
    module = _job_module(args.job)
    settings = _settings(args)
    job_args = ["--bounded"] if args.bounded else []
    if args.cluster:
        from genai_apm.flink_cluster import submit_to_cluster

        if args.config:
            job_args += ["--config", args.config]
        job_id = submit_to_cluster(args.cluster, module, job_args)
        print(f"submitted {args.job} to {args.cluster}: job {job_id}")
        return 0
    from genai_apm import kafka_io

    kafka_io.check_reachable(settings.kafka)
    print(f"running {args.job} on a local MiniCluster (Ctrl-C stops it)", flush=True)
    importlib.import_module(module).run(settings, bounded=args.bounded, wait=True)
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


def cmd_generate(args) -> int:
    from genai_apm import generator, kafka_io

    settings = _settings(args)
    spec = generator.TrafficSpec(rate_per_s=args.rate, seed=args.seed)
    events = generator.invocations(spec, args.count)
    if args.out:
        with open(args.out, "w") as f:
            for event in events:
                f.write(json.dumps(event, separators=(",", ":")) + "\n")
        print(f"wrote {args.count:,} events to {args.out}")
        return 0
    topic = args.topic or settings.topics.invocations
    kafka_io.ensure_topics(settings.kafka, [topic])
    sent = kafka_io.produce_json(settings.kafka, topic, events, key_field="model_id")
    print(f"produced {sent:,} events to {topic} at {settings.kafka.bootstrap_servers}")
    return 0


def cmd_consume(args) -> int:
    from genai_apm import kafka_io

    settings = _settings(args)
    shown = 0
    for value in kafka_io.consume(
        settings.kafka, args.topic, from_beginning=not args.latest, idle_timeout_s=args.idle_timeout
    ):
        try:
            record = json.loads(value)
        except ValueError:
            print(value.decode(errors="replace"))
        else:
            if args.model and record.get("model_id") != args.model:
                continue
            print(json.dumps(record, sort_keys=False))
        shown += 1
        if args.max and shown >= args.max:
            break
    print(f"-- {shown} record(s) from {args.topic}", file=sys.stderr)
    return 0


def cmd_demo(args) -> int:
    from genai_apm.demo import run_demo

    run_demo(_settings(args), minutes=args.minutes, rate_per_s=args.rate)
    return 0


def cmd_config(args) -> int:
    for section, values in _settings(args).redacted().items():
        print(f"[{section}]")
        for key, value in values.items():
            print(f"{key} = {json.dumps(list(value) if isinstance(value, tuple) else value)}")
        print()
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
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
    s.add_argument("action", choices=["up", "down", "status"])
    s = add("cluster", cmd_cluster, "start, stop or inspect a standalone Flink cluster on loopback")
    s.add_argument("action", choices=["up", "down", "status"])
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
    s.add_argument("job_id")
    s.add_argument("--cluster", metavar="HOST:PORT", help="default: flink.rest_address")
    s = add("generate", cmd_generate, "generate deterministic synthetic invocation events")
    s.add_argument("--count", type=int, default=10_000)
    s.add_argument("--rate", type=float, default=50.0, help="events per second of event time")
    s.add_argument("--seed", type=int, default=7)
    s.add_argument("--topic", help="Kafka topic (default: topics.invocations)")
    s.add_argument("--out", metavar="FILE", help="write JSON lines to FILE instead of Kafka")
    s = add("consume", cmd_consume, "print the records of a topic as JSON lines")
    s.add_argument("topic")
    s.add_argument("--latest", action="store_true", help="only records arriving from now on")
    s.add_argument(
        "--idle-timeout",
        type=float,
        default=5.0,
        help="stop after this many seconds without a record",
    )
    s.add_argument("--max", type=int, help="stop after this many records")
    s.add_argument("--model", help="only records with this model_id")
    s = add("demo", cmd_demo, "the embedded default end to end (what `make run` runs)")
    s.add_argument("--minutes", type=int, default=5, help="minutes of event time to generate")
    s.add_argument("--rate", type=float, default=60.0, help="events per second of event time")
    add("config", cmd_config, "print the effective settings (secrets masked)")
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
