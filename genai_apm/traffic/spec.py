"""What traffic to generate (``TrafficSpec``) and what comes out (``Record``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from genai_apm.schemas.invocation import INVOCATION_V1
from genai_apm.schemas.span import SPAN_V1
from genai_apm.traffic.incidents import Incident

INVOCATION = INVOCATION_V1.name  # "InvocationEvent"
SPAN = SPAN_V1.name  # "SpanEvent"
EPOCH_2026_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z: a fixed epoch, so runs repeat


class Record(NamedTuple):
    contract: str  # INVOCATION or SPAN
    event: dict


def record_time(record: Record) -> int:
    """Event time in epoch ms: a call's send time, a span's start."""
    event = record.event
    return event["event_time"] if record.contract == INVOCATION else event["start_time"]


@dataclass(frozen=True)
class TrafficSpec:
    start_ms: int = EPOCH_2026_MS
    rate_per_s: float = 50.0  # InvocationEvents per second of event time (the daily mean)
    duration_s: float | None = None  # event time covered; None: no limit
    count: int | None = None  # stop after this many InvocationEvents; None: no limit
    seed: int = 7
    models: int = 8
    apps: int = 8  # plain apps; the catalogue's agents come on top when agents run
    users: int = 200
    error_rate: float = 0.04
    diurnal: bool = False  # follow DIURNAL_CURVE by UTC hour of event time
    agent_share: float = 0.0  # share of InvocationEvents made by agents (with spans)
    incidents: tuple[Incident, ...] = ()

    def __post_init__(self) -> None:
        if self.rate_per_s <= 0:
            raise ValueError("rate_per_s must be positive")
        if not 0 <= self.error_rate <= 1 or not 0 <= self.agent_share <= 1:
            raise ValueError("error_rate and agent_share are shares between 0 and 1")
        if self.duration_s is not None and self.duration_s < 0:
            raise ValueError("duration_s must not be negative")
        if self.count is not None and self.count < 0:
            raise ValueError("count must not be negative")
        object.__setattr__(self, "incidents", tuple(self.incidents))
