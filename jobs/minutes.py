"""The one aggregation of raw calls that every invocation analysis derives from.

Raw events are aggregated once, per 1-minute event-time window and model x app x provider x
region (``minute_stats``): counts by outcome, sums, maxima and mergeable log-bucketed
histograms (GENAI_HIST, infra/udfs), so a minute of traffic becomes a few dozen rows
whatever the number of users, and every analysis cascading from it is cheap.

The two finer keys ride inside that aggregation: GENAI_USER_MINUTES keeps a map from user x
feature to what spend attribution, budgets and the anomaly detector's user dimension need
(sums, maxima, three histograms), GENAI_SESSION_MINUTES one from session to per-session spend
(sums); each comes out as an array of rows that ``minute_users`` and ``minute_sessions``
unnest. Users and sessions are many (in the generator's traffic a user key has ~1.7 calls a
minute at 50 calls/s), and as window aggregations of their own they copied, combined and
shuffled every call twice more: `make profile JOB=all` put them at 22% and 10% of the source
task's samples. (One key for all made every analysis, latency's included, read ~0.6 wide
rows per call: the rollups' window buffers copying them were the bottleneck.)

Everything else reads these rows (cascaded window TVFs over their ``minute_time``): the model
and fleet ('*') rollups, the 5-minute sliding windows, error breakdowns and alerts, hourly
spend and budgets, the anomaly detector's windows and pairs, SLOs and quota. Only the
per-call outlier check reads calls again.

Views registered by ``register`` (once per job, whatever analyses it runs):
  minute_calls    every valid call with its derived values, flagged late or on time
  minute_events   the on-time calls (late calls can no longer reach their window: the latency
                  analytic routes and counts them, jobs/latency.py)
  minute_stats    one row per minute and KEY: minute_start, minute_time (its rowtime, for
                  cascaded window TVFs), the key, the ``aggregates`` columns and the arrays
                  `users` and `sessions`
  minute_users    one row per minute, model x app (x provider x region) and user x feature:
                  minute_start, minute_time, model_id, app_id and USER_ROW
  minute_sessions the same per session: SESSION_ROW
"""

from __future__ import annotations

import math

from genai_apm.flink.env import create_view
from genai_apm.schemas.outputs import ALL, FAILURES, OUTCOMES, histogram_gamma
from genai_apm.settings.config import Settings

UNKNOWN = "unknown"  # the key of calls without that attribute
KEY = ("model_id", "app_id", "provider", "region")
USER_KEY = ("model_id", "app_id", "user_id", "feature")
# (histogram column, DOUBLE input of minute_events): NULL inputs are not counted
HISTOGRAMS = (
    ("latency_h", "ok_latency_ms"),
    ("ttft_h", "ttft_ms"),
    ("tpot_h", "CASE WHEN tpot_ms > 0 THEN tpot_ms END"),
    ("tokens_per_s_h", "tokens_per_s"),
    ("ok_input_tokens_h", "CASE WHEN ok THEN CAST(input_tokens AS DOUBLE) END"),
    ("ok_output_tokens_h", "CASE WHEN ok THEN CAST(output_tokens AS DOUBLE) END"),
)
# what minute_users carries of the ``aggregates`` (the same values, computed by
# GENAI_USER_MINUTES): spend and its tokens (cost, budgets) and the anomaly detector's
# metrics and attribution weights (jobs/anomalies/)
USER_COLUMNS = (
    "requests",
    "ok_requests",
    "input_tokens_sum",
    "output_tokens_sum",
    "cache_read_tokens_sum",
    "cache_write_tokens_sum",
    "priced_requests",
    "cost_usd",
    "unpriced_tokens",
    "latency_max_ms",
    "ok_input_tokens_sum",
    "ok_input_tokens_n",
    "ok_input_tokens_max",
    "ok_output_tokens_sum",
    "ok_output_tokens_n",
    "ok_output_tokens_max",
    "latency_h",
    "ok_input_tokens_h",
    "ok_output_tokens_h",
)
# the columns of GENAI_USER_MINUTES' and GENAI_SESSION_MINUTES' rows (infra/udfs KeyedMinutes)
USER_ROW = ("user_id", "feature", *USER_COLUMNS)
SESSION_ROW = (
    "session_id",
    "requests",
    "priced_requests",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "unpriced_tokens",
    "cost_usd",
)
# the per-call outlier check's reference: sums of ln(x + 1) and their squares per minute
OUTLIER_INPUTS = ("input_tokens", "output_tokens", "latency_ms")


def log_gamma(settings: Settings) -> float:
    return math.log(histogram_gamma(settings.latency.histogram_relative_error))


def gamma(settings: Settings) -> float:
    return histogram_gamma(settings.latency.histogram_relative_error)


def aggregates(settings: Settings) -> list[tuple[str, str]]:
    """(column, aggregate over minute_events) of minute_stats, after the window and key."""
    from genai_apm.objectives import minute_aggregates as slo_minute_aggregates

    lg = repr(log_gamma(settings))
    cols = [
        ("requests", "COUNT(*)"),
        ("errors", "COUNT(*) FILTER (WHERE status = 'error')"),
        ("ok_requests", "COUNT(*) FILTER (WHERE ok)"),
        *((count, f"COUNT(*) FILTER (WHERE outcome = '{o}')") for o, count in OUTCOMES),
        ("input_tokens_sum", "SUM(input_tokens)"),
        ("input_tokens_n", "COUNT(input_tokens)"),
        ("output_tokens_sum", "SUM(output_tokens)"),
        ("output_tokens_n", "COUNT(output_tokens)"),
        ("cache_read_tokens_sum", "SUM(cache_read_tokens)"),
        ("cache_write_tokens_sum", "SUM(cache_write_tokens)"),
        ("priced_requests", "COUNT(cost_usd)"),
        ("cost_usd", "SUM(cost_usd)"),
        (
            "unpriced_tokens",
            "SUM(COALESCE(input_tokens, 0) + COALESCE(output_tokens, 0)) "
            "FILTER (WHERE cost_usd IS NULL)",
        ),
        ("latency_max_ms", "MAX(ok_latency_ms)"),
        ("ok_input_tokens_sum", "SUM(input_tokens) FILTER (WHERE ok)"),
        ("ok_input_tokens_n", "COUNT(input_tokens) FILTER (WHERE ok)"),
        ("ok_input_tokens_max", "MAX(input_tokens) FILTER (WHERE ok)"),
        ("ok_output_tokens_sum", "SUM(output_tokens) FILTER (WHERE ok)"),
        ("ok_output_tokens_n", "COUNT(output_tokens) FILTER (WHERE ok)"),
        ("ok_output_tokens_max", "MAX(output_tokens) FILTER (WHERE ok)"),
        ("error_types", "COLLECT(error_type) FILTER (WHERE error_type IS NOT NULL)"),
        *((name, f"GENAI_HIST({value}, {lg})") for name, value in HISTOGRAMS),
    ]
    for m in OUTLIER_INPUTS:
        ln = f"LN(CAST({m} AS DOUBLE) + 1)"
        cols += [
            (f"{m}_ln_n", f"COUNT({m}) FILTER (WHERE ok)"),
            (f"{m}_ln_s", f"SUM({ln}) FILTER (WHERE ok)"),
            (f"{m}_ln_q", f"SUM({ln} * {ln}) FILTER (WHERE ok)"),
        ]
    return cols + list(slo_minute_aggregates(settings))


def source(columns) -> str:
    """The per-minute view that a grouping by ``columns`` reads: minute_users when it needs a
    user or feature, else the far smaller minute_stats."""
    return "minute_users" if set(columns) - set(KEY) else "minute_stats"


def register(t_env, settings: Settings, cost_expression: str | None = None) -> None:
    """minute_calls, minute_events and minute_stats over the registered `invocations` view;
    a second call in the same job does nothing (analyses share one aggregation)."""
    if "minute_stats" in t_env.list_temporary_views():
        return
    if cost_expression is None:
        from genai_apm import pricing

        cost_expression = pricing.cost_sql(pricing.load(settings.cost.pricing_file))
    known = ", ".join(f"'{c}'" for c in FAILURES if c != "unclassified")
    every_key = dict.fromkeys(KEY + USER_KEY)
    keys = ",\n  ".join(f"COALESCE({c}, '{UNKNOWN}') AS {c}" for c in every_key)
    tumble_s = 60
    create_view(
        t_env,
        "minute_calls",
        f"""
SELECT
  event_ts, request_id, session_id,
  {keys},
  status, status = 'success' AS ok, streaming,
  CASE
    WHEN status = 'error' THEN
      CASE WHEN error_class IN ({known}) THEN error_class ELSE 'unclassified' END
    WHEN error_class = 'content_filtered' OR guardrail_intervened THEN 'content_filtered'
    ELSE 'success'
  END AS outcome,
  latency_ms,
  CASE WHEN status = 'success' THEN latency_ms END AS ok_latency_ms,
  CASE WHEN status = 'success' AND streaming THEN ttft_ms END AS ttft_ms,
  tpot_ms,
  CASE WHEN tpot_ms > 0 THEN 1000 / tpot_ms END AS tokens_per_s,
  input_tokens, output_tokens,
  COALESCE(cache_read_input_tokens, 0) AS cache_read_tokens,
  COALESCE(cache_write_input_tokens, 0) AS cache_write_tokens,
  {cost_expression} AS cost_usd,
  error_type,
  CURRENT_WATERMARK(event_ts) AS `watermark`,
  -- a late call can no longer reach its window; it is routed, not silently dropped
  COALESCE(event_ts <= CURRENT_WATERMARK(event_ts), FALSE) AS is_late,
  -- the 1-minute window the call belongs to; BIGINT, as epoch milliseconds overflow INT
  TO_TIMESTAMP_LTZ(
    CAST(TIMESTAMPDIFF(SECOND, TO_TIMESTAMP_LTZ(0, 3), event_ts) AS BIGINT)
      / {tumble_s} * {tumble_s}, 0) AS tumble_start
FROM (
  SELECT *,
    CASE WHEN status = 'success' AND output_tokens > 0 THEN
      CASE WHEN streaming AND ttft_ms IS NOT NULL AND output_tokens > 1
           THEN (latency_ms - ttft_ms) / (output_tokens - 1)
           ELSE latency_ms / output_tokens END
    END AS tpot_ms
  FROM invocations
)""",
    )
    create_view(t_env, "minute_events", "SELECT * FROM minute_calls WHERE NOT is_late")
    lg = repr(log_gamma(settings))
    finer = [  # the finer keys' rows, as arrays of this aggregation (unnested below)
        (
            "users",
            "GENAI_USER_MINUTES(user_id, feature, ok, input_tokens, output_tokens, "
            f"cache_read_tokens, cache_write_tokens, cost_usd, ok_latency_ms, {lg})",
        ),
        (
            "sessions",
            f"GENAI_SESSION_MINUTES(COALESCE(session_id, '{UNKNOWN}'), input_tokens, "
            "output_tokens, cache_read_tokens, cache_write_tokens, cost_usd)",
        ),
    ]
    cols = ",\n  ".join(f"{sql} AS {name}" for name, sql in aggregates(settings) + finer)
    create_view(
        t_env,
        "minute_stats",
        f"""
-- renamed: a window TVF over these rows adds its own window_start, window_end, window_time
SELECT window_start AS minute_start, window_time AS minute_time, {", ".join(KEY)},
  {cols}
FROM TABLE(TUMBLE(TABLE minute_events, DESCRIPTOR(event_ts), INTERVAL '1' MINUTE))
GROUP BY window_start, window_end, window_time, {", ".join(KEY)}""",
    )
    # the rows keep minute_time, the rowtime, for cascaded windows; a user's calls through
    # two providers or regions of a model x app are two rows (every reader groups them)
    head = "minute_start, minute_time, model_id, app_id"
    for view, array, row in (
        ("minute_users", "users", USER_ROW),
        ("minute_sessions", "sessions", SESSION_ROW),
    ):
        create_view(
            t_env,
            view,
            f"""
SELECT {head}, r.*
FROM minute_stats CROSS JOIN UNNEST({array}) AS r ({", ".join(row)})""",
        )


def merged(settings: Settings, extra: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """(column, aggregate over minute_stats rows) that merge them into a coarser row: sums,
    maxima, merged histograms and multisets. ``extra`` names further summed columns."""
    maxima = {"latency_max_ms", "ok_input_tokens_max", "ok_output_tokens_max"}
    out = []
    for name, _ in aggregates(settings):
        if name in maxima:
            out.append((name, f"MAX({name})"))
        elif name.endswith("_h"):
            out.append((name, f"GENAI_HIST_MERGE({name})"))
        elif name == "error_types":
            out.append((name, f"GENAI_COUNTS_MERGE({name})"))
        else:
            out.append((name, f"SUM({name})"))
    out += [(name, f"SUM({name})") for name in extra]
    return out


def quantiles(settings: Settings, histogram: str, ps) -> str:
    """An ARRAY<DOUBLE> of the histogram's quantiles (NULLs when it is empty)."""
    array = "ARRAY[" + ", ".join(repr(float(p)) for p in ps) + "]"
    return f"GENAI_HIST_QUANTILES({histogram}, {array}, {gamma(settings)!r})"


# GROUPING(model_id, app_id) of a rollup row: which of the two were rolled up to '*'
MODEL_APP, MODEL, APP, FLEET = 0, 1, 2, 3


def rollup_name(window) -> str:
    return f"minute_rollup_{window.size_min}m_{window.hop_min or window.size_min}m"


def rollup(t_env, settings: Settings, window) -> str:
    """Register (once) and name the rollup of minute_stats over ``window`` (a jobs.windows
    Window, whole minutes) per model x app, model, app and fleet: every minute_stats column
    merged, plus `level` (MODEL_APP, MODEL, APP or FLEET)."""
    name = rollup_name(window)
    if name in t_env.list_temporary_views():
        return name
    cols = ",\n  ".join(f"{sql} AS {column}" for column, sql in merged(settings))
    create_view(
        t_env,
        name,
        f"""
SELECT window_start, window_end, window_time,
  CASE WHEN GROUPING(model_id) = 1 THEN '{ALL}' ELSE model_id END AS model_id,
  CASE WHEN GROUPING(app_id) = 1 THEN '{ALL}' ELSE app_id END AS app_id,
  GROUPING(model_id, app_id) AS `level`,
  {cols}
FROM TABLE({window.tvf("minute_stats", "minute_time")})
GROUP BY window_start, window_end, window_time,
  GROUPING SETS ((model_id, app_id), (model_id), (app_id), ())""",
    )
    return name
