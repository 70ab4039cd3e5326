"""Flink jobs. Each module exposes a pure ``build(...)`` and a small ``main(argv)``."""

JOBS = {
    "ingest": "genai_apm.jobs.ingest",
    "latency": "genai_apm.jobs.latency",
    "errors": "genai_apm.jobs.errors",
    "cost": "genai_apm.jobs.cost",
    "analytics": "genai_apm.jobs.analytics",
    "agents": "genai_apm.jobs.agents",
    "anomalies": "genai_apm.jobs.anomalies",
}
