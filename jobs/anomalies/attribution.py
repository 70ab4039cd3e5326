"""Stage 5, root-cause attribution: the traffic pairs of keys share per window, which key in
ALARM explains a hot one (``explained_by``), and the open and close events with or without
that explanation."""

from __future__ import annotations

from genai_apm.jobs import minutes
from genai_apm.jobs.anomalies.metrics import METRICS, TAIL_WEIGHTS, WEIGHTS, _num
from genai_apm.jobs.windows import Window
from genai_apm.schemas.outputs import ANOMALY_COLUMNS
from genai_apm.settings.config import AnomalySettings

# --- root-cause attribution ------------------------------------------------------------------

# (grouping set, [(parent dimension, parent key, child dimension, child key)]): which keys'
# traffic contains which, per window. model_app keys are only ever explained (by their model or
# app), never an explanation: an app's spike is the app's, not one of its model x app slices'.
LINKS = (
    (
        ("model_id", "app_id"),
        (
            ("model", "model_id", "app", "app_id"),
            ("app", "app_id", "model", "model_id"),
            ("model_app", "CONCAT(model_id, '|', app_id)", "model", "model_id"),
            ("model_app", "CONCAT(model_id, '|', app_id)", "app", "app_id"),
        ),
    ),
    (
        ("model_id", "user_id"),
        (("model", "model_id", "user", "user_id"), ("user", "user_id", "model", "model_id")),
    ),
    (
        ("app_id", "user_id"),
        (("app", "app_id", "user", "user_id"), ("user", "user_id", "app", "app_id")),
    ),
    # a user's outsized calls also show on the model x app slices they go through
    (
        ("model_id", "app_id", "user_id"),
        (("model_app", "CONCAT(model_id, '|', app_id)", "user", "user_id"),),
    ),
)


def pairs_sql(w: Window) -> str:
    """Per window, the traffic of each pair of keys in LINKS (model x app, model x user,
    app x user), with g_<column> = 1 where a column is not part of the pair. Pairs with a user
    come from minute_users, model x app from minute_stats (jobs/minutes.py)."""
    weights = ", ".join(f"{sql} AS {name}" for name, sql in WEIGHTS)
    columns = ("model_id", "app_id", "user_id")
    by_view: dict[str, list] = {}
    for cols in sorted({c for c, _ in LINKS}):
        by_view.setdefault(minutes.source(cols), []).append(cols)
    parts = []
    for view, sets in by_view.items():
        grouped = sorted({c for cols in sets for c in cols})
        # a column the view's sets never group by is a constant NULL, rolled up (g_ = 1)
        keys = ", ".join(c if c in grouped else f"CAST(NULL AS STRING) AS {c}" for c in columns)
        flags = ", ".join(
            f"CAST(GROUPING({c}) AS INT) AS g_{c}" if c in grouped else f"1 AS g_{c}"
            for c in columns
        )
        sets_sql = ", ".join("(" + ", ".join(cols) + ")" for cols in sets)
        parts.append(f"""
SELECT window_time, {keys},
  {flags},
  {weights}
FROM TABLE({w.tvf(view, "minute_time")})
GROUP BY window_start, window_end, window_time, GROUPING SETS ({sets_sql})""")
    return "\nUNION ALL".join(parts)


def links_sql(source: str) -> str:
    """The pairs once per direction: how much of the parent's calls, tokens, errors and spend
    went through the child, in that window.

    One pass over the pairs: each row unnests into the directions of its grouping set (the
    others are NULL and dropped). A UNION ALL of one filtered query per direction made the
    planner push each filter into its own copy of the pairs aggregation (4 aggregations)."""
    names = ", ".join(name for name, _ in WEIGHTS)
    directions = []
    for cols, pairs in LINKS:
        pair = " AND ".join(
            f"g_{c} = {0 if c in cols else 1}" for c in ("model_id", "app_id", "user_id")
        )
        for parent_dim, parent_key, child_dim, child_key in pairs:
            directions.append(
                f"CASE WHEN {pair} THEN ROW(CAST('{parent_dim}' AS STRING), {parent_key}, "
                f"CAST('{child_dim}' AS STRING), {child_key}) END"
            )
    return f"""
SELECT window_time, d.parent_dimension, d.parent_key, d.child_dimension, d.child_key, {names}
FROM {source}
CROSS JOIN UNNEST(ARRAY[{", ".join(directions)}])
  AS d (parent_dimension, parent_key, child_dimension, child_key)
WHERE d.parent_dimension IS NOT NULL"""


def _weight(alias: str, metric: str) -> str:
    """The WEIGHTS column of ``alias`` that measures traffic for the metric named ``metric``."""
    return (
        "CASE "
        + " ".join(f"WHEN {metric} = '{m.name}' THEN {alias}.{m.weight}" for m in METRICS)
        + " END"
    )


def explanations_sql(
    s: AnomalySettings,
    hot: str = "anomaly_hot",
    links: str = "anomaly_links",
    alarmed: str = "anomaly_alarmed",
) -> str:
    """Every (hot key, key in ALARM that explains it) pair of a window, with the share.

    Key P (hot in a window, its top metric M) is explained by key C (in ALARM, another
    dimension) when C carries at least ``explain_share`` of P's traffic as M measures it (its
    tokens, successful calls, errors or spend; for a p99, C must hold P's largest value) and,
    if P also carries that share of C's, C scores at least as high: a user's huge prompts
    explain the spend of the model they go through, an app's prompt spike explains its
    models' token p99s, a model's latency regression explains its apps' latency; of two keys
    that explain each other the stronger anomaly is the root. Interval joins on the window's
    time keep state to one window."""
    tails = ", ".join(f"'{m.name}'" for m in METRICS if m.weight in TAIL_WEIGHTS)
    sigma = f"CASE WHEN p.metric IN ({tails}) THEN 1.0 ELSE {float(s.explain_share)!r} END"
    share_cp = f"{_weight('l', 'p.metric')} / NULLIF({_weight('p', 'p.metric')}, 0)"
    share_pc = f"{_weight('l', 'p.metric')} / NULLIF({_weight('c', 'p.metric')}, 0)"
    return f"""
SELECT p.window_time AS hot_time, p.dimension, p.`key`,
  CONCAT(c.dimension, ' ', c.`key`) AS explained_by,
  {share_cp} AS explained_share
FROM {hot} AS p
JOIN {links} AS l
  ON l.parent_dimension = p.dimension AND l.parent_key = p.`key`
  AND l.window_time BETWEEN p.window_time AND p.window_time
JOIN {alarmed} AS c
  ON c.dimension = l.child_dimension AND c.`key` = l.child_key
  AND c.window_time BETWEEN l.window_time AND l.window_time
WHERE {share_cp} >= {sigma}
  AND (p.dimension = 'model_app' OR c.alarm_score >= p.score
       OR COALESCE({share_pc}, 0.0) < {sigma})"""


def best_explanation_sql(source: str, w: Window) -> str:
    """One explanation per key and window: the explaining key with the largest share (a
    window Top-N, whose state ends with the window)."""
    return f"""
SELECT window_start, window_end, window_time, dimension, `key`, explained_by, explained_share
FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end, dimension, `key`
    ORDER BY explained_share DESC, explained_by) AS rn
  FROM TABLE({w.tvf(source, "hot_time")})
)
WHERE rn = 1"""


def incidents_sql(transitions: str, explained: str) -> str:
    """ANOMALY_COLUMNS: the open and close events, an open one with its explanation by
    another key when there is one. A left interval join on the window's time: an event without
    an explanation leaves as soon as the watermark passes its window."""
    cols = ", ".join(
        f"t.`{n}`" if n != "explained_by" else "x.explained_by" for n, _ in ANOMALY_COLUMNS
    ).replace(
        "t.`explanation`",
        "CASE WHEN x.explained_by IS NULL THEN t.explanation ELSE CONCAT(t.explanation, "
        "'; explained by ', x.explained_by, ' (', "
        f"{_num('100 * x.explained_share', 0)}, '% of its traffic for ', t.metric, ')') END "
        "AS explanation",
    )
    return f"""
SELECT {cols}
FROM {transitions} AS t
LEFT JOIN {explained} AS x
  ON x.dimension = t.dimension AND x.`key` = t.`key`
  AND x.window_time BETWEEN t.window_time AND t.window_time"""


def unexplained_sql(transitions: str) -> str:
    """ANOMALY_COLUMNS: the open and close events without attribution (explained_by NULL)."""
    cols = ", ".join(
        f"`{n}`" if n != "explained_by" else "CAST(NULL AS STRING) AS explained_by"
        for n, _ in ANOMALY_COLUMNS
    )
    return f"SELECT {cols} FROM {transitions}"
