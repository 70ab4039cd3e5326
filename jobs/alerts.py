"""Alerts as state transitions, in pure SQL, for any rule evaluated per window.

Each rule gives one row per window and key it sees: ALARM when the observed value crosses
the threshold, else OK. ``LAG(state) OVER (PARTITION BY rule, key ORDER BY window_time)``
(event time, so replays agree) pairs every row with the key's previous one, and only rows
whose state differs are emitted: OK->ALARM and ALARM->OK, one event per transition. A key's
first row emits only if it is an ALARM.

A key without calls in a window has no row there, so it keeps its state until its next row:
an ALARM clears at the first later window that evaluates OK. Over sliding windows the
trailing windows that still hold a key's last calls usually clear it; a key that falls
silent while in ALARM stays in ALARM until it is seen again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from genai_apm.schemas.flink_sql import sql_literal
from genai_apm.schemas.outputs import ALARM, ALERT_COLUMNS, OK, RECOVERED, describe  # noqa: F401


def sql_string(value: str) -> str:
    return f"CAST({sql_literal(value)} AS STRING)"


def number_text(expression: str) -> str:
    """A DOUBLE as short text: three significant digits for most values (96.7, 14.4, 0.0534),
    whole numbers from 100 up; 'n/a' for NULL."""
    x = f"CAST({expression} AS DOUBLE)"
    return f"""(CASE
    WHEN {x} IS NULL THEN 'n/a'
    WHEN ABS({x}) >= 100 THEN CAST(CAST(ROUND({x}, 0) AS BIGINT) AS STRING)
    WHEN ABS({x}) >= 10 THEN CAST(ROUND({x}, 1) AS STRING)
    WHEN ABS({x}) >= 1 THEN CAST(ROUND({x}, 2) AS STRING)
    ELSE CAST(ROUND({x}, 4) AS STRING) END)"""


def message_sql(metric: str, op: str, threshold: float, window: str, observed: str) -> str:
    """The ALARM / OK wording of a threshold rule, for a row whose `state` is known."""
    value = number_text(observed)
    limit = sql_string(f"{threshold:g}")
    alarm = f"CONCAT({sql_string(metric + ' ')}, {value}, {sql_string(f' {op} ')}, {limit}, "
    alarm += f"{sql_string(f' over {window}')})"
    back = sql_string(f", back {RECOVERED.get(op, 'within')} ")
    at = sql_string(", back at ")
    ok = (
        f"CONCAT({sql_string(metric + ' ')}, {value}, "
        f"CASE WHEN CAST({observed} AS DOUBLE) = CAST({threshold!r} AS DOUBLE) THEN {at} "
        f"ELSE {back} END, {limit})"
    )
    return f"CASE WHEN `state` = {sql_string(ALARM)} THEN {alarm} ELSE {ok} END"


@dataclass(frozen=True)
class Evaluation:
    """One rule over a windowed relation that has window_start, window_end and window_time."""

    rule: str
    kind: str
    metric: str
    scope: str
    op: str
    threshold: float
    window: str
    relation: str
    key_sql: str  # the key column(s) as a string
    observed_sql: str
    where: str = "TRUE"
    # the ALARM condition when it is more than "observed op threshold" (e.g. use over a level
    # OR a forecast under a horizon); NULL counts as OK
    alarm_sql: str | None = None
    # STRING SQL appended to the message: the context of the value (burn per window, top app)
    detail_sql: str | None = None
    # STRING SQL naming the rule per row, when one evaluation serves several rules (SLOs): a
    # filter per rule would copy the relation's whole plan once per rule
    rule_sql: str | None = None
    scope_sql: str | None = None

    def select(self) -> str:
        observed = f"CAST({self.observed_sql} AS DOUBLE)"
        threshold = f"CAST({self.threshold!r} AS DOUBLE)"
        alarm = self.alarm_sql or f"{observed} {self.op} {threshold}"
        message = message_sql(self.metric, self.op, self.threshold, self.window, "`observed`")
        if self.detail_sql:
            message = f"CONCAT({message}, '; ', COALESCE(detail, ''))"
        return f"""
SELECT `rule`, `kind`, `metric`, `scope`, `key`, `state`, `observed`, `op`, `threshold`,
  `window`, window_start, window_end, window_time, {message} AS message
FROM (
SELECT
  {self.rule_sql or sql_string(self.rule)} AS `rule`, {sql_string(self.kind)} AS `kind`,
  {sql_string(self.metric)} AS `metric`, {self.scope_sql or sql_string(self.scope)} AS `scope`,
  CAST({self.key_sql} AS STRING) AS `key`,
  CASE WHEN COALESCE({alarm}, FALSE) THEN {sql_string(ALARM)} ELSE {sql_string(OK)} END
    AS `state`,
  {observed} AS `observed`, {sql_string(self.op)} AS `op`, {threshold} AS `threshold`,
  {sql_string(self.window)} AS `window`,
  CAST(window_start AS TIMESTAMP_LTZ(3)) AS window_start,
  CAST(window_end AS TIMESTAMP_LTZ(3)) AS window_end,
  window_time,
  CAST({self.detail_sql or "NULL"} AS STRING) AS detail
FROM {self.relation}
WHERE {self.where})"""


def transitions_sql(evaluations: Sequence[Evaluation]) -> str:
    """ALERT_COLUMNS rows: the evaluations whose state differs from the key's previous one."""
    union = "\nUNION ALL".join(e.select() for e in evaluations)
    return f"""
SELECT window_end AS alert_time, `rule`, `kind`, `metric`, `scope`, `key`, `state`,
  previous_state, `observed`, `op`, `threshold`, `window`, window_start, window_end, message
FROM (
  SELECT *,
    LAG(`state`) OVER (PARTITION BY `rule`, `key` ORDER BY window_time) AS previous_state
  FROM ({union})
)
WHERE `state` <> COALESCE(previous_state, {sql_string(OK)})"""


def sink(sinks) -> str:
    """The alerts sink every alerting analytic shares: the topic, or JSON lines in a backfill."""
    return sinks.events("alerts", "alerts", ALERT_COLUMNS, key=["rule", "key"])


def insert(statements, sinks, evaluations: Sequence[Evaluation]) -> None:
    """The evaluations' transitions into the alerts sink."""
    name = sink(sinks)
    if evaluations:
        statements.add_insert_sql(f"INSERT INTO `{name}` {transitions_sql(evaluations)}")
