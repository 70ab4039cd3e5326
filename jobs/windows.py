"""Event-time windows shared by the analytics: a name, a size and an optional hop.

A window's name is its table suffix and the value of the `window` column (1m, 5m, 1h, 1d),
so a job's outputs say which window a row belongs to.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Window:
    name: str  # table suffix and the `window` column: 1m, 5m, 1h
    size_min: int
    hop_min: int | None = None  # None: tumbling

    def tvf(self, relation: str, time_column: str = "event_ts") -> str:
        size = _minutes(self.size_min)
        if self.hop_min is None:
            return f"TUMBLE(TABLE {relation}, DESCRIPTOR({time_column}), {size})"
        hop = _minutes(self.hop_min)
        return f"HOP(TABLE {relation}, DESCRIPTOR({time_column}), {hop}, {size})"


def _minutes(n: int) -> str:
    # MINUTE alone allows two digits; a day is 1440 minutes
    return f"INTERVAL '{n}' MINUTE" if n < 100 else f"INTERVAL '{n}' MINUTE({len(str(n))})"


def duration_name(minutes: int) -> str:
    """60 -> 1h, 1440 -> 1d, 5 -> 5m: the shortest exact unit."""
    for unit, length in (("d", 1440), ("h", 60)):
        if minutes % length == 0:
            return f"{minutes // length}{unit}"
    return f"{minutes}m"


def tumbling_and_sliding(tumbling_min: int, sliding_min: int, hop_min: int) -> list[Window]:
    """The standard pair: a tumbling window and a sliding one (named by size in minutes)."""
    return [
        Window(f"{tumbling_min}m", tumbling_min),
        Window(f"{sliding_min}m", sliding_min, hop_min),
    ]
