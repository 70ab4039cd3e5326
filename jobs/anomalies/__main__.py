"""``python -m genai_apm.jobs.anomalies``: what `flink run -pym` and Managed Flink start."""

import sys

from genai_apm.jobs.anomalies import main

if __name__ == "__main__":
    sys.exit(main())
