"""Stage 1, window rows: one row per tumbling window and key of every dimension, with its
requests, metrics and traffic weights, from the shared per-minute rows (jobs/minutes.py)."""

from __future__ import annotations

from genai_apm.jobs import minutes
from genai_apm.jobs.anomalies.metrics import DIMENSIONS, METRICS, WEIGHTS
from genai_apm.jobs.windows import Window
from genai_apm.settings.config import AnomalySettings


def window_rows_sql(
    w: Window, s: AnomalySettings, gamma: float, dimensions: tuple = DIMENSIONS
) -> str:
    """One row per window and key: requests and every metric (NULL where too few calls).

    The model, app and model x app keys come from minute_stats, the users from minute_users
    (jobs/minutes.py): a UNION ALL of one aggregation per view."""
    aggregates = ",\n    ".join(
        [f"CAST({m.aggregate.format(gamma=repr(gamma))} AS DOUBLE) AS {m.name}" for m in METRICS]
        + [f"{sql} AS {name}" for name, sql in WEIGHTS]
    )
    guarded = ",\n  ".join(
        f"CASE WHEN requests >= {max(int(s.min_requests), m.min_calls)} THEN {m.name} END"
        f" AS {m.name}"
        if m.needs_requests
        else m.name
        for m in METRICS
    )
    by_view: dict[str, list] = {}
    for d in dimensions:
        by_view.setdefault(minutes.source(d[1]), []).append(d)
    parts = []
    for view, dims in by_view.items():
        dimension = " ".join(
            f"WHEN {' AND '.join(f'GROUPING({c}) = 0' for c in cols)} THEN '{name}'"
            for name, cols, _ in dims
        )
        key = " ".join(
            f"WHEN {' AND '.join(f'GROUPING({c}) = 0' for c in cols)} THEN {expr}"
            for _, cols, expr in dims
        )
        sets = ", ".join("(" + ", ".join(cols) + ")" for _, cols, _ in dims)
        parts.append(f"""
  SELECT window_start, window_end, window_time,
    CAST(CASE {dimension} END AS STRING) AS dimension,
    CAST(CASE {key} END AS STRING) AS `key`,
    SUM(requests) AS requests,
    {aggregates}
  FROM TABLE({w.tvf(view, "minute_time")})
  GROUP BY window_start, window_end, window_time, GROUPING SETS ({sets})""")
    union = "\n  UNION ALL".join(parts)
    return f"""
SELECT window_start, window_end, window_time, dimension, `key`, requests,
  {guarded},
  {", ".join(name for name, _ in WEIGHTS)},
  HOUR(window_start) * 60 + MINUTE(window_start) AS slot
FROM ({union}
)"""


WINDOW_COLUMNS = (
    ("window_start", "TIMESTAMP_LTZ(3)"),
    ("window_end", "TIMESTAMP_LTZ(3)"),
    ("dimension", "STRING"),
    ("key", "STRING"),
    ("requests", "BIGINT"),
    *((m.name, "DOUBLE") for m in METRICS),
)
