"""Stage 6, per-call outliers: each successful call against its app's recent calls in log
space, through a temporal join on a per-minute reference (``outlier_views``)."""

from __future__ import annotations

from genai_apm.jobs import minutes
from genai_apm.jobs.anomalies.metrics import _num
from genai_apm.jobs.windows import Window
from genai_apm.settings.config import AnomalySettings

ONE_MINUTE = Window("1m", 1)  # the outlier reference's step: the shared 1-minute rollup


EVENT_METRICS = minutes.OUTLIER_INPUTS
OUTLIER_SD_FLOOR = 0.05  # in log space: a reference this steady still needs x > 1.35 x typical


def outlier_views(s: AnomalySettings) -> list[tuple[str, str]]:
    """Per-call outliers: successful calls whose tokens or latency are far above their app's
    recent calls, as (view name, SQL), the last in ANOMALY_COLUMNS (event 'outlier').

    The reference of a call is every successful call of its app in the
    ``anomalies.outlier_range_minutes`` one-minute windows up to the last one closed before it,
    in log space: tokens and latencies are multiplicative (log-normal-like), so the mean and
    sd of their logarithms describe the bulk, and z = (ln(x + 1) - mean) / sd >=
    ``anomalies.outlier_threshold`` is a call many times its app's typical size (a 60k-token
    prompt where the app's p99 is 2k). One event per call and metric that crosses it.

    Why not an OVER aggregation per call (RANGE of the last N minutes): Flink's bounded OVER
    operators scan every buffered timestamp of the key on each new one, so a call cost
    O(calls in range): at 6 calls/s per app and 10 minutes that was 1k events/s for the
    whole job (bench/flight.py). Here each call costs a lookup: sums of the logs and their
    squares per app and minute (a window aggregation), rolled over the range per minute row
    (an OVER on one row per app and minute), kept as a versioned view (latest row per app)
    and joined to each call as of its event time (an event-time temporal join, whose state
    is the latest reference per app and the calls not yet passed by the watermark).

    Why not a window join of each minute's calls with a reference of the minutes before it
    (tried 2026-12-03): Flink 2.2 planned TUMBLE(calls) JOIN TUMBLE(reference) on (app,
    window_start, window_end) as a regular join, whose state per app only grows; `all` ran
    at 3.9-4.1k events/s instead of 36-37k at 5,000 calls per event-time second and no
    faster at 50 (bench/run.py --only throughput --rows all_p1, 2 rounds alternated)."""
    r, z, n = int(s.outlier_range_minutes), s.outlier_threshold, int(s.outlier_min_calls)
    sums = ",\n    ".join(f"{m}_ln_{x} AS {m}_{x}" for m in EVENT_METRICS for x in ("n", "s", "q"))
    rolled = ",\n    ".join(
        f"SUM({m}_{x}) OVER w AS {m}_{x}" for m in EVENT_METRICS for x in ("n", "s", "q")
    )
    stats = ",\n    ".join(
        f"r.{m}_n AS {m}_ref_n, r.{m}_s / r.{m}_n AS {m}_mu, "
        f"SQRT(GREATEST(r.{m}_q / r.{m}_n - (r.{m}_s / r.{m}_n) * (r.{m}_s / r.{m}_n), 0.0)) "
        f"AS {m}_sigma"
        for m in EVENT_METRICS
    )
    # one row per call and metric, from one join: a UNION ALL of a query per metric planned
    # the temporal join, and kept its state, once per metric
    per_metric = ", ".join(
        f"ROW(CAST('{m}' AS STRING), CAST(s.{m} AS DOUBLE), s.{m}_ref_n, s.{m}_mu, s.{m}_sigma)"
        for m in EVENT_METRICS
    )
    alerts = f"""
SELECT alert_time, 'outlier' AS event, 'EVENT' AS state, CAST(NULL AS STRING) AS previous_state,
  'app' AS dimension, app_id AS `key`, metric AS metrics, metric,
  observed, baseline, robust_sd, score AS deviation, score,
  CASE WHEN score >= {2 * z!r} THEN 'critical' ELSE 'warning' END AS severity,
  CONCAT('app ', app_id, ' request ', COALESCE(request_id, '?'), ': ', metric, ' ',
    {_num("observed")}, ' vs typical ', {_num("baseline")}, ' (+',
    {_num("score", 1)}, ' log-sd over {r} min)') AS explanation,
  CAST(NULL AS STRING) AS explained_by, CAST(1 AS BIGINT) AS requests, 'event' AS `window`,
  alert_time AS window_start, alert_time AS window_end
FROM (
  SELECT s.alert_time, s.app_id, s.request_id, u.metric, u.observed,
    EXP(u.mu) - 1 AS baseline, u.sigma AS robust_sd,
    (LN(u.observed + 1) - u.mu) / GREATEST(u.sigma, {OUTLIER_SD_FLOOR!r}) AS score
  FROM outlier_stats AS s
  CROSS JOIN UNNEST(ARRAY[{per_metric}]) AS u (metric, observed, ref_n, mu, sigma)
  WHERE u.ref_n >= {n}
)
WHERE score >= {z!r}"""
    return [
        # one row per successful call with its app, request id, tokens and latency
        (
            "outlier_calls",
            """
SELECT event_ts, app_id, request_id, input_tokens, output_tokens, latency_ms
FROM minute_events WHERE ok""",
        ),
        # one row per app and minute with count, sum and sum of squares of logs
        (
            # per app and minute, from the shared 1-minute rollup (jobs/minutes.py)
            "outlier_minutes",
            f"""
SELECT app_id, window_time,
    {sums}
FROM {minutes.rollup_name(ONE_MINUTE)} WHERE `level` = {minutes.APP}""",
        ),
        # one row per app and minute with those sums over the last range minutes
        (
            "outlier_rolled",
            f"""
SELECT app_id, window_time AS ref_time,
    {rolled}
FROM outlier_minutes
WINDOW w AS (PARTITION BY app_id ORDER BY window_time
  RANGE BETWEEN INTERVAL '{r - 1}' MINUTE PRECEDING AND CURRENT ROW)""",
        ),
        # one row per app: its latest outlier_rolled row
        (
            # a versioned view: the latest reference of each app, as of any event time
            "outlier_reference",
            """
SELECT * FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY app_id ORDER BY ref_time DESC) AS row_num
  FROM outlier_rolled)
WHERE row_num = 1""",
        ),
        # one row per call with its app's reference count, mean and sd of logs
        (
            "outlier_stats",
            f"""
SELECT CAST(c.event_ts AS TIMESTAMP_LTZ(3)) AS alert_time, c.app_id, c.request_id,
    c.input_tokens, c.output_tokens, c.latency_ms,
    {stats}
FROM outlier_calls AS c
JOIN outlier_reference FOR SYSTEM_TIME AS OF c.event_ts AS r ON c.app_id = r.app_id
-- an app silent for the whole range has no reference left
WHERE c.event_ts < r.ref_time + INTERVAL '{r}' MINUTE""",
        ),
        # one row per call and metric over the threshold (ANOMALY_COLUMNS, event 'outlier')
        ("anomaly_outliers", alerts),
    ]
