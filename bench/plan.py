"""Where a job's start-up goes before Flink runs it: gateway JVM and source, assembling the
views and inserts, and planning (the optimiser and code generation behind
``StatementSet.explain()``, the same work a submission does), in wall seconds.

    .venv/bin/python bench/plan.py --job all
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from collections import Counter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--job", default="all", help="a job under genai_apm.jobs (default all)")
    args = parser.parse_args()

    from genai_apm.jobs import load
    from genai_apm.settings import config

    settings = config.load(path=None, environ={})
    job = load(args.job)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tables:
        prepared = job.prepare(settings.replace(output={"tables_path": tables}))
        sourced = time.monotonic()
        statements = job.assemble(prepared)
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
