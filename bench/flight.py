"""`make profile`: where a job's time goes, from Java Flight Recorder samples.

Runs one job bounded over a JSON-lines file of generated events (the file source, so Kafka is
not part of the picture) on a local MiniCluster whose JVM records a JFR profile, then reads the
execution samples back with the JDK's `jfr` tool and prints:

- samples per Flink task thread: with operator chaining every task is one thread named after
  its operators, so the busiest thread is the bottleneck of the job;
- the hottest frames (self time) and the hottest project-relevant frames on the stack;
- a collapsed-stack file (`<job>.collapsed`) beside the recording, for flamegraph.pl or
  speedscope.

    python bench/flight.py --job analytics --events 200000
    python bench/flight.py --job latency --set latency.percentiles=[0.5,0.99]

Wall times here include JVM start and job submission, and JFR costs a few percent: use
`make bench` for rates, this for proportions.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def jobs() -> list[str]:
    """The jobs over the invocation stream (ingest reads foreign formats, agents spans)."""
    from genai_apm.jobs import JOBS

    return sorted(set(JOBS) - {"ingest", "agents"})


def write_events(
    path: Path, count: int, models: int, apps: int, users: int, density: float = 50.0
) -> None:
    from genai_apm.traffic import TrafficSpec, invocations

    spec = TrafficSpec(models=models, apps=apps, users=users, rate_per_s=density)
    with open(path, "w") as out:
        for event in invocations(spec, count):
            out.write(json.dumps(event, separators=(",", ":")) + "\n")


def child(args: argparse.Namespace) -> int:
    """One bounded backfill of ``args.job`` over ``args.input``; prints its wall time."""
    from genai_apm.jobs import load
    from genai_apm.settings import config

    settings = config.load(path=None, environ={}).replace(**json.loads(args.overrides))
    job = load(args.job)
    started = time.perf_counter()
    job.backfill(settings, input_path=args.input, output_path=args.output)
    print(f"PROFILE_WALL {time.perf_counter() - started:.2f}", flush=True)
    return 0


def _thread_name(line: str) -> str:
    name = line.split("=", 1)[1].strip()
    name = re.sub(r" \(javaThreadId = \d+\)$", "", name).strip('"')
    # "Calc[3] -> ... (1/2)#0": one row per task, whatever its subtask and attempt
    return re.sub(r" \(\d+/\d+\)#\d+$", "", name)


def read_samples(recording: Path, depth: int) -> list[tuple[str, list[str]]]:
    """(thread, frames top first) of every jdk.ExecutionSample in the recording."""
    out = subprocess.run(
        [
            "jfr",
            "print",
            "--events",
            "jdk.ExecutionSample",
            "--stack-depth",
            str(depth),
            str(recording),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    samples, thread, frames, in_stack = [], None, [], False
    for raw in out.splitlines():
        line = raw.strip()
        if line.startswith("sampledThread"):
            thread = _thread_name(line)
        elif line.startswith("stackTrace = ["):
            frames, in_stack = [], True
        elif in_stack and line.startswith("]"):
            in_stack = False
            samples.append((thread or "?", frames))
        elif in_stack and line and line != "...":
            frames.append(re.sub(r"\s+line: \d+.*$", "", line))
    return samples


def _short(name: str, width: int = 110) -> str:
    return name if len(name) <= width else name[: width - 3] + "..."


def report(samples: list[tuple[str, list[str]]], collapsed: Path, top: int) -> dict:
    total = len(samples)
    threads = collections.Counter(t for t, _ in samples)
    self_frames = collections.Counter(f[0] for _, f in samples if f)
    # inclusive: a frame counts once per sample wherever it sits on the stack
    inclusive: collections.Counter = collections.Counter()
    for _, frames in samples:
        inclusive.update(set(frames))
    with open(collapsed, "w") as out:
        stacks = collections.Counter(
            ";".join([t.replace(";", ",")] + [f.replace(";", ",") for f in reversed(fr)])
            for t, fr in samples
        )
        for stack, n in stacks.most_common():
            out.write(f"{stack} {n}\n")

    def table(title: str, counter: collections.Counter) -> list[tuple[str, float]]:
        print(f"\n{title}")
        rows = []
        for name, n in counter.most_common(top):
            share = 100 * n / total
            rows.append((name, round(share, 1)))
            print(f"  {share:5.1f}%  {_short(name)}")
        return rows

    print(f"{total} samples")
    result = {
        "samples": total,
        "threads": table("samples by thread (task)", threads),
        "self": table("hottest frames (self)", self_frames),
        "inclusive": table(
            "hottest frames (inclusive, flink operators and functions)",
            collections.Counter(
                {
                    k: v
                    for k, v in inclusive.items()
                    if re.search(r"(operators|functions|Generated|codegen|genaiapm|Json)", k)
                }
            ),
        ),
    }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    c = sub.add_parser("_child")
    c.add_argument("--job", required=True)
    c.add_argument("--input", required=True)
    c.add_argument("--output", required=True)
    c.add_argument("--overrides", required=True)
    parser.add_argument("--job", choices=jobs(), default="analytics")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--keys", default="8,8,200", help="models,apps,users of the traffic")
    parser.add_argument("--parallelism", type=int, default=1)
    parser.add_argument(
        "--density", type=float, default=50.0, help="calls per event-time second of the traffic"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=JSON",
        help="a settings override, e.g. latency.percentiles=[0.5,0.99] (repeatable)",
    )
    parser.add_argument("--depth", type=int, default=96, help="stack frames kept per sample")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--out", type=Path, default=None, help="folder kept for the results")
    args = parser.parse_args(argv)
    if args.command == "_child":
        return child(args)
    if shutil.which("jfr") is None:
        print("error: the JDK's `jfr` tool is not on PATH", file=sys.stderr)
        return 1

    work = Path(tempfile.mkdtemp(prefix="genai-apm-profile-"))
    out = args.out or work
    out.mkdir(parents=True, exist_ok=True)
    models, apps, users = (int(x) for x in args.keys.split(","))
    events = work / "input" / "events.jsonl"
    events.parent.mkdir()
    write_events(events, args.events, models, apps, users, args.density)
    overrides: dict = {
        "stack": {"state_dir": str(work / "state")},
        "flink": {"parallelism": args.parallelism},
    }
    for item in args.set:
        key, _, value = item.partition("=")
        section, _, name = key.partition(".")
        overrides.setdefault(section, {})[name] = json.loads(value)
    label = f"{args.job}-p{args.parallelism}"
    recording = out / f"{label}.jfr"
    env = dict(os.environ)
    env["JAVA_TOOL_OPTIONS"] = (
        env.get("JAVA_TOOL_OPTIONS", "")
        + f" -XX:StartFlightRecording=filename={recording},settings=profile,dumponexit=true"
    ).strip()
    argv_child = [
        sys.executable,
        __file__,
        "_child",
        "--job",
        args.job,
        "--input",
        str(events.parent),
        "--output",
        str(work / "tables"),
        "--overrides",
        json.dumps(overrides),
    ]
    print(
        f"profile: {args.events:,} events, {args.job} at p{args.parallelism}, in {work}", flush=True
    )
    proc = subprocess.run(argv_child, env=env, capture_output=True, text=True)
    wall = re.findall(r"PROFILE_WALL ([\d.]+)", proc.stdout)
    if proc.returncode != 0 or not wall:
        print(proc.stdout[-2000:], proc.stderr[-4000:], sep="\n", file=sys.stderr)
        return 1
    print(
        f"wall {float(wall[0]):.1f}s (with JVM start and submission): "
        f"{args.events / float(wall[0]):,.0f} events/s",
        flush=True,
    )
    samples = read_samples(recording, args.depth)
    result = report(samples, out / f"{label}.collapsed", args.top)
    result |= {
        "job": args.job,
        "events": args.events,
        "wall_s": float(wall[0]),
        "overrides": overrides,
    }
    (out / f"{label}.json").write_text(json.dumps(result, indent=1))
    print(f"\nrecording, collapsed stacks and summary in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
