"""The jobs (genai_apm.jobs.JOBS) and the topics they read and write."""

from __future__ import annotations

from genai_apm.settings.config import Settings


def _topics(settings: Settings) -> tuple[list[str], list[str]]:
    """(topics some job reads, topics some job writes): ingest writes the native topics the
    others read, so every topic in settings.topics is written by one job or another."""
    import dataclasses

    from genai_apm.jobs import input_topics

    reads = sorted({t for job in _jobs() for t in input_topics(job, settings)})
    writes = sorted({getattr(settings.topics, f.name) for f in dataclasses.fields(settings.topics)})
    return reads, writes


def _jobs() -> dict[str, str]:
    from genai_apm.jobs import JOBS

    return JOBS
