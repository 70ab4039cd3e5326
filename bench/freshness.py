"""Freshness, lag and memory over time of the streaming pipeline (the bench's soak).

While an unbounded job runs, a paced producer sends events stamped with the wall clock
(event_time = now). A consumer of the job's latency topic notes when each 1-minute row
becomes readable; since event time is wall time, a window closes at its `window_end`, and

    freshness = readable_at - window_end

is how long after the window's last event its result can be read (the issue's "produce to
readable, minus the window length"). It includes the watermark delay (`flink.watermark_delay_s`):
no window can close before it. Two readers watch the topic: a read_committed one (what the
project's consumers and any exactly-once reader see: a result becomes readable when the
checkpoint after it commits its transaction) and a read_uncommitted one (when the job wrote
it: what `flink.delivery_guarantee = "at-least-once"` would show, and the job's own lag).
The first window (a partial one, with the job still warming up) is left out; so are the
last ones, which no later event closes. A sampler notes the resident memory of the job's
JVM every few seconds.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Callable, Iterator

from bench.memory import rss_mb

MINUTE_MS = 60_000


def stamped_now(events: Iterator[dict], rate: float) -> Iterator[dict]:
    """Events at ``rate`` per wall second, each with event_time = the moment it is sent."""
    from genai_apm.traffic import paced

    for event in paced(events, rate):
        event["event_time"] = int(time.time() * 1000)
        yield event


def until(events: Iterator[dict], deadline: float) -> Iterator[dict]:
    """``events`` up to the wall time ``deadline`` (epoch seconds)."""
    for event in events:
        if time.time() >= deadline:
            return
        yield event


class RowWatcher(threading.Thread):
    """Reads a topic from the beginning; keeps (readable_at, row) for every 1-minute row."""

    def __init__(self, kafka_settings, topic: str, isolation: str = "read_committed"):
        super().__init__(daemon=True)
        self.kafka_settings, self.topic, self.isolation = kafka_settings, topic, isolation
        self.rows: list[tuple[float, dict]] = []
        self.stop = threading.Event()
        self.error: str | None = None

    def run(self) -> None:
        from kafka import KafkaConsumer, TopicPartition

        from genai_apm.kafka.io import client_args

        try:
            consumer = KafkaConsumer(
                **client_args(self.kafka_settings),
                enable_auto_commit=False,
                isolation_level=self.isolation,
            )
            tps = [
                TopicPartition(self.topic, p)
                for p in sorted(consumer.partitions_for_topic(self.topic))
            ]
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            while not self.stop.is_set():
                polled = consumer.poll(timeout_ms=200)
                readable_at = time.time()
                for records in polled.values():
                    for r in records:
                        row = json.loads(r.value)
                        if row.get("window") == "1m":
                            self.rows.append((readable_at, row))
            consumer.close()
        except Exception as e:  # reported in the result, not lost in a thread
            self.error = f"{type(e).__name__}: {e}"


class MemorySampler(threading.Thread):
    """VmRSS of the process ``pid_of()`` names, every ``period_s``: [(seconds, MiB)]."""

    def __init__(self, pid_of: Callable[[], int | None], period_s: float = 5.0):
        super().__init__(daemon=True)
        self.pid_of, self.period_s = pid_of, period_s
        self.samples: list[tuple[float, float]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        started = time.monotonic()
        while not self.stop.wait(self.period_s):
            pid = self.pid_of()
            mb = rss_mb(pid) if pid else None
            if mb is not None:
                self.samples.append((round(time.monotonic() - started, 1), round(mb, 1)))


def _epoch_s(timestamp: str) -> float:
    return dt.datetime.fromisoformat(timestamp).timestamp()


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def freshness(rows: list[tuple[float, dict]], produce_start: float, produce_end: float) -> dict:
    """Freshness of the rows of every full window that closed while events still flowed."""
    per_row, last_row_of_window = [], {}
    for readable_at, row in rows:
        end = _epoch_s(row["window_end"])
        start = _epoch_s(row["window_start"])
        if start < produce_start or end > produce_end:
            continue  # partial first window, or a window no later event closes
        lag = readable_at - end
        per_row.append(lag)
        last_row_of_window[end] = max(last_row_of_window.get(end, lag), lag)
    complete = list(last_row_of_window.values())
    return {
        "windows": len(complete),
        "rows": len(per_row),
        "p50_s": _round(percentile(per_row, 0.5)),
        "p99_s": _round(percentile(per_row, 0.99)),
        "max_s": _round(max(per_row, default=None)),
        "window_complete_p50_s": _round(percentile(complete, 0.5)),
        "window_complete_p99_s": _round(percentile(complete, 0.99)),
    }


def lag_trend(rows: list[tuple[float, dict]], produce_start: float, produce_end: float) -> dict:
    """Whether the job keeps up: each closed window's freshness (its last row) against the
    window's end. A job at capacity reads every window equally late; one that falls behind
    reads each later than the one before. Slope in seconds per minute of run, least squares."""
    last: dict[float, float] = {}
    for readable_at, row in rows:
        start, end = _epoch_s(row["window_start"]), _epoch_s(row["window_end"])
        if start < produce_start or end > produce_end:
            continue
        last[end] = max(last.get(end, 0.0), readable_at - end)
    points = sorted(last.items())
    if len(points) < 3:
        return {"windows": len(points), "slope_s_per_min": None}
    n = len(points)
    slope = _slope(points)
    third = max(n // 3, 1)
    return {
        "windows": n,
        "first_third_p50_s": _round(percentile([lag for _, lag in points[:third]], 0.5)),
        "last_third_p50_s": _round(percentile([lag for _, lag in points[-third:]], 0.5)),
        "slope_s_per_min": round(slope * 60, 3),
    }


def memory_trend(samples: list[tuple[float, float]]) -> dict:
    """First, peak and last RSS, and the least-squares slope over the second half of the run
    (after start-up and the first windows): MiB per minute, ~0 when memory is flat."""
    if len(samples) < 4:
        return {"samples": samples, "slope_mb_per_min_second_half": None}
    slope = _slope(samples[len(samples) // 2 :])
    return {
        "first_mb": samples[0][1],
        "peak_mb": max(m for _, m in samples),
        "last_mb": samples[-1][1],
        "slope_mb_per_min_second_half": round(slope * 60, 2),
        "samples": samples,
    }


def _slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y over x (per second when x is in seconds); 0 for one x."""
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    var = sum((x - mean_x) ** 2 for x, _ in points)
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / var if var else 0.0


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
