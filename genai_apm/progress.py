"""Progress bars for long CLI work (generate, replay, backfill), on stderr and only on a terminal.

Piped or logged stderr gets nothing from here: carriage-return redraws make logs unreadable,
and the commands print their one-line result on stdout anyway. No dependency: a bar is one
redrawn line, throttled to ten redraws a second so it never costs throughput.
"""

from __future__ import annotations

import itertools
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TextIO, TypeVar

T = TypeVar("T")
WIDTH = 24
SPINNER = "|/-\\"


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def render(label: str, done: int, total: int | None, elapsed_s: float) -> str:
    """One line: a bar with percentage and time left when the total is known, else a count;
    the rate either way."""
    rate = done / elapsed_s if elapsed_s > 0 else 0.0
    if total:
        share = min(done / total, 1.0)
        filled = int(share * WIDTH)
        left = (total - done) / rate if rate > 0 and done < total else 0.0
        return (
            f"{label} [{'#' * filled}{'.' * (WIDTH - filled)}] {share:4.0%} "
            f"{done:,}/{total:,} {rate:,.0f}/s, {_duration(left)} left"
        )
    return f"{label} {done:,} {rate:,.0f}/s, {_duration(elapsed_s)}"


class Bar:
    """``advance()`` as work is done, ``close()`` at the end (also as a context manager)."""

    def __init__(
        self,
        label: str,
        total: int | None = None,
        stream: TextIO | None = None,
        enabled: bool | None = None,
    ):
        self.label, self.total, self.done = label, total, 0
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.start = self._last = time.monotonic()
        self._width = 0

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if self.enabled and now - self._last >= 0.1:
            self._last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        line = render(self.label, self.done, self.total, now - self.start)
        # pad over a longer previous line instead of relying on terminal escape codes
        self.stream.write("\r" + line.ljust(self._width))
        self.stream.flush()
        self._width = len(line)

    def close(self) -> None:
        if self.enabled:
            self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()
            self.enabled = False

    def __enter__(self) -> Bar:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def track(
    items: Iterable[T],
    label: str,
    total: int | None = None,
    *,
    counts=lambda item: True,
    stream: TextIO | None = None,
    enabled: bool | None = None,
) -> Iterator[T]:
    """Pass ``items`` through, advancing a bar for each item ``counts`` accepts."""
    with Bar(label, total, stream, enabled) as bar:
        for item in items:
            yield item
            if counts(item):
                bar.advance()


@contextmanager
def elapsed(label: str, stream: TextIO | None = None, enabled: bool | None = None):
    """For one long call with no count to show (a Flink job): a spinner and the time so far."""
    stream = stream or sys.stderr
    if not (stream.isatty() if enabled is None else enabled):
        yield
        return
    stop, start = threading.Event(), time.monotonic()

    def spin() -> None:
        for frame in itertools.count():  # until stopped
            if stop.wait(0.25):
                break
            mark = SPINNER[frame % len(SPINNER)]
            stream.write(f"\r{label} {mark} {_duration(time.monotonic() - start)}")
            stream.flush()

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        stream.write(f"\r{label} done in {_duration(time.monotonic() - start)}\n")
        stream.flush()
