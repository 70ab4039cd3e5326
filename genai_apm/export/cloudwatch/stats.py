"""What one run of the exporter read, sent, retried and dead-lettered."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Stats:
    records: int = 0
    datums: int = 0  # accepted by CloudWatch (or written as EMF)
    requests: int = 0  # PutMetricData calls that succeeded
    retries: int = 0
    # what the retried requests failed with (Throttling, 500, ConnectionError, ...), so a
    # throttled exporter says so instead of only looking slow
    retry_causes: Counter = field(default_factory=Counter)
    dead_letters: int = 0  # datums (or unreadable records) sent to the dead-letter topic
    reasons: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        causes = ", ".join(f"{n:,} x {c}" for c, n in self.retry_causes.most_common(3))
        text = (
            f"{self.records:,} records -> {self.datums:,} datums in {self.requests:,} requests"
            f" ({self.retries:,} retries{': ' + causes if causes else ''});"
            f" {self.dead_letters:,} dead-lettered"
        )
        if self.reasons:
            text += ": " + "; ".join(f"{n} x {r}" for r, n in self.reasons.most_common(5))
        return text
