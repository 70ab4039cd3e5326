"""Flink jobs. Each module declares its job as ``SPEC`` (jobs/runner.py: its analytics, run
by one runner streaming, bounded or as a backfill) and exposes ``run``, ``backfill``, ``main``.

This module is the catalogue (the jobs by name, what each reads, ``load``) and imports no job
and not the settings: genai_apm.settings.app_properties checks job names against JOBS while the
settings load, and the tools (CLI, generated infrastructure) read it without loading a job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from genai_apm.adapters.base import FORMATS
from genai_apm.errors import GenaiApmError

if TYPE_CHECKING:
    from genai_apm.jobs.runner import Job
    from genai_apm.settings.config import Settings

JOBS = {
    "ingest": "genai_apm.jobs.ingest",
    "latency": "genai_apm.jobs.latency",
    "errors": "genai_apm.jobs.errors",
    "cost": "genai_apm.jobs.cost",
    "slo": "genai_apm.jobs.slo",  # SLOs, error budgets, quota headroom
    "analytics": "genai_apm.jobs.analytics",
    "agents": "genai_apm.jobs.agents",
    "anomalies": "genai_apm.jobs.anomalies",
    "all": "genai_apm.jobs.all",  # analytics + anomalies, one source
}


def module(name: str) -> str:
    """The module of the job ``name`` (what `flink run -pym` starts)."""
    if name not in JOBS:
        raise GenaiApmError(f"unknown job {name!r} (known: {', '.join(sorted(JOBS))})")
    return JOBS[name]


def load(name: str) -> Job:
    """The job ``name``'s spec (genai_apm.jobs.runner.Job); its module is imported only now,
    so the catalogue stays free of every job's imports."""
    import importlib

    return importlib.import_module(module(name)).SPEC


def parse_sources(entries: tuple[str, ...]) -> list[tuple[str, str]]:
    """``("topic=format", ...)`` -> ``[(topic, format)]``, rejecting unknown formats."""
    sources = []
    for entry in entries:
        topic, sep, fmt = entry.rpartition("=")
        if not sep or not topic or fmt not in FORMATS:
            raise GenaiApmError(
                f"ingest.sources entry {entry!r} is not TOPIC=FORMAT with FORMAT one of "
                + ", ".join(FORMATS)
            )
        sources.append((topic, fmt))
    if not sources:
        raise GenaiApmError("ingest.sources is empty: nothing to read")
    return sources


# what a job reads: records in any supported format (ingest), validated SpanEvents, or (every
# other job) validated InvocationEvents
SOURCE_KINDS = {"ingest": "records", "agents": "spans"}
# ingest writes topics for the other jobs, not tables: there is nothing to backfill
BACKFILL_JOBS = tuple(job for job in JOBS if job != "ingest")


def source_kind(job: str) -> str:
    return SOURCE_KINDS.get(job, "invocations")


def input_topics(job: str, settings: Settings) -> list[str]:
    """The Kafka topics a job reads: a Kafka source whose topic is missing fails and
    restarts forever, so the CLI checks these before it submits anything."""
    kind = source_kind(job)
    if kind == "records":
        return [topic for topic, _ in parse_sources(settings.ingest.sources)]
    if kind == "spans":
        return [settings.topics.spans]
    return [settings.topics.invocations]
