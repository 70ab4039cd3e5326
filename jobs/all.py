"""All analyses of the invocation stream in one Flink job: `analytics` (latency, errors and
alerts, cost and budgets) and `anomalies`.

One source, one parse, one set of contract checks and one dead-letter stream for all of
them. On two cores this one job beat the two jobs side by side by a quarter on the same
events (300k: 83 s against 109 s, bench/flight.py), with one JVM instead of two; `make bench`
measures it as "all analyses". Run the two jobs separately when they need different
parallelism, restarts or upgrades.
"""

from __future__ import annotations

import sys

from genai_apm.jobs import analytics, anomalies
from genai_apm.jobs.runner import combined

JOB = "all"
SPEC = combined(JOB, analytics.SPEC, anomalies.SPEC)
run, backfill, main = SPEC.run, SPEC.backfill, SPEC.main


if __name__ == "__main__":
    sys.exit(main())
