"""How long a job takes to start, planned afresh and from a cached compiled plan.

Each run is a fresh process (Python, the gateway JVM and its MiniCluster, as `genai-apm
submit` and every test start them) running one job bounded over a small file of generated
events, in three phases (wall seconds):

- assemble: interpreter, JVM, source, the analytics' views and inserts;
- submit: from `execute` to the job submitted: the optimiser (skipped when the plan is
  cached, genai_apm/flink/plan_cache.py), code generation and splitting, the job graph;
- run: deploying the tasks, compiling their generated code, reading the events, the final
  checkpoint. With a few events this is how long the job takes to get going;
- first_record: from `execute` to the source's first split fetcher starting (the Flink
  log's "Starting split fetcher"): when the job reads its first record after submission.

Three variants alternate, each repetition a fresh process: fresh (no cache), plan (the
compiled plan cached, genai_apm/flink/plan_cache.py) and split (the plan and the code
splitter's answers cached, genai_apm/flink/codesplit_cache.py: the default). The caches are
filled once before the first timed run.

    .venv/bin/python bench/startup.py --job all --repeats 3
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STARTED = time.monotonic()
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def child(args: argparse.Namespace) -> None:
    from genai_apm import jobs
    from genai_apm.flink import plan_cache
    from genai_apm.settings import config

    flink = {
        "plan_cache": bool(args.plans),
        "plan_cache_dir": args.plans,
        "codesplit_cache": args.split,
    }
    settings = config.load(path=None, environ={}).replace(
        flink=flink, stack={"state_dir": str(Path(args.output) / "state")}
    )
    t_env, statements = jobs.load(args.job).plan(
        settings, input_path=args.input, output_path=args.output
    )
    assembled = time.monotonic()
    submitted_at = time.time()
    result = plan_cache.execute(t_env, statements)
    submitted = time.monotonic()
    result.wait()
    done = time.monotonic()
    from bench.run import _flink_log, flink_phases

    # the source's first split fetcher starting, in the run's own Flink log
    first_fetch = flink_phases(_flink_log(os.environ["FLINK_LOG_DIR"]))["phase_start"]
    phases = {
        "assemble": assembled - STARTED,
        "submit": submitted - assembled,
        "run": done - submitted,
        "total": done - STARTED,
        "first_record": first_fetch - submitted_at,
    }
    print("STARTUP " + json.dumps({k: round(v, 2) for k, v in phases.items()}), flush=True)


VARIANTS = ("fresh", "plan", "split")


def run_once(job: str, events: Path, variant: str, plans: str, work: Path) -> dict:
    out = Path(tempfile.mkdtemp(dir=work))
    cmd = [sys.executable, __file__, "--child", "--job", job, "--input", str(events)]
    cmd += ["--output", str(out)]
    if variant != "fresh":
        cmd += ["--plans", plans] + (["--split"] if variant == "split" else [])
    proc = subprocess.run(cmd, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("STARTUP "):
            return json.loads(line.removeprefix("STARTUP "))
    sys.exit(f"error: the {job} run failed:\n{proc.stderr[-3000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--job", default="all")
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    parser.add_argument("--plans", default="", help=argparse.SUPPRESS)
    parser.add_argument("--split", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    from genai_apm.traffic import TrafficSpec, invocations

    work = Path(tempfile.mkdtemp(prefix="genai-apm-startup-"))
    events = work / "events" / "part-0.jsonl"
    events.parent.mkdir()
    with open(events, "w") as out:
        for event in invocations(TrafficSpec(), args.events):
            out.write(json.dumps(event) + "\n")
    plans = str(work / "plans")
    run_once(args.job, events.parent, "split", plans, work)  # fills both caches
    runs: dict[str, list[dict]] = {variant: [] for variant in VARIANTS}
    loads = [os.getloadavg()[0]]
    for i in range(args.repeats):
        for variant in VARIANTS if i % 2 == 0 else tuple(reversed(VARIANTS)):
            runs[variant].append(run_once(args.job, events.parent, variant, plans, work))
            loads.append(os.getloadavg()[0])
            print(variant, runs[variant][-1], f"load {loads[-1]:.1f}", flush=True)

    summary = {}
    print(f"\n{args.job}, {args.events} events, {args.repeats} repetitions: median (min-max) s")
    for variant, found in runs.items():
        summary[variant] = {
            phase: {
                "median": round(statistics.median(r[phase] for r in found), 1),
                "min": min(r[phase] for r in found),
                "max": max(r[phase] for r in found),
            }
            for phase in found[0]
        }
        cells = "  ".join(
            f"{phase} {v['median']:.1f} ({v['min']:.1f}-{v['max']:.1f})"
            for phase, v in summary[variant].items()
        )
        print(f"  {variant:6s}  {cells}")
    result = {
        "date": dt.date.today().isoformat(),
        "command": " ".join(["bench/startup.py", *sys.argv[1:]]),
        "job": args.job,
        "events": args.events,
        "load_average_1m": [round(x, 1) for x in loads],
        "runs": runs,
        "summary": summary,
    }
    path = ROOT / "bench" / "results" / f"startup-{result['date']}.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"written to {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
