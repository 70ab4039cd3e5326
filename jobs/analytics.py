"""Every invocation analytic in one Flink job: latency, errors and alerts, cost and budgets.

One source, one parse and one dead-letter stream feed all of them: on two cores, one job
reading the topic once beats three jobs reading it three times. Each analytic stays a pure
`build` in its own module; this module only wires them together.
"""

from __future__ import annotations

import sys

from genai_apm.config import Settings

JOB = "analytics"


def _build_all(t_env, settings: Settings, *, kafka_outputs: bool, tables_path: str, pricing_table):
    from genai_apm.jobs import cost, errors, latency

    statements = t_env.create_statement_set()
    for module, extra in ((latency, {}), (errors, {}), (cost, {"pricing": pricing_table})):
        sinks = module.register_sinks(
            t_env, settings, kafka_outputs=kafka_outputs, tables_path=tables_path
        )
        module.build(t_env, settings, sinks, statements, **extra)
    return statements


def run(
    settings: Settings,
    *,
    bounded: bool = False,
    wait: bool | None = None,
    start_offsets: dict[int, int] | None = None,
) -> str:
    """Streaming from Kafka (native events) to every derived topic and Parquet table."""
    from genai_apm import pricing
    from genai_apm.flink_env import table_env
    from genai_apm.jobs import sources
    from genai_apm.jobs.runner import execute

    table = pricing.load(settings.cost.pricing_file)  # a bad file fails before Flink starts
    t_env = table_env(settings, JOB, bounded=bounded)
    sources.kafka_invocations(t_env, settings, bounded=bounded, start_offsets=start_offsets)
    statements = _build_all(
        t_env,
        settings,
        kafka_outputs=True,
        tables_path=settings.output.tables_path,
        pricing_table=table,
    )
    sources.add_deadletters(t_env, settings, statements)
    return execute(t_env, statements, JOB, wait=wait)


def backfill(settings: Settings, *, input_path: str, output_path: str) -> str:
    """All analytics, bounded, over native JSON-lines files, into tables under ``output_path``."""
    from genai_apm import pricing
    from genai_apm.flink_env import table_env
    from genai_apm.jobs import sources
    from genai_apm.jobs.runner import execute

    table = pricing.load(settings.cost.pricing_file)
    t_env = table_env(settings, f"{JOB} backfill", bounded=True)
    sources.file_invocations(t_env, settings, input_path)
    statements = _build_all(
        t_env, settings, kafka_outputs=False, tables_path=output_path, pricing_table=table
    )
    sources.add_deadletters(t_env, settings, statements, tables_path=output_path)
    return execute(t_env, statements, f"{JOB} backfill", wait=True)


def main(argv: list[str] | None = None) -> int:
    from genai_apm.jobs.runner import job_main

    return job_main(JOB, run, argv)


if __name__ == "__main__":
    sys.exit(main())
