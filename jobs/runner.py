"""One runner for every job: a job is a declared spec (its name, what it reads, its analytics),
run streaming from Kafka, bounded from Kafka, or as a backfill over files, all the same way.

The source follows the job's kind (genai_apm.jobs.SOURCE_KINDS): validated InvocationEvents,
SpanEvents, or (ingest) records in any supported format. Each analytic is an ``assemble``:
it adds its views and inserts to the job's statement set and writes through the sink factory
(jobs/sinks.py) it is handed, bound to the job's name and settings.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

from genai_apm.settings.config import Settings

# An analytic: (t_env, settings, statements, sinks: jobs.sinks.Sinks) -> None
Assemble = Callable[..., None]


def execute(t_env, statements, job: str, *, wait: bool | None = None) -> str:
    """Execute a statement set; wait for the end unless detached (``flink run -d``)."""
    from genai_apm.flink import plan_cache

    result = plan_cache.execute(t_env, statements)
    client = result.get_job_client()
    job_id = str(client.get_job_id()) if client is not None else "?"
    print(f"submitted {job} job {job_id}", flush=True)
    if wait is None:
        # `flink run -d` sets execution.attached=false: submit and return
        wait = t_env.get_config().get("execution.attached", "true") != "false"
    if wait:
        result.wait()
    return job_id


@dataclass(frozen=True)
class Prepared:
    """A job's environment before its analytics are added."""

    name: str
    t_env: object
    settings: Settings
    sinks: object  # jobs.sinks.Sinks
    rejected: str | None  # the view of the records breaking their contract


@dataclass(frozen=True)
class Job:
    """A job: its name (genai_apm.jobs.JOBS, which also gives its source kind) and analytics."""

    name: str
    analytics: tuple[Assemble, ...]

    @property
    def source(self) -> str:
        from genai_apm.jobs import source_kind

        return source_kind(self.name)

    def prepare(
        self,
        settings: Settings,
        *,
        bounded: bool = False,
        start_offsets: dict[int, int] | None = None,
        input_path: str | None = None,
        output_path: str | None = None,
    ) -> Prepared:
        """The job's table environment with its source registered, and its sink factory:
        from Kafka, or with ``input_path`` a backfill of files into ``output_path`` (no Kafka
        at all)."""
        from genai_apm.flink.env import table_env
        from genai_apm.jobs import sources
        from genai_apm.jobs.sinks import Sinks

        backfill = input_path is not None
        name = f"{self.name} backfill" if backfill else self.name
        t_env = table_env(settings, name, bounded=bounded or backfill)
        if backfill:
            rejected = sources.from_files(self.source, t_env, settings, input_path)
        else:
            rejected = sources.from_kafka(
                self.source, t_env, settings, bounded=bounded, start_offsets=start_offsets
            )
        tables_path = output_path if backfill else settings.output.tables_path
        sinks = Sinks(t_env, settings, name, kafka=not backfill, tables_path=tables_path)
        return Prepared(name, t_env, settings, sinks, rejected)

    def assemble(self, prepared: Prepared):
        """Every analytic's views and inserts, and the dead letters, in one statement set."""
        from genai_apm.jobs import sources

        statements = prepared.t_env.create_statement_set()
        for assemble in self.analytics:
            assemble(prepared.t_env, prepared.settings, statements, prepared.sinks)
        if prepared.rejected:  # once per job, whatever analytics it runs
            sources.add_deadletters(statements, prepared.sinks, prepared.rejected)
        return statements

    def plan(self, settings: Settings, **where):
        """The table environment and the statement set ready to execute (``prepare``'s
        options)."""
        prepared = self.prepare(settings, **where)
        return prepared.t_env, self.assemble(prepared)

    def run(
        self,
        settings: Settings,
        *,
        bounded: bool = False,
        wait: bool | None = None,
        start_offsets: dict[int, int] | None = None,
    ) -> str:
        """Kafka -> the analytics' topics and Parquet tables, plus dead letters."""
        t_env, statements = self.plan(settings, bounded=bounded, start_offsets=start_offsets)
        return execute(t_env, statements, self.name, wait=wait)

    def backfill(self, settings: Settings, *, input_path: str, output_path: str) -> str:
        """The same analytics, bounded, over native JSON-lines files: tables, and alerts and
        dead letters as JSON lines, under ``output_path``."""
        t_env, statements = self.plan(settings, input_path=input_path, output_path=output_path)
        return execute(t_env, statements, f"{self.name} backfill", wait=True)

    def main(self, argv: list[str] | None = None) -> int:
        """``python -m genai_apm.jobs.<job>``: what `flink run` and Managed Flink start."""
        from genai_apm.settings import config

        parser = argparse.ArgumentParser(prog=f"genai-apm submit {self.name}")
        parser.add_argument(
            "--bounded",
            action="store_true",
            help="stop at the offsets that are latest when the job starts",
        )
        parser.add_argument("--config", help="config file (TOML); env vars still override it")
        args = parser.parse_args(argv)
        self.run(config.load(args.config), bounded=args.bounded)
        return 0


def combined(name: str, *jobs: Job) -> Job:
    """One job running other jobs' analytics, so they share its source, parse, contract
    checks and dead-letter stream."""
    return Job(name, tuple(a for job in jobs for a in job.analytics))
