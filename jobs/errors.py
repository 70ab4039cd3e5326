"""Error analytics: what share of calls succeed, fail and why, and threshold alerts on them.

Every call has exactly one outcome. A call with status error is a client error, server error,
throttle or timeout by its error_class, or unclassified when it has none of those; a call
with status success is content_filtered when error_class says so or a guardrail intervened
(providers report blocked answers as HTTP 200 successes), otherwise a success.

Per window (1-minute tumbling, 5-minute sliding with a 1-minute hop) and per key (model_id x
app_id, model_id over all apps, app_id over all models, and '*'/'*'): counts and rates of
each outcome, counts by error_type (a map), and availability:

    availability_pct = 100 * (requests - server - throttles - timeouts - unclassified) / requests

Client errors (4xx: bad requests, denied credentials) do not count against availability: the
service was up and answered correctly; counting them would let one buggy caller page the
on-call for a healthy model. Throttles do count: the caller was turned away for want of
capacity. Content-filtered calls are answers, so they count as available. Unclassified
failures count against it: an unknown failure is not evidence of health.

Threshold rules (``alerts.rules``, genai_apm/rules.py) are evaluated per window row and
emitted as state transitions (jobs/alerts.py). Late events never reach a window; the latency
job routes and counts them (same source, same watermark, same events late).
"""

from __future__ import annotations

import sys

from genai_apm.flink.env import create_view
from genai_apm.jobs import minutes
from genai_apm.jobs.runner import Job
from genai_apm.jobs.sinks import Sinks
from genai_apm.jobs.windows import Window
from genai_apm.rules import METRICS, SCOPES, ThresholdRule
from genai_apm.schemas.outputs import ALL, FAILURES, RATES, UNAVAILABLE  # noqa: F401
from genai_apm.schemas.outputs import ERROR_OUTCOMES as OUTCOMES
from genai_apm.schemas.outputs import error_columns as output_columns
from genai_apm.schemas.outputs import error_windows as windows
from genai_apm.settings.config import Settings

JOB = "errors"
UNKNOWN_APP = "unknown"


def aggregate_sql(window: Window) -> str:
    """Counts per window and key from the shared per-minute rollup (jobs/minutes.py), with the
    window's rowtime (window_time) kept for alerts."""
    counts = ", ".join(count for _, count, _ in OUTCOMES)
    return f"""
SELECT window_start, window_end, window_time, model_id, app_id, requests, {counts},
  error_types
FROM {minutes.rollup_name(window)}"""


def metrics_sql(window: Window, aggregate_view: str) -> str:
    """The output rows (output_columns order), with window_time last for the alert rules."""
    count = {outcome: column for outcome, column, _ in OUTCOMES}
    failures = " + ".join(count[o] for o in FAILURES)
    unavailable = " + ".join(count[o] for o in UNAVAILABLE)
    rates = ", ".join(
        f"CAST({column} AS DOUBLE) / requests AS {rate}" for _, column, rate in OUTCOMES if rate
    )
    return f"""
SELECT
  CAST(window_start AS TIMESTAMP_LTZ(3)) AS window_start,
  CAST(window_end AS TIMESTAMP_LTZ(3)) AS window_end,
  '{window.name}' AS `window`, model_id, app_id, requests,
  {failures} AS errors,
  {", ".join(c for _, c, _ in OUTCOMES)},
  CAST({failures} AS DOUBLE) / requests AS error_rate,
  {rates},
  100.0 * CAST(requests - ({unavailable}) AS DOUBLE) / requests AS availability_pct,
  error_types,
  window_time
FROM {aggregate_view}"""


def rule_evaluation(rule: ThresholdRule, min_requests: int):
    """The rule as an Evaluation over its window's metrics view."""
    from genai_apm.jobs.alerts import Evaluation, sql_string

    model_all, app_all = SCOPES[rule.scope]
    where = [
        f"model_id {'=' if model_all else '<>'} '{ALL}'",
        f"app_id {'=' if app_all else '<>'} '{ALL}'",
    ]
    key = {
        "model_app": "CONCAT(model_id, '|', app_id)",
        "model": "model_id",
        "app": "app_id",
        "all": f"'{ALL}'",
    }[rule.scope]
    if rule.key is not None:
        where.append(f"{key} = {sql_string(rule.key)}")
    if METRICS[rule.metric] != "count":
        where.append(f"requests >= {int(min_requests)}")
    return Evaluation(
        rule=rule.name,
        kind="threshold",
        metric=rule.metric,
        scope=rule.scope,
        op=rule.op,
        threshold=rule.threshold,
        window=rule.window,
        relation=f"errors_metrics_{rule.window}",
        key_sql=key,
        observed_sql=rule.metric,
        where=" AND ".join(where),
    )


def assemble(t_env, settings: Settings, statements, sinks: Sinks) -> None:
    """Add the error breakdowns and threshold alerts over the registered `invocations` view
    to ``statements``."""
    from genai_apm.jobs import alerts
    from genai_apm.rules import threshold_rules

    minutes.register(t_env, settings)
    for window in windows(settings):
        minutes.rollup(t_env, settings, window)
        aggregate, view = f"errors_counts_{window.name}", f"errors_metrics_{window.name}"
        create_view(t_env, aggregate, aggregate_sql(window))
        create_view(t_env, view, metrics_sql(window, aggregate))
        columns = ", ".join(f"`{name}`" for name, _ in output_columns())
        sinks.write(statements, sinks.output(f"errors_{window.name}"), view, columns)
    evaluations = [
        rule_evaluation(r, settings.alerts.min_requests) for r in threshold_rules(settings)
    ]
    alerts.insert(statements, sinks, evaluations)


SPEC = Job(JOB, (assemble,))
run, backfill, main = SPEC.run, SPEC.backfill, SPEC.main


if __name__ == "__main__":
    sys.exit(main())
