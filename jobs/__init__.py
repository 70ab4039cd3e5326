"""Flink jobs. Each module exposes a pure ``build(...)`` and a small ``main(argv)``."""

JOBS = {
    "latency": "genai_apm.jobs.latency",
}
