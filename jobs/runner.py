"""What every job's ``main`` shares: arguments, settings, submission, and waiting when attached."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from genai_apm.config import Settings


def execute(t_env, statements, job: str, *, wait: bool | None = None) -> str:
    """Execute a statement set; wait for the end unless detached (``flink run -d``)."""
    from genai_apm import plan_cache

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


def job_main(job: str, run: Callable[..., str], argv: list[str] | None) -> int:
    from genai_apm import config

    parser = argparse.ArgumentParser(prog=f"genai-apm submit {job}")
    parser.add_argument(
        "--bounded",
        action="store_true",
        help="stop at the offsets that are latest when the job starts",
    )
    parser.add_argument("--config", help="config file (TOML); env vars still override it")
    args = parser.parse_args(argv)
    settings: Settings = config.load(args.config)
    run(settings, bounded=args.bounded)
    return 0


# An analytic over the invocation stream: adds its sinks and inserts to a statement set.
# (t_env, settings, statements, *, kafka_outputs, tables_path) -> None
Assemble = Callable[..., None]


def combined(*modules: str) -> Assemble:
    """One job's ``assemble`` made of other jobs' (module names under genai_apm.jobs), so
    they share its source, parse, contract checks and dead-letter stream."""

    def assemble(
        t_env, settings: Settings, statements, *, kafka_outputs: bool, tables_path: str
    ) -> None:
        import importlib

        for name in modules:
            importlib.import_module(f"genai_apm.jobs.{name}").assemble(
                t_env, settings, statements, kafka_outputs=kafka_outputs, tables_path=tables_path
            )

    return assemble


def run_streaming(
    job: str,
    settings: Settings,
    assemble: Assemble,
    *,
    bounded: bool = False,
    wait: bool | None = None,
    start_offsets: dict[int, int] | None = None,
) -> str:
    """Kafka (native events) -> ``assemble``'s topics and Parquet tables, plus dead letters."""
    from genai_apm.flink_env import table_env
    from genai_apm.jobs import sources

    t_env = table_env(settings, job, bounded=bounded)
    sources.kafka_invocations(t_env, settings, bounded=bounded, start_offsets=start_offsets)
    statements = t_env.create_statement_set()
    assemble(
        t_env, settings, statements, kafka_outputs=True, tables_path=settings.output.tables_path
    )
    sources.add_deadletters(t_env, settings, statements)
    return execute(t_env, statements, job, wait=wait)


def run_backfill(
    job: str, settings: Settings, assemble: Assemble, *, input_path: str, output_path: str
) -> str:
    """The same analytics, bounded, over native JSON-lines files: tables, and alerts and dead
    letters as JSON lines, under ``output_path``."""
    from genai_apm.flink_env import table_env
    from genai_apm.jobs import sources

    name = f"{job} backfill"
    t_env = table_env(settings, name, bounded=True)
    sources.file_invocations(t_env, settings, input_path)
    statements = t_env.create_statement_set()
    assemble(t_env, settings, statements, kafka_outputs=False, tables_path=output_path)
    sources.add_deadletters(t_env, settings, statements, tables_path=output_path)
    return execute(t_env, statements, name, wait=True)


def entry_points(job: str, assemble: Assemble):
    """A job module's ``run``, ``backfill`` and ``main``, all built around its ``assemble``."""

    def run(
        settings: Settings,
        *,
        bounded: bool = False,
        wait: bool | None = None,
        start_offsets: dict[int, int] | None = None,
    ) -> str:
        return run_streaming(
            job, settings, assemble, bounded=bounded, wait=wait, start_offsets=start_offsets
        )

    def backfill(settings: Settings, *, input_path: str, output_path: str) -> str:
        return run_backfill(job, settings, assemble, input_path=input_path, output_path=output_path)

    def main(argv: list[str] | None = None) -> int:
        return job_main(job, run, argv)

    return run, backfill, main
