"""How records reach a sink: at a wall-clock rate, with progress reports, slightly out of
order. Generic over the items, so they work for Records and for bare event dicts."""

from __future__ import annotations

import heapq
import itertools
import random
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from genai_apm.traffic.spec import Record, record_time

T = TypeVar("T")


def paced(
    items: Iterable[T],
    events_per_s: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    max_lag_s: float = 1.0,
) -> Iterator[T]:
    """Yield items no faster than ``events_per_s`` of wall-clock time.

    Item i is due at start + i / events_per_s. A consumer that falls behind catches up in a
    burst of at most ``max_lag_s`` worth of items; beyond that the schedule restarts, so a
    long pause does not turn into a flood.
    """
    if events_per_s <= 0:
        raise ValueError("events_per_s must be positive")
    interval = 1.0 / events_per_s
    due = clock()
    for item in items:
        now = clock()
        if due > now:
            sleep(due - now)
        elif now - due > max_lag_s:
            due = now
        yield item
        due += interval


def with_progress(
    items: Iterable[T], on_progress: Callable[[int], None], every: int = 10_000
) -> Iterator[T]:
    """Pass items through, calling ``on_progress(n)`` after every ``every`` items and once
    with the final count when the items run out."""
    n = 0
    for n, item in enumerate(items, start=1):  # noqa: B007 - n is the count afterwards
        yield item
        if n % every == 0:
            on_progress(n)
    if n % every or n == 0:
        on_progress(n)


def _time_of(item) -> float:
    if isinstance(item, Record):
        return record_time(item)
    return item["event_time"] if "event_time" in item else item["start_time"]


def with_disorder(items: Iterable[T], max_ms: float, seed: int) -> Iterator[T]:
    """Reorder time-ordered items as a network would: each is delayed by up to ``max_ms``
    and released in delay order. Any item comes at most ``max_ms`` of event time after
    one it precedes in time, so a watermark of ``max_ms`` loses nothing. Events are not
    changed."""
    rng = random.Random(seed)
    heap: list[tuple[float, int, T]] = []
    order = itertools.count()
    for item in items:
        t = _time_of(item)
        # everything that arrives before this item could have was released already
        while heap and heap[0][0] <= t:
            yield heapq.heappop(heap)[2]
        heapq.heappush(heap, (t + rng.uniform(0, max_ms), next(order), item))
    while heap:
        yield heapq.heappop(heap)[2]
