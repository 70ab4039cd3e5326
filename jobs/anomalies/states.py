"""Stage 4, states and transitions: the incident lifecycle of a key (WARMUP, OK, ALARM, with
hysteresis on opening and closing), its score, top metric and explanation, and the open and
close events where the state changes."""

from __future__ import annotations

from genai_apm.jobs.anomalies.evaluation import _flags_sql, _size
from genai_apm.jobs.anomalies.metrics import ALARM, METRICS, OK, WARMUP, Metrics, _num, _over
from genai_apm.jobs.windows import Window
from genai_apm.settings.config import AnomalySettings


def state_sql(source: str, s: AnomalySettings, metrics: Metrics = METRICS) -> str:
    """Each row's incident state, score, top metric and explanation.

    A key's window is *sustained* when it and the key's previous ``open_after_windows`` - 1
    windows were all hot; the key is in ALARM while one of its last ``close_after_windows``
    windows was sustained. One noisy window therefore never opens an incident, and one quiet
    window inside an incident does not close it (a hysteresis written without recursion).
    ``alarm_score`` is the largest score of those windows (root-cause attribution)."""
    k, n = int(s.close_after_windows), int(s.open_after_windows)
    score = (
        "GREATEST("
        + ", ".join(
            f"CASE WHEN {m.name}_hot THEN {_size(s, f'{m.name}_dev')} ELSE 0.0 END" for m in metrics
        )
        + ")"
    )
    top = " ".join(
        f"WHEN {m.name}_hot AND {_size(s, f'{m.name}_dev')} = score THEN '{m.name}'"
        for m in metrics
    )

    def pick(suffix: str) -> str:
        # the top metric's column, by the conditions that chose it: CASE metric = '...' would
        # inline `metric`'s CASE into each branch once Flink merges the projections, and the
        # generated code grew big enough to take half a minute to compile
        return (
            "CASE "
            + " ".join(
                f"WHEN {m.name}_hot AND {_size(s, f'{m.name}_dev')} = score THEN {m.name}{suffix}"
                for m in metrics
            )
            + " END"
        )

    listed = ", ".join(f"CASE WHEN {m.name}_hot THEN '{m.name}' END" for m in metrics)
    signals = ", ".join(
        f"CASE WHEN {m.name}_hot THEN CONCAT('{m.name} ', {_num(m.name)}, ' vs baseline ', "
        f"{_num(f'{m.name}_ref')}, ' (', CASE WHEN {m.name}_dev >= 0 THEN '+' ELSE '' END, "
        f"{_num(f'{m.name}_dev', 1)}, ' sd)') END"
        for m in metrics
    )
    return f"""
SELECT *,
  {pick("")} AS observed, {pick("_ref")} AS baseline, {pick("_sd")} AS robust_sd,
  {pick("_dev")} AS deviation
FROM (
  SELECT *,
    CASE {top} END AS metric
  FROM (
    SELECT *,
      CASE WHEN MAX(CASE WHEN sustained THEN 1 ELSE 0 END) OVER w = 1 THEN '{ALARM}'
           WHEN warm THEN '{OK}' ELSE '{WARMUP}' END AS state,
      MAX({score}) OVER w AS alarm_score,
      {score} AS score,
      CONCAT_WS(',', {listed}) AS metrics,
      CONCAT(dimension, ' ', `key`, ': ', CONCAT_WS('; ', {signals})) AS explanation
    FROM (
      SELECT *,
        COALESCE(MIN(CASE WHEN hot THEN 1 ELSE 0 END) OVER w = 1 AND COUNT(*) OVER w = {n}, FALSE)
          AS sustained
      FROM ({_flags_sql(source, s, metrics)})
      WINDOW w AS {_over(f" ROWS BETWEEN {n - 1} PRECEDING AND CURRENT ROW")}
    )
    WINDOW w AS {_over(f" ROWS BETWEEN {k - 1} PRECEDING AND CURRENT ROW")}
  )
)"""


def transitions_sql(source: str, w: Window, s: AnomalySettings) -> str:
    """ANOMALY_COLUMNS rows: open (-> ALARM) and close (ALARM ->) events only."""
    crit = 2 * s.threshold
    return f"""
SELECT window_end AS alert_time,
  CASE WHEN state = '{ALARM}' THEN 'open' ELSE 'close' END AS event,
  state, previous_state, dimension, `key`,
  CASE WHEN state = '{ALARM}' THEN metrics ELSE '' END AS metrics,
  metric, observed, baseline, robust_sd, deviation,
  CASE WHEN state = '{ALARM}' THEN score ELSE 0.0 END AS score,
  CASE WHEN state <> '{ALARM}' THEN 'none' WHEN score >= {crit!r} THEN 'critical'
       ELSE 'warning' END AS severity,
  CASE WHEN state = '{ALARM}' THEN explanation
       ELSE CONCAT(dimension, ' ', `key`, ': no anomalous metric for {int(s.close_after_windows)}'
         , ' window(s)') END AS explanation,
  requests, '{w.name}' AS `window`,
  CAST(window_start AS TIMESTAMP_LTZ(3)) AS window_start,
  CAST(window_end AS TIMESTAMP_LTZ(3)) AS window_end,
  window_time
FROM (
  SELECT *, LAG(state) OVER w AS previous_state
  FROM {source}
  WINDOW w AS {_over("")}
)
WHERE (state = '{ALARM}') <> (COALESCE(previous_state, '{OK}') = '{ALARM}')"""
