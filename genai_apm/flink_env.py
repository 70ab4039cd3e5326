"""TableEnvironment construction: the one place Flink runtime options are set."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from genai_apm.config import Settings
from genai_apm.home import jars, project_root


def _quiet_local_logging(settings: Settings) -> None:
    """Send the local Flink JVM's logs to a file: read before that JVM starts, once."""
    log_dir = Path(settings.stack.state_dir).resolve() / "flink-local"
    log_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("FLINK_LOG_DIR", str(log_dir))
    config = project_root() / "infra" / "flink" / "log4j-local.properties"
    os.environ.setdefault("LOG4J_PROPERTIES", str(config))


# genai-apm's Java functions (infra/udfs): SQL name -> class
JAVA_FUNCTIONS = {
    "GENAI_JSON_TEXTS": "io.genaiapm.flink.JsonTexts",
    "GENAI_TIMESTAMP": "io.genaiapm.flink.ContractTimestamp",
}


def register_functions(t_env) -> None:
    """Hand the project's jars to ``t_env`` and register its Java functions.

    Every job needs this before any DDL: sources compute their rowtime with them."""
    t_env.get_config().set("pipeline.jars", ";".join(p.resolve().as_uri() for p in jars("flink")))
    for name, class_name in JAVA_FUNCTIONS.items():
        t_env.create_java_temporary_system_function(name, class_name)


# A bounded run ends with a final checkpoint that commits its Parquet files; waiting a
# whole production interval for it would only slow backfills and tests down.
BOUNDED_CHECKPOINT_INTERVAL = "2 s"


def table_env(settings: Settings, job_name: str, *, streaming: bool = True, bounded: bool = False):
    """A TableEnvironment with the project's connector jars, UTC time and the configured limits."""
    _quiet_local_logging(settings)
    from pyflink.table import EnvironmentSettings, TableEnvironment

    mode = (
        EnvironmentSettings.in_streaming_mode()
        if streaming
        else EnvironmentSettings.in_batch_mode()
    )
    t_env = TableEnvironment.create(mode)
    conf = t_env.get_config()
    conf.set("pipeline.name", f"genai-apm {job_name}")
    register_functions(t_env)
    conf.set("parallelism.default", str(settings.flink.parallelism))
    # window boundaries and TIMESTAMP casts are UTC whatever the machine's zone
    conf.set("table.local-time-zone", "UTC")
    conf.set("table.exec.source.idle-timeout", f"{settings.flink.idle_timeout_s} s")
    interval = f"{settings.flink.checkpoint_interval_s} s"
    conf.set(
        "execution.checkpointing.interval", BOUNDED_CHECKPOINT_INTERVAL if bounded else interval
    )
    # Python UDF workers (when a job has them) run in the interpreter that built the job
    conf.set("python.executable", sys.executable)
    return t_env
