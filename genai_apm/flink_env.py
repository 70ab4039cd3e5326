"""TableEnvironment construction: the one place Flink runtime options are set."""

from __future__ import annotations

import sys

from genai_apm.config import Settings
from genai_apm.home import jars


def table_env(settings: Settings, job_name: str, *, streaming: bool = True):
    """A TableEnvironment with the project's connector jars, UTC time and the configured limits."""
    from pyflink.table import EnvironmentSettings, TableEnvironment

    mode = (
        EnvironmentSettings.in_streaming_mode()
        if streaming
        else EnvironmentSettings.in_batch_mode()
    )
    t_env = TableEnvironment.create(mode)
    conf = t_env.get_config()
    conf.set("pipeline.name", f"genai-apm {job_name}")
    conf.set("pipeline.jars", ";".join(p.resolve().as_uri() for p in jars("flink")))
    conf.set("parallelism.default", str(settings.flink.parallelism))
    # window boundaries and TIMESTAMP casts are UTC whatever the machine's zone
    conf.set("table.local-time-zone", "UTC")
    conf.set("table.exec.source.idle-timeout", f"{settings.flink.idle_timeout_s} s")
    # Python UDF workers (when a job has them) run in the interpreter that built the job
    conf.set("python.executable", sys.executable)
    return t_env
