"""`make run`: the embedded default, end to end, in about a minute.

Starts the local stack (unless it is already up), generates a few minutes of event time,
runs the latency job to the end of what was produced, prints the per-model table, and stops
whatever this run started.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import contextmanager

from genai_apm import generator, kafka_io
from genai_apm.config import Settings
from genai_apm.stack.local import LocalStack

MALFORMED = (b"{not json", b'{"event_time": "yesterday", "model_id": "m"}', b"\xff\xfe\x00")


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


def format_table(rows: list[dict], percentiles: tuple[float, ...]) -> str:
    """Per-model rows of the tumbling windows (app_id = '*'), as an aligned text table."""
    from genai_apm.jobs.latency import ALL, percentile_name

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
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def fmt(line: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < 2 else c.rjust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        )

    return "\n".join([fmt(header), "  ".join("-" * w for w in widths), *map(fmt, body)])


def _num(value) -> str:
    return "-" if value is None else f"{value:,.0f}"


def run_demo(
    settings: Settings,
    *,
    minutes: int = 5,
    rate_per_s: float = 60.0,
    out: Callable[[str], None] = print,
) -> list[dict]:
    from genai_apm.jobs import latency

    stack = LocalStack(settings)
    # the demo always talks to the embedded broker, whatever kafka.bootstrap_servers says
    settings = settings.replace(kafka={"bootstrap_servers": stack.kafka.bootstrap})
    kafka, topics = settings.kafka, settings.topics
    progress = Progress(5, out)
    with progress.step("starting the local stack (Kafka 4 KRaft broker, moto)"):
        started = stack.up()
    try:
        count = int(minutes * 60 * rate_per_s)
        with progress.step(
            f"producing {count:,} invocation events ({minutes} min of event "
            f"time) and {len(MALFORMED)} malformed records"
        ):
            kafka_io.ensure_topics(kafka, [topics.invocations, topics.latency, topics.deadletter])
            # read only what this run writes, even if earlier runs left data in the topics
            start = {
                t: kafka_io.end_offsets(kafka, t)
                for t in (topics.invocations, topics.latency, topics.deadletter)
            }
            spec = generator.TrafficSpec(rate_per_s=rate_per_s)
            kafka_io.produce_json(
                kafka, topics.invocations, generator.invocations(spec, count), key_field="model_id"
            )
            kafka_io.produce_raw(kafka, topics.invocations, MALFORMED)
        with progress.step("running the latency job on a local Flink MiniCluster", ticker=True):
            latency.run(settings, bounded=True, wait=True, start_offsets=start[topics.invocations])
        with progress.step("reading the results"):
            rows = kafka_io.consume_json(
                kafka, topics.latency, start=start[topics.latency], until_end=True
            )
            dead = kafka_io.consume_json(
                kafka, topics.deadletter, start=start[topics.deadletter], until_end=True
            )
        out("")
        out(format_table(rows, settings.latency.percentiles))
        out("")
        out(
            f"{len(rows)} window results in topic {topics.latency}, {len(dead)} dead letters "
            f"in {topics.deadletter} (Kafka at {kafka.bootstrap_servers})."
        )
        out(
            f"Read them again with `genai-apm consume {topics.latency}` while the stack is up "
            "(`make up`)."
        )
        return rows
    finally:
        with progress.step("stopping what this run started: " + (", ".join(started) or "nothing")):
            stack.down(only=started)
