"""`genai-apm` commands that put traffic in: generated, replayed from files, or the whole demo
end to end."""

from __future__ import annotations

import re

from genai_apm.cli.common import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, load_settings
from genai_apm.errors import GenaiApmError


def _output(args, settings):
    from genai_apm.kafka import publish

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

    from genai_apm import progress
    from genai_apm import traffic as generator
    from genai_apm.kafka import publish
    from genai_apm.traffic.presets import PRESETS

    settings = load_settings(args)
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
        from genai_apm.kafka import io as kafka_io

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
    from genai_apm import progress
    from genai_apm.kafka import io as kafka_io
    from genai_apm.kafka import publish

    settings = load_settings(args)
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


def cmd_demo(args) -> int:
    from genai_apm.demo import run_demo

    run_demo(load_settings(args), minutes=args.minutes, rate_per_s=args.rate, source=args.source)
    return 0


def add_commands(add) -> None:
    """This module's subcommands and their arguments (``add(name, fn, help)``)."""
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
    s = add("replay", cmd_replay, "publish a file, directory or s3:// prefix to Kafka")
    s.add_argument("path", help="file, directory or s3:// prefix; .gz files are decompressed")
    s.add_argument(
        "--format",
        choices=["native", "bedrock", "otlp-json"],
        required=True,
        help="the records' format: it picks the topic",
    )
    s.add_argument("--topic", help="Kafka topic (default: by format, from settings)")
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
