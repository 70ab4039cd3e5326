"""Every invocation analytic in one Flink job: latency, errors and alerts, cost and budgets.

One source, one parse and one dead-letter stream feed all of them: on two cores, one job
reading the topic once beats three jobs reading it three times. Each analytic stays a pure
`assemble` in its own module; this module only wires them together.
"""

from __future__ import annotations

import sys

from genai_apm.jobs import cost, errors, latency, slo
from genai_apm.jobs.runner import combined

JOB = "analytics"
SPEC = combined(JOB, latency.SPEC, errors.SPEC, cost.SPEC, slo.SPEC)
run, backfill, main = SPEC.run, SPEC.backfill, SPEC.main


if __name__ == "__main__":
    sys.exit(main())
