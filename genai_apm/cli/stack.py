"""`genai-apm` commands for the local stack (Kafka broker, moto, a Flink cluster), the Kinesis
bridge and the effective settings."""

from __future__ import annotations

import json

from genai_apm.cli.common import load_settings


def cmd_stack(args) -> int:
    from genai_apm.stack.local import LocalStack

    stack = LocalStack(load_settings(args))
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
    from genai_apm.flink.cluster import LocalFlinkCluster

    cluster = LocalFlinkCluster(load_settings(args))
    if args.action == "up":
        print("started" if cluster.up() else "already running")
    elif args.action == "down":
        print("stopped" if cluster.down() else "not running")
    print(f"flink  {cluster.status()}")
    return 0


def cmd_bridge(args) -> int:
    from genai_apm.kafka import bridge

    settings = load_settings(args)
    if args.stream:
        settings = settings.replace(bridge={"stream": args.stream})
    if args.check:
        shards = bridge.check_stream(settings)
        print(f"Kinesis stream {settings.bridge.stream}: ACTIVE, {shards} open shards")
        return 0
    return bridge.run(settings)


def cmd_config(args) -> int:
    for section, values in load_settings(args).redacted().items():
        print(f"[{section}]")
        for key, value in values.items():
            print(f"{key} = {json.dumps(list(value) if isinstance(value, tuple) else value)}")
        print()
    return 0


def add_commands(add) -> None:
    """This module's subcommands and their arguments (``add(name, fn, help)``)."""
    s = add("stack", cmd_stack, "start, stop or inspect the local Kafka broker and moto server")
    s.add_argument("action", choices=["up", "down", "status"], help="what to do")
    s = add("cluster", cmd_cluster, "start, stop or inspect a standalone Flink cluster on loopback")
    s.add_argument("action", choices=["up", "down", "status"], help="what to do")
    s = add(
        "bridge",
        cmd_bridge,
        "copy a Kinesis stream into the invocations topic, exactly once (docs/aws.md)",
    )
    s.add_argument("source", choices=["kinesis"], help="where records come from")
    s.add_argument("--stream", help="Kinesis stream (default: bridge.stream)")
    s.add_argument("--check", action="store_true", help="only check the stream and credentials")
    add("config", cmd_config, "print the effective settings (secrets masked)")
