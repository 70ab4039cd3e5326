"""SLOs with error budgets and burn-rate alerts, and quota headroom with a throttling forecast.

Both read the shared per-minute aggregation (jobs/minutes.py), never the calls again.

SLOs (``slo.objectives``, genai_apm/objectives.py)
  slo_minutes   one row per SLO, key and minute with calls: events and good events, from a
                cascaded 1-minute TUMBLE over minute_stats grouped by the SLO's scope. Latency
                SLOs count good events exactly, against the threshold, in minute_stats
                columns it adds (``objectives.minute_aggregates``): no percentile interpolation.
  burn rates    OVER aggregations on those rows, one per window (5m, 30m, 1h, 6h, 3d and the
                compliance period), each RANGE ending at the current minute (Flink computes
                one OVER frame per operator, so they are cascaded views):
                    burn_rate_w = (bad / events over w) / (1 - objective)
                    budget_consumed_pct = 100 * bad / ((1 - objective) * events), over the period
  -> topics.slo, the `slo_1m` Parquet table, and burn-rate alerts: per SLO, key and
     ``slo.burn_alerts`` pair, ALARM while both windows burn faster than the pair's rate, as
     transitions into the alerts sink (jobs/alerts.py).
  A minute without calls has no row: windows count the minutes that have some, and an alarm
  clears at the next minute with calls whose burn is back under the rate.

Quota (``quota``, genai_apm/quotas.py)
  Per provider, model, region and minute with calls, where the quota table has a row: quota
  tokens (input - cache read + output x burndown), requests (throttled ones too), use of
  the tokens and requests per minute (%; the larger is `use_pct`), headroom, the app that used
  most (a second cascaded TUMBLE: the maximum of zero-padded "tokens|app" strings, no join),
  and a forecast: a least-squares line through the use of the last ``trend_minutes`` minutes
  (an OVER aggregation of the sums the fit needs), extrapolated to 100%:
      minutes_to_exhaustion = (100 - use_pct) / slope    (slope > 0, enough points; else NULL)
  -> topics.quota, the `quota_1m` Parquet table, and the `quota-headroom` alert (use at or
     over ``alert_use_pct``, or exhaustion forecast within ``forecast_horizon_minutes``).
"""

from __future__ import annotations

import sys

from genai_apm.flink.env import create_view
from genai_apm.jobs.runner import Job
from genai_apm.jobs.sinks import Sinks
from genai_apm.objectives import (
    BURN_WINDOWS,
    Objective,
    burn_alerts,
    minute_aggregates,
    objectives,
)
from genai_apm.schemas.flink_sql import sql_literal
from genai_apm.schemas.outputs import ALL, QUOTA_COLUMNS, SLO_COLUMNS, burn_column
from genai_apm.settings.config import Settings

JOB = "slo"
# availability: good = success, client error (the caller's fault) or content filtered
GOOD_OUTCOMES = ("successes", "client_errors", "content_filtered")
# the x of the trend line: minutes since this instant (2026-01-01T00:00:00Z), kept small so
# the sums of squares stay exact in DOUBLE
TREND_EPOCH_MS = 1_767_225_600_000
QUOTA_SCOPE = "provider_model_region"
QUOTA_RULE = "quota-headroom"


def _interval(minutes: int) -> str:
    # OVER ranges accept no MINUTE precision above 2: longer ones are days, hours, minutes
    if minutes < 100:
        return f"INTERVAL '{minutes}' MINUTE"
    days, rest = divmod(minutes, 1440)
    return f"INTERVAL '{days} {rest // 60:02d}:{rest % 60:02d}' DAY TO MINUTE"


def _key_sql(scope: str) -> str:
    return {
        "model": "model_id",
        "app": "app_id",
        "model_app": "CONCAT(model_id, '|', app_id)",
        "all": f"'{ALL}'",
    }[scope]


# what the SLO and quota rollups read of minute_stats (minute_time is its rowtime)
INPUT_VIEW = "slo_minute_input"
INPUT_COLUMNS = (
    "minute_time",
    "model_id",
    "app_id",
    "provider",
    "region",
    "requests",
    "throttles",
    *GOOD_OUTCOMES,
    "input_tokens_sum",
    "output_tokens_sum",
    "cache_read_tokens_sum",
)


def register_input(t_env, settings: Settings) -> str:
    from genai_apm.jobs import minutes

    minutes.register(t_env, settings)
    if INPUT_VIEW not in t_env.list_temporary_views():
        columns = [*INPUT_COLUMNS, *(name for name, _ in minute_aggregates(settings))]
        create_view(t_env, INPUT_VIEW, f"SELECT {', '.join(columns)} FROM minute_stats")
    return INPUT_VIEW


def slo_minutes_sql(o: Objective) -> str:
    """One row per minute and key of the SLO's scope: events and good events."""
    key = _key_sql(o.scope)
    if o.sli == "availability":
        events, good = "requests", " + ".join(GOOD_OUTCOMES)
    else:
        events, good = o.valid_column, o.good_column
    where = f"WHERE {key} = {sql_literal(o.key)}" if o.key is not None else ""
    group = (
        "" if o.scope == "all" else ", " + ("model_id, app_id" if o.scope == "model_app" else key)
    )
    return f"""
SELECT window_start, window_end, window_time,
  {sql_literal(o.name)} AS slo, {sql_literal(o.sli)} AS sli, {sql_literal(o.scope)} AS `scope`,
  CAST({key} AS STRING) AS `key`,
  CAST({o.objective!r} AS DOUBLE) AS objective, {o.period_minutes} AS period_minutes,
  CAST(SUM({events}) AS BIGINT) AS events,
  CAST(SUM({good}) AS BIGINT) AS good_events
FROM TABLE(TUMBLE(TABLE {INPUT_VIEW}, DESCRIPTOR(minute_time), INTERVAL '1' MINUTE))
{where}
GROUP BY window_start, window_end, window_time{group}"""


def _over(minutes: int, partition: str) -> str:
    # minute rows have window_time = the minute's end - 1 ms: the rows of the last N minutes
    # are those at most N - 1 minutes before the current one
    return (
        f"(PARTITION BY {partition} ORDER BY window_time "
        f"RANGE BETWEEN {_interval(minutes - 1)} PRECEDING AND CURRENT ROW)"
    )


def register_slo_views(t_env, settings: Settings) -> str | None:
    """slo_minutes, one cascaded OVER view per window, and `slo_rows` (SLO_COLUMNS plus
    window_time and the per-window burn rates); returns its name, None without SLOs."""
    found = objectives(settings.slo)
    if not found:
        return None
    union = "\nUNION ALL".join(slo_minutes_sql(o) for o in found)
    create_view(t_env, "slo_minutes", union)
    previous = "slo_minutes"
    # burn windows, shortest first: each view adds its window's sums to the previous one's
    for name, minutes in BURN_WINDOWS.items():
        view = f"slo_over_{name}"
        create_view(
            t_env,
            view,
            f"""
SELECT *,
  SUM(events) OVER w AS events_{name},
  SUM(events - good_events) OVER w AS bad_{name}
FROM {previous}
WINDOW w AS {_over(minutes, "slo, `key`")}""",
        )
        previous = view
    # the compliance period: its range is a literal, so one view per distinct period
    periods = sorted({o.period_minutes for o in found})
    selects = [
        f"""
SELECT *,
  SUM(events) OVER w AS period_events,
  SUM(good_events) OVER w AS period_good_events
FROM {previous}
WHERE period_minutes = {p}
WINDOW w AS {_over(p, "slo, `key`")}"""
        for p in periods
    ]
    create_view(t_env, "slo_period", "\nUNION ALL".join(selects))
    burns = ",\n  ".join(
        f"CAST(bad_{w} AS DOUBLE) / NULLIF(events_{w}, 0) / (1 - objective) AS {burn_column(w)}"
        for w in BURN_WINDOWS
    )
    period_text = (
        "CASE WHEN MOD(period_minutes, 1440) = 0 THEN CONCAT(CAST(period_minutes / 1440 AS STRING),"
        " 'd') ELSE CONCAT(CAST(period_minutes / 60 AS STRING), 'h') END"
    )
    consumed = (
        "100.0 * CAST(period_events - period_good_events AS DOUBLE)"
        " / NULLIF((1 - objective) * period_events, 0)"
    )
    create_view(
        t_env,
        "slo_rows",
        f"""
SELECT
  CAST(window_start AS TIMESTAMP_LTZ(3)) AS window_start,
  CAST(window_end AS TIMESTAMP_LTZ(3)) AS window_end,
  slo, sli, `scope`, `key`, 100 * objective AS objective_pct, {period_text} AS `period`,
  events, good_events,
  100.0 * good_events / NULLIF(events, 0) AS sli_pct,
  period_events, period_good_events,
  100.0 * period_good_events / NULLIF(period_events, 0) AS period_sli_pct,
  {consumed} AS budget_consumed_pct,
  100.0 - {consumed} AS budget_remaining_pct,
  {burns},
  window_time
FROM slo_period""",
    )
    return "slo_rows"


def burn_evaluations(settings: Settings, relation: str = "slo_rows") -> list:
    """One alerts.Evaluation per burn alert, over every SLO's rows (rule slo-<name>-<alert>):
    ALARM while both windows burn faster than the alert's rate."""
    from genai_apm.jobs.alerts import Evaluation, number_text

    found = objectives(settings.slo)
    if not found:
        return []
    describe = (
        "CASE slo "
        + " ".join(
            f"WHEN {sql_literal(o.name)} THEN "
            + sql_literal(f"{o.objective * 100:g}% over {o.period}")
            for o in found
        )
        + " END"
    )
    out = []
    for a in burn_alerts(settings.slo):
        long, short = burn_column(a.long), burn_column(a.short)
        detail = (
            f"CONCAT('slo ', slo, ' (', {describe}, '): burn {a.long} ', {number_text(long)}, "
            f"', {a.short} ', {number_text(short)}, ', budget remaining ', "
            f"{number_text('budget_remaining_pct')}, '%')"
        )
        out.append(
            Evaluation(
                rule=f"slo-*-{a.name}",
                kind="slo",
                metric="burn_rate",
                scope="slo",
                op=">",
                threshold=a.burn,
                window=f"{a.long}&{a.short}",
                relation=relation,
                key_sql="`key`",
                # both exceed the rate exactly when the smaller one does
                observed_sql=f"LEAST({long}, {short})",
                detail_sql=detail,
                rule_sql=f"CONCAT('slo-', slo, '-{a.name}')",
                scope_sql="`scope`",
            )
        )
    return out


# ---- quota --------------------------------------------------------------------------------


def register_quota_views(t_env, settings: Settings, table=None) -> str | None:
    """quota_app_minutes, quota_minutes and `quota_rows` (QUOTA_COLUMNS plus window_time);
    returns its name, None when the quota table is empty."""
    from genai_apm import quotas

    table = table if table is not None else quotas.load(settings.quota.quota_file)
    if not table.quotas:
        return None
    tpm = quotas.limit_sql(table, "tpm")
    rpm = quotas.limit_sql(table, "rpm")
    burndown = quotas.limit_sql(table, "output_burndown")
    create_view(
        t_env,
        "quota_app_minutes",
        f"""
SELECT window_start, window_end, window_time, provider, model_id, region, app_id,
  CAST(COALESCE(SUM(input_tokens_sum), 0) - COALESCE(SUM(cache_read_tokens_sum), 0) AS DOUBLE)
    + CAST(COALESCE(SUM(output_tokens_sum), 0) AS DOUBLE) * {burndown} AS quota_tokens,
  CAST(SUM(requests) AS BIGINT) AS requests,
  CAST(SUM(throttles) AS BIGINT) AS throttles
FROM TABLE(TUMBLE(TABLE {INPUT_VIEW}, DESCRIPTOR(minute_time), INTERVAL '1' MINUTE))
WHERE {tpm} IS NOT NULL
GROUP BY window_start, window_end, window_time, provider, model_id, region, app_id""",
    )
    create_view(
        t_env,
        "quota_minutes_in",
        """
SELECT window_time AS minute_time, provider, model_id, region, app_id, quota_tokens, requests,
  throttles
FROM quota_app_minutes""",
    )
    create_view(
        t_env,
        "quota_minutes",
        """
SELECT window_start, window_end, window_time, provider, model_id, region,
  SUM(quota_tokens) AS quota_tokens,
  CAST(SUM(requests) AS BIGINT) AS requests,
  CAST(SUM(throttles) AS BIGINT) AS throttles,
  -- the app with the most quota tokens (ties: the greater app id), without a join
  MAX(CONCAT(LPAD(CAST(CAST(quota_tokens AS BIGINT) AS STRING), 15, '0'), app_id)) AS top
FROM TABLE(TUMBLE(TABLE quota_minutes_in, DESCRIPTOR(minute_time), INTERVAL '1' MINUTE))
GROUP BY window_start, window_end, window_time, provider, model_id, region""",
    )
    q = settings.quota
    epoch = f"TO_TIMESTAMP_LTZ({TREND_EPOCH_MS}, 3)"
    x = f"CAST(TIMESTAMPDIFF(MINUTE, {epoch}, window_time) AS DOUBLE)"
    create_view(
        t_env,
        "quota_use",
        f"""
SELECT *,
  CASE WHEN rpm_use_pct IS NULL OR tpm_use_pct >= rpm_use_pct THEN tpm_use_pct
    ELSE rpm_use_pct END AS use_pct
FROM (
  SELECT *,
    100.0 * quota_tokens / tpm_limit AS tpm_use_pct,
    100.0 * requests / rpm_limit AS rpm_use_pct,
    {x} AS x
  FROM (SELECT *, {tpm} AS tpm_limit, {rpm} AS rpm_limit FROM quota_minutes)
)""",
    )
    create_view(
        t_env,
        "quota_trend",
        f"""
SELECT *,
  COUNT(*) OVER w AS n, SUM(x) OVER w AS sx, SUM(use_pct) OVER w AS sy,
  SUM(x * use_pct) OVER w AS sxy, SUM(x * x) OVER w AS sxx
FROM quota_use
WINDOW w AS {_over(q.trend_minutes, "provider, model_id, region")}""",
    )
    slope = "(n * sxy - sx * sy) / NULLIF(n * sxx - sx * sx, 0)"
    create_view(
        t_env,
        "quota_rows",
        f"""
SELECT
  CAST(window_start AS TIMESTAMP_LTZ(3)) AS window_start,
  CAST(window_end AS TIMESTAMP_LTZ(3)) AS window_end,
  provider, model_id, region, quota_tokens, requests, throttles, tpm_limit, rpm_limit,
  tpm_use_pct, rpm_use_pct, use_pct,
  tpm_limit - quota_tokens AS headroom_tokens,
  SUBSTRING(top FROM 16) AS top_app,
  100.0 * CAST(SUBSTRING(top FROM 1 FOR 15) AS DOUBLE) / NULLIF(quota_tokens, 0)
    AS top_app_share_pct,
  trend AS trend_pct_per_min,
  CASE
    WHEN use_pct >= 100 THEN 0.0
    WHEN trend > 0 THEN (100 - use_pct) / trend
  END AS minutes_to_exhaustion,
  window_time
FROM (
  SELECT *, CASE WHEN n >= {int(q.min_trend_points)} THEN {slope} END AS trend
  FROM quota_trend
)""",
    )
    return "quota_rows"


def quota_evaluation(settings: Settings, relation: str = "quota_rows"):
    from genai_apm.jobs.alerts import Evaluation, number_text

    q = settings.quota
    detail = (
        "CONCAT('forecast ', CASE WHEN minutes_to_exhaustion IS NULL THEN 'no rising trend' "
        f"ELSE CONCAT('exhausted in ', {number_text('minutes_to_exhaustion')}, ' min') END, "
        f"' (horizon {q.forecast_horizon_minutes:g} min); top app ', COALESCE(top_app, 'n/a'), "
        f"' (', {number_text('top_app_share_pct')}, '% of use)')"
    )
    return Evaluation(
        rule=QUOTA_RULE,
        kind="quota",
        metric="quota_use_pct",
        scope=QUOTA_SCOPE,
        op=">=",
        threshold=q.alert_use_pct,
        window="1m",
        relation=relation,
        key_sql="CONCAT_WS('|', provider, model_id, region)",
        observed_sql="use_pct",
        alarm_sql=(
            f"use_pct >= {float(q.alert_use_pct)!r} OR "
            f"minutes_to_exhaustion <= {float(q.forecast_horizon_minutes)!r}"
        ),
        detail_sql=detail,
    )


# ---- the job ------------------------------------------------------------------------------


def assemble(t_env, settings: Settings, statements, sinks: Sinks) -> None:
    """Add the SLO and quota outputs over minute_stats to ``statements``."""
    from genai_apm.jobs import alerts

    register_input(t_env, settings)
    evaluations = []
    slo_view = register_slo_views(t_env, settings)
    if slo_view:
        columns = ", ".join(f"`{name}`" for name, _ in SLO_COLUMNS)
        sinks.write(statements, sinks.output("slo_1m"), slo_view, columns)
        evaluations += burn_evaluations(settings, slo_view)
    quota_view = register_quota_views(t_env, settings)
    if quota_view:
        columns = ", ".join(f"`{name}`" for name, _ in QUOTA_COLUMNS)
        sinks.write(statements, sinks.output("quota_1m"), quota_view, columns)
        evaluations.append(quota_evaluation(settings, quota_view))
    alerts.insert(statements, sinks, evaluations)


SPEC = Job(JOB, (assemble,))
run, backfill, main = SPEC.run, SPEC.backfill, SPEC.main


if __name__ == "__main__":
    sys.exit(main())
