"""`genai-apm consume` filters and table view for records of any topic (raw or derived).

Derived topics differ in shape (latency windows, alerts, anomalies, sessions), so a record's
time is the first of its known time fields, and a filter on a field the record lacks lets
nothing through rather than everything: `--app chat` on a topic without app_id is empty.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

from genai_apm.errors import GenaiApmError

# window results, alerts and anomalies, sessions, raw calls, raw spans: in that order
TIME_FIELDS = ("window_start", "alert_time", "session_start", "event_time", "start_time")


def record_time(record: dict) -> dt.datetime | None:
    """The record's time (epoch milliseconds or ISO-8601), or None if it has none."""
    for name in TIME_FIELDS:
        value = record.get(name)
        if value is None or value == "":
            continue
        if isinstance(value, int | float) and not isinstance(value, bool):
            return dt.datetime.fromtimestamp(value / 1000, tz=dt.UTC)
        try:
            t = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return None
        return t if t.tzinfo else t.replace(tzinfo=dt.UTC)
    return None


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str | None, latest: dt.datetime | None) -> dt.datetime | None:
    """``--since``: an ISO-8601 time (UTC unless it says otherwise), or a duration such as
    ``30m``, ``6h`` or ``2d`` back from ``latest`` (the report: its newest window; consume:
    now)."""
    if not text:
        return None
    m = _DURATION.match(text.strip())
    if m:
        if latest is None:
            return None  # nothing to count back from: no data either way
        return latest - dt.timedelta(seconds=float(m.group(1)) * _UNIT_S[m.group(2)])
    try:
        when = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise GenaiApmError(
            f"--since {text!r}: expected an ISO-8601 time (2026-01-01T00:00Z) or a duration "
            "(30m, 6h, 2d)"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class RecordFilter:
    model: str | None = None
    app: str | None = None
    since: dt.datetime | None = None

    def __call__(self, record: dict) -> bool:
        if self.model is not None and record.get("model_id") != self.model:
            return False
        if self.app is not None and record.get("app_id") != self.app:
            return False
        if self.since is not None:
            t = record_time(record)
            if t is None or t < self.since:
                return False
        return True


def table_columns(records: Sequence[dict], wanted: Sequence[str] | None = None) -> list[str]:
    """``wanted``, else every scalar field in first-seen order: maps (histograms) and lists
    would make a table unreadable, and `--columns` can still ask for them."""
    if wanted:
        return list(wanted)
    seen: dict[str, None] = {}
    for r in records:
        for k, v in r.items():
            if not isinstance(v, dict | list):
                seen.setdefault(k, None)
    return list(seen)


def table_rows(records: Sequence[dict], columns: Sequence[str]) -> list[tuple]:
    return [tuple(r.get(c) for c in columns) for r in records]
