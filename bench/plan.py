"""Where a job's start-up goes before Flink runs it: gateway JVM and source, assembling the
views and inserts, and planning (the optimiser and code generation behind
``StatementSet.explain()``, the same work a submission does), in wall seconds.

    .venv/bin/python bench/plan.py --job all
"""

from __future__ import annotations

import argparse
import importlib
import re
import tempfile
import time
from collections import Counter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--job", default="all", help="a job under genai_apm.jobs (default all)")
    args = parser.parse_args()

    from genai_apm import config
    from genai_apm.flink_env import table_env
    from genai_apm.jobs import sources

    settings = config.load(path=None, environ={})
    job = importlib.import_module(f"genai_apm.jobs.{args.job}")
    started = time.monotonic()
    t_env = table_env(settings, args.job)
    sources.kafka_invocations(t_env, settings, bounded=False)
    sourced = time.monotonic()
    statements = t_env.create_statement_set()
    with tempfile.TemporaryDirectory() as tables:
        job.assemble(t_env, settings, statements, kafka_outputs=True, tables_path=tables)
        sources.add_deadletters(t_env, settings, statements)
        assembled = time.monotonic()
        plan = statements.explain()
        planned = time.monotonic()
    physical = plan.split("== Optimized Execution Plan ==")[-1]
    operators = Counter(re.findall(r"^[\s:+-]*([A-Z][A-Za-z]+)\(", physical, re.M))
    print(
        f"{args.job}: gateway and source {sourced - started:.1f} s, assemble "
        f"{assembled - sourced:.1f} s, plan {planned - assembled:.1f} s"
    )
    print("operators:", ", ".join(f"{name} {n}" for name, n in operators.most_common()))


if __name__ == "__main__":
    main()
