"""TableEnvironment construction: the one place Flink runtime options are set."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from genai_apm.flink import codesplit_cache, plan_cache
from genai_apm.home import jars, project_root
from genai_apm.settings.config import Settings


def _prepare_local_jvm(settings: Settings, bounded: bool = False) -> None:
    """Logs to a file and a bounded heap for the local Flink JVM (PyFlink's Java gateway,
    which also hosts the local MiniCluster): read when that JVM starts, once per process."""
    log_dir = Path(settings.stack.state_dir).resolve() / "flink-local"
    log_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("FLINK_LOG_DIR", str(log_dir))
    config = project_root() / "infra" / "flink" / "log4j-local.properties"
    os.environ.setdefault("LOG4J_PROPERTIES", str(config))
    # pyflink_gateway_server passes $JVM_ARGS to the gateway JVM; without -Xmx the JVM sizes
    # its heap from the machine (a quarter of it) and the heap grows into all of that. An
    # -Xmx the caller already put there wins (the JVM takes the last one: theirs goes last).
    if "PYFLINK_GATEWAY_PORT" not in os.environ:
        theirs = os.environ.get("JVM_ARGS", "")
        ours = [f"-Xmx{settings.flink.local_heap}"]
        # bounded runs only (flink.local_gc); the JVM refuses two collectors, and one already
        # chosen by the caller wins
        gc = settings.flink.local_gc if bounded else ""
        if gc and not re.search(r"-XX:\+Use\w*GC\b", theirs):
            ours.append(f"-XX:+Use{gc}")
        # the planner's code splitter and Janino answered from disk; once per process (the
        # JVM starts once), so later table environments skip the folder's prune
        agent = None if "-javaagent:" in theirs else codesplit_cache.jvm_option(settings)
        if agent:
            ours.append(agent)
        os.environ["JVM_ARGS"] = " ".join([*ours, theirs]).strip()


# genai-apm's Java functions (infra/udfs): SQL name -> class
JAVA_FUNCTIONS = {
    "GENAI_JSON_TEXTS": "io.genaiapm.flink.JsonTexts",
    "GENAI_TIMESTAMP": "io.genaiapm.flink.ContractTimestamp",
    "GENAI_LONG": "io.genaiapm.flink.ContractNumber$Long",
    "GENAI_DOUBLE": "io.genaiapm.flink.ContractNumber$Double",
    # mergeable log-bucketed histograms (docs/latency-rollups.md)
    "GENAI_HIST": "io.genaiapm.flink.Histograms$Build",
    "GENAI_HIST_MERGE": "io.genaiapm.flink.Histograms$Merge",
    "GENAI_HIST_QUANTILES": "io.genaiapm.flink.Histograms$Quantiles",
    "GENAI_HIST_QUANTILE": "io.genaiapm.flink.Histograms$Quantile",
    "GENAI_HIST_MULTISET": "io.genaiapm.flink.Histograms$Multiset",
    "GENAI_COUNTS_MERGE": "io.genaiapm.flink.CountsMerge",
    # the finer keys of the one per-minute aggregation, inside it (jobs/minutes.py)
    "GENAI_USER_MINUTES": "io.genaiapm.flink.KeyedMinutes$UserMinutes",
    "GENAI_SESSION_MINUTES": "io.genaiapm.flink.KeyedMinutes$SessionMinutes",
}


def create_view(t_env, name: str, sql: str) -> None:
    """``CREATE TEMPORARY VIEW name AS sql``, kept as the validated query instead of its text.

    A text view is parsed and validated again wherever it is referenced, and so are the
    views it reads, recursively: with the chains of views the analyses build on each other,
    assembling the `all` job took 57-66 s that way against 8-14 s this way (bench/plan.py,
    two alternating pairs on a loaded 2-core machine)."""
    t_env.create_temporary_view(name, t_env.sql_query(sql))


def register_functions(t_env) -> None:
    """Hand the project's jars to ``t_env`` and register its Java functions.

    Every job needs this before any DDL: sources compute their rowtime with them."""
    t_env.get_config().set("pipeline.jars", ";".join(p.resolve().as_uri() for p in jars("flink")))
    for name, class_name in JAVA_FUNCTIONS.items():
        t_env.create_java_temporary_system_function(name, class_name)


# what the local JVM's filesystems were initialised with: each initialisation makes new
# plugin class loaders, so it is done again only when the S3 options change
_local_filesystems: tuple | None = None


def init_local_filesystems(settings: Settings) -> None:
    """Load Flink's filesystem plugins (s3://) into the local JVM, with S3 options from settings.

    PyFlink's local MiniCluster runs inside the gateway JVM and nothing there calls
    FileSystem.initialize with a plugin manager, and pyflink's find_flink_home overwrites
    FLINK_PLUGINS_DIR with its own plugins folder; so s3:// paths fail with "Could not find a
    file system implementation for scheme 's3'" unless this JVM's filesystem registry is
    initialised here, over py4j, from the project's plugin folder. Under `flink run` (and on
    Managed Flink) the job talks to a client JVM (PYFLINK_GATEWAY_PORT is set) whose cluster
    loads plugins itself: re-initialising there could drop its S3 setup, so nothing happens.
    """
    if "PYFLINK_GATEWAY_PORT" in os.environ:
        return
    from pyflink.java_gateway import get_gateway

    from genai_apm.aws import flink_s3_options
    from genai_apm.home import plugins_dir

    global _local_filesystems
    options = flink_s3_options(settings.aws)
    gateway = get_gateway()
    wanted = (id(gateway), str(plugins_dir()), tuple(sorted(options.items())))
    if wanted == _local_filesystems:
        return
    jvm = gateway.jvm
    conf = jvm.org.apache.flink.configuration.Configuration()
    for key, value in options.items():
        conf.setString(key, value)
    root = jvm.java.nio.file.Paths.get(wanted[1], gateway.new_array(jvm.String, 0))
    plugin = jvm.org.apache.flink.core.plugin
    manager = plugin.DefaultPluginManager(
        plugin.DirectoryBasedPluginFinder(root).findPlugins(),
        jvm.org.apache.flink.configuration.CoreOptions.getPluginParentFirstLoaderPatterns(conf),
    )
    jvm.org.apache.flink.core.fs.FileSystem.initialize(conf, manager)
    _local_filesystems = wanted


# What job code may set on Managed Flink's FLINK-2_2 runtime, from AWS's page "Programmatic
# Flink configuration properties" (managed-flink/latest/java/programmatic-configuration.html):
# "Starting with MSF 2.2, an exception will be thrown if you try to modify a property not
# listed on this page". Its sections: pipeline.*, execution.runtime-mode, two checkpointing
# keys, Python API (python.execution-mode, python.operator-chaining.enabled,
# python.job-options) and Table API/SQL (table.exec.*, ...). table.* is taken whole here:
# which table keys the list names was not fully readable (docs/aws.md says so).
SERVICE_SETTABLE = (
    "pipeline.",
    "table.",
    "execution.runtime-mode",
    "execution.checkpointing.interval-during-backlog",
    "execution.checkpointing.unaligned",
    "python.execution-mode",
    "python.operator-chaining.enabled",
    "python.job-options",
)


class ServiceGuardedConfig:
    """A TableConfig that drops the options Managed Flink owns (checkpointing, state
    backend, parallelism, restarts, python.executable): the service sets those from the
    application's configuration and refuses them from code. Each dropped key is one line on
    stderr (the application's log), so nothing is left out silently."""

    def __init__(self, conf):
        self._conf = conf

    def set(self, key: str, value: str):
        if key.startswith(SERVICE_SETTABLE):
            return self._conf.set(key, value)
        print(
            f"genai-apm: on Managed Flink the service sets {key}; not set to {value}",
            file=sys.stderr,
        )
        return self

    def __getattr__(self, name: str):
        return getattr(self._conf, name)


def table_env(settings: Settings, job_name: str, *, streaming: bool = True, bounded: bool = False):
    """A TableEnvironment with the project's connector jars, UTC time and the configured limits."""
    _prepare_local_jvm(settings, bounded=bounded)
    from pyflink.table import EnvironmentSettings, TableEnvironment

    mode = (
        EnvironmentSettings.in_streaming_mode()
        if streaming
        else EnvironmentSettings.in_batch_mode()
    )
    t_env = TableEnvironment.create(mode)
    conf = t_env.get_config()
    if settings.flink.service_configured:  # Managed Flink: only the options it lets code set
        conf = ServiceGuardedConfig(conf)
    conf.set("pipeline.name", f"genai-apm {job_name}")
    register_functions(t_env)
    init_local_filesystems(settings)
    conf.set("parallelism.default", str(settings.flink.parallelism))
    # window boundaries and TIMESTAMP casts are UTC whatever the machine's zone
    conf.set("table.local-time-zone", "UTC")
    conf.set("table.exec.source.idle-timeout", f"{settings.flink.idle_timeout_s} s")
    interval = (
        settings.flink.bounded_checkpoint_interval_s
        if bounded
        else settings.flink.checkpoint_interval_s
    )
    conf.set("execution.checkpointing.interval", f"{interval} s")
    # Chained operators hand records on without copying them (-23% processing time on the
    # `all` job). Safe here: the SQL runtime copies where it keeps a record (state, buffers),
    # and the jobs have no DataStream functions that would hold on to an input object.
    conf.set("pipeline.object-reuse", "true")
    if "PYFLINK_GATEWAY_PORT" not in os.environ:
        # the local MiniCluster's TaskManager (its heap is the gateway JVM's -Xmx); under
        # `flink run` the cluster's own configuration decides these
        conf.set("taskmanager.memory.managed.size", settings.flink.local_managed_memory)
        conf.set("taskmanager.memory.network.min", settings.flink.local_network_memory)
        conf.set("taskmanager.memory.network.max", settings.flink.local_network_memory)
    checkpoints = (
        settings.flink.checkpoint_dir
        or (Path(settings.stack.state_dir).resolve() / "checkpoints").as_uri()
    )
    conf.set("state.backend.type", settings.flink.state_backend)
    conf.set("execution.checkpointing.storage", "filesystem")
    conf.set("execution.checkpointing.dir", checkpoints)
    # a cancelled or crashed job's last checkpoint stays, so it can be resumed
    # (flink.restore_from) instead of starting over from kafka.startup_mode
    conf.set("execution.checkpointing.externalized-checkpoint-retention", "RETAIN_ON_CANCELLATION")
    if settings.flink.restore_from:
        conf.set("execution.state-recovery.path", settings.flink.restore_from)
    if bounded:
        # a finite run that keeps failing should say so, not restart for ever
        conf.set("restart-strategy.type", "fixed-delay")
        conf.set("restart-strategy.fixed-delay.attempts", "2")
        conf.set("restart-strategy.fixed-delay.delay", "2 s")
    # Every analytic reads the `invocations` views; each INSERT inlines them, and without
    # this the planner pushes each consumer's projection into its own copy of the parse and
    # contract checks: 6 copies in the analytics job (200k events: 69 s without, 32 s with,
    # bench/flight.py).
    # Finding common sub-plans by digest optimises the shared part once, as one block.
    conf.set("table.optimizer.reuse-optimize-block-with-digest-enabled", "true")
    # Operators get no explicit uids, whether the job was planned now or its compiled plan
    # loaded from the cache (Flink's default gives uids to compiled plans only): a checkpoint
    # then restores into the same job either way
    conf.set("table.exec.uid.generation", "DISABLED")
    plans = plan_cache.folder(settings)
    if plans is not None:
        conf.set(plan_cache.DIR_OPTION, str(plans))
    # Python UDF workers (when a job has them) run in the interpreter that built the job
    conf.set("python.executable", sys.executable)
    return t_env
