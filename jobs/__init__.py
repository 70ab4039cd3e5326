"""Flink jobs. Each module exposes a pure ``build(...)`` and a small ``main(argv)``."""

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


def input_topics(job: str, settings) -> list[str]:
    """The Kafka topics a job reads: a Kafka source whose topic is missing fails and
    restarts forever, so the CLI checks these before it submits anything."""
    if job == "ingest":
        from genai_apm.jobs.ingest import parse_sources

        return [topic for topic, _ in parse_sources(settings.ingest.sources)]
    if job == "agents":
        return [settings.topics.spans]
    return [settings.topics.invocations]
