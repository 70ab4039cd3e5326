"""Every invocation analytic in one Flink job: latency, errors and alerts, cost and budgets.

One source, one parse and one dead-letter stream feed all of them: on two cores, one job
reading the topic once beats three jobs reading it three times. Each analytic stays a pure
`build` in its own module; this module only wires them together.
"""

from __future__ import annotations

import sys

from genai_apm.jobs.runner import combined, entry_points

JOB = "analytics"
assemble = combined("latency", "errors", "cost", "slo")
run, backfill, main = entry_points(JOB, assemble)


if __name__ == "__main__":
    sys.exit(main())
