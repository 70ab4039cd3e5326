"""Flink jobs. Each module exposes a pure ``build(...)`` and a small ``main(argv)``.

This module imports nothing: the settings (genai_apm.app_properties) check job names against
JOBS, and everything a job imports reaches the settings.
"""

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
