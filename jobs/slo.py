"""SLOs over the shared per-minute aggregation (issue 18 builds them here).

``minute_aggregates`` is the hook jobs/minutes.py calls: the exact per-threshold good-event
counts the SLOs need, as (column, aggregate over minute_events); none until SLOs exist.
"""

from __future__ import annotations

from genai_apm.config import Settings


def minute_aggregates(settings: Settings) -> list[tuple[str, str]]:
    return []
