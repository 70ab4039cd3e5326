"""Cost analytics: what every call cost, spend per app, user, feature, model and session,
and budget alerts on rolling spend.

A call's cost comes from the pricing table (genai_apm/pricing.py) through SQL generated from
it: no Python UDF per record and no join with a price stream, and a price change applies
from its effective date by event time. A call the table cannot price (an unknown model, or a
time before its first price) has cost NULL and is counted in `unpriced_requests` and
`unpriced_tokens`: spend is never made up, and the gap is visible.

Spend rows (1-hour tumbling windows) are one per dimension and key: `dimension` is app, user,
feature, model, session or all (key '*'), so one table answers "who spent what" for each.
`cost_usd` sums the priced calls; it is NULL when none in the row was priced.

Budget rules (``cost.budgets``) watch spend per user, app or feature over a rolling hour and a
rolling day (hopping windows) and alert on crossing the limit and on falling back under it,
as state transitions (jobs/alerts.py).
"""

from __future__ import annotations

import sys

from genai_apm.flink.env import create_view
from genai_apm.jobs import minutes
from genai_apm.jobs.runner import Job
from genai_apm.jobs.sinks import Sinks
from genai_apm.jobs.windows import Window
from genai_apm.rules import PERIODS, BudgetRule
from genai_apm.schemas.outputs import ALL, spend_window
from genai_apm.schemas.outputs import COST_DIMENSIONS as DIMENSIONS
from genai_apm.schemas.outputs import cost_columns as output_columns  # noqa: F401
from genai_apm.settings.config import Settings

JOB = "cost"
UNKNOWN = "unknown"  # the key of calls without that attribute


def budget_windows(settings: Settings) -> dict[str, Window]:
    """Period (1h, 1d) -> its hopping window."""
    c = settings.cost
    hops = {"1h": c.budget_hour_hop_minutes, "1d": c.budget_day_hop_minutes}
    return {period: Window(period, size, hops[period]) for period, size in PERIODS.items()}


def _text(value: str) -> str:
    return f"CAST('{value}' AS STRING)"


def _dimension_columns(dimensions) -> tuple[str, str]:
    """(dimension, key) expressions of a GROUPING SETS row with one grouped column or none."""
    if not dimensions:
        return f"{_text('all')} AS dimension", f"{_text(ALL)} AS `key`"
    dimension = " ".join(
        f"WHEN GROUPING({column}) = 0 THEN {_text(name)}" for name, column in dimensions
    )
    key = " ".join(f"WHEN GROUPING({column}) = 0 THEN {column}" for _, column in dimensions)
    return (
        f"CASE {dimension} ELSE {_text('all')} END AS dimension",
        f"CASE {key} ELSE {_text(ALL)} END AS `key`",
    )


# the per-minute rows (jobs/minutes.py) cover every dimension; sessions are too many to key
# them by, so their sums travel inside the model x app minute (minute_sessions) and are
# grouped here apart from the others
ROLLED = tuple(d for d in DIMENSIONS if d[0] != "session")


def _rolled(window: Window, dimensions, aggregates: str, head: str, total: bool) -> str:
    """``aggregates`` per window and key of each dimension (and of all calls when ``total``),
    each dimension read from the smallest per-minute view that has its column: app and model
    from minute_stats, user and feature from minute_users (a UNION ALL of at most two
    aggregations)."""
    by_view: dict[str, list] = {}
    for name, column in dimensions:
        by_view.setdefault(minutes.source([column]), []).append((name, column))
    if total:
        by_view.setdefault("minute_stats", [])
    parts = []
    for view, dims in by_view.items():
        sets = [f"({column})" for _, column in dims]
        if total and view == "minute_stats":
            sets.append("()")
        dimension, key = _dimension_columns(dims)
        parts.append(f"""
  SELECT {head}, {dimension}, {key},
    {aggregates}
  FROM TABLE({window.tvf(view, "minute_time")})
  GROUP BY {head}, GROUPING SETS ({", ".join(sets)})""")
    return "\n  UNION ALL".join(parts)


def spend_sql(window: Window, pricing_version: str) -> str:
    version = pricing_version.replace("'", "''")
    sums = """
  COALESCE(SUM({input}), 0) AS input_tokens,
  COALESCE(SUM({output}), 0) AS output_tokens,
  COALESCE(SUM({cache_read}), 0) AS cache_read_tokens,
  COALESCE(SUM({cache_write}), 0) AS cache_write_tokens,
  COALESCE(SUM({unpriced}), 0) AS unpriced_tokens,
  SUM(cost_usd) AS cost_usd"""
    head = f"""
  CAST(window_start AS TIMESTAMP_LTZ(3)) AS window_start,
  CAST(window_end AS TIMESTAMP_LTZ(3)) AS window_end,
  '{window.name}' AS `window`"""
    version_column = f"CAST('{version}' AS STRING) AS pricing_version"
    rolled_sums = sums.format(
        input="input_tokens_sum",
        output="output_tokens_sum",
        cache_read="cache_read_tokens_sum",
        cache_write="cache_write_tokens_sum",
        unpriced="unpriced_tokens",
    )
    rolled = f"SUM(requests) AS requests, SUM(priced_requests) AS priced_requests,{rolled_sums}"
    return f"""
SELECT {head}, dimension, `key`, requests, priced_requests,
  requests - priced_requests AS unpriced_requests,
  input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, unpriced_tokens, cost_usd,
  {version_column}
FROM (
{_rolled(window, ROLLED, rolled, "window_start, window_end", total=True)}
)
UNION ALL
SELECT {head}, CAST('session' AS STRING) AS dimension, session_id AS `key`,
  SUM(requests) AS requests, SUM(priced_requests) AS priced_requests,
  SUM(requests) - SUM(priced_requests) AS unpriced_requests,
  SUM(input_tokens) AS input_tokens, SUM(output_tokens) AS output_tokens,
  SUM(cache_read_tokens) AS cache_read_tokens, SUM(cache_write_tokens) AS cache_write_tokens,
  SUM(unpriced_tokens) AS unpriced_tokens, SUM(cost_usd) AS cost_usd,
  {version_column}
FROM TABLE({window.tvf("minute_sessions", "minute_time")})
GROUP BY window_start, window_end, session_id"""


def budget_spend_sql(window: Window, scopes: list[str]) -> str:
    """Rolling spend per key of the scopes some budget watches, keeping window_time."""
    dimensions = [(name, column) for name, column in ROLLED if name in scopes]
    head = "window_start, window_end, window_time"
    return _rolled(window, dimensions, "COALESCE(SUM(cost_usd), 0) AS cost_usd", head, False)


def budget_evaluation(rule: BudgetRule):
    from genai_apm.jobs.alerts import Evaluation, sql_string

    where = f"dimension = {sql_string(rule.scope)}"
    if rule.key is not None:
        where += f" AND `key` = {sql_string(rule.key)}"
    return Evaluation(
        rule=rule.name,
        kind="budget",
        metric=rule.metric,
        scope=rule.scope,
        op=rule.op,
        threshold=rule.limit_usd,
        window=rule.period,
        relation=f"cost_budget_{rule.period}",
        key_sql="`key`",
        observed_sql="cost_usd",
        where=where,
    )


def assemble(t_env, settings: Settings, statements, sinks: Sinks) -> None:
    """Add spend and budget alerts over the registered `invocations` view to ``statements``,
    priced by ``cost.pricing_file`` (or the packaged table)."""
    from genai_apm import pricing as prices
    from genai_apm.jobs import alerts
    from genai_apm.rules import budget_rules

    table = prices.load(settings.cost.pricing_file)  # a bad file: one clear line
    minutes.register(t_env, settings, prices.cost_sql(table))
    window = spend_window(settings)
    view = f"cost_{window.name}"
    create_view(t_env, view, spend_sql(window, table.version))
    sinks.write(statements, sinks.output(view), view)
    budgets = budget_rules(settings)
    for period, hopping in budget_windows(settings).items():
        scopes = sorted({b.scope for b in budgets if b.period == period})
        if scopes:
            create_view(t_env, f"cost_budget_{period}", budget_spend_sql(hopping, scopes))
    alerts.insert(statements, sinks, [budget_evaluation(b) for b in budgets])


SPEC = Job(JOB, (assemble,))
run, backfill, main = SPEC.run, SPEC.backfill, SPEC.main


if __name__ == "__main__":
    sys.exit(main())
