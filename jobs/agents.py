"""Agent and session observability from SpanEvents (topics.spans, as ingest writes them).

Outputs
  sessions        one row per conversation session (SESSION window on span start time,
                  gap ``agents.session_gap_minutes``): duration, turns, LLM and tool calls,
                  agent cycles, chat tokens, cost, time in model vs tools, final status,
                  orphan spans -> topics.sessions and the `sessions` Parquet table
  tool stats      per tool per window: calls, errors, error rate, p50/p90/p99 duration
  agent stats     per agent per window: the same over invoke_agent spans (turns)
                  both -> topics.agents (column `dimension` = tool | agent) and the
                  `tool_stats_1m` / `agent_stats_1m` Parquet tables
  traces          per trace: spans, orphans, slowest span, critical path -> topics.traces
                  and the `traces` Parquet table
  alerts          -> topics.alerts in the shape of jobs/alerts.py: agent_loop (one tool
                  called ``agents.loop_repeats`` times in a conversation, or the model
                  that often in one turn) and session budgets (agent cycles, cost)
  dead letters    spans breaking the SpanEvent contract (the generated checks of ingest)

Design notes
- Everything is SQL except the critical path (below): no Python UDF per span.
- Tokens and cost come from chat spans only: invoke_agent roots carry the turn's summed
  usage (see genai_apm/traffic/agents.py), so counting every span would double them.
- An agent cycle is one model round trip (reason, then act or answer): a turn with k tool
  calls has k + 1 cycles, so `agent_cycles` counts chat spans, retries included.
- Orphans: a span whose parent_span_id is set but whose parent does not arrive within
  ``agents.max_trace_minutes`` before it (an interval LEFT JOIN on trace and span id; a parent
  always starts no later than its child). They are counted per session and per window and
  otherwise analysed like any span, so a lost parent never loses its child. Out-of-order
  spans within the watermark bound change nothing; the join holds results back by
  max_trace_minutes, the price of waiting for a late parent. A parent delivered twice
  (a replay upstream) pairs with its children twice: duplicates are not removed here.
- Maximum session length: Flink session windows have no maximum, and their state is bounded
  by the gap (a session only stays open while spans keep arriving). A conversation that
  never pauses for a whole gap stays one session however long it runs; the row reports its
  full duration. ``agents.max_session_hours`` (8 h) bounds what the loop detector counts:
  it counts a tool's calls over the trailing 8 h of the conversation (an OVER range), so a
  loop alerts while it runs, not when its session closes, and its state is bounded.
- Alerts have the lifecycle of every other alert (ALARM, then one OK). A loop alert fires on
  the call that makes the count reach N (calls in one session are sequential, so two never
  share a start time) and clears when the loop's key falls quiet: a SESSION window over its
  calls (gap: the session gap for tool loops, max_trace_minutes for a model loop within a
  trace) that closes after the Nth call. Budget alerts are kept per agent, evaluated at each
  closed session: ALARM when a session of the agent went over a budget, OK at the agent's
  next session within it (jobs/alerts.py transitions; the message names the conversation).
- Per trace (a SESSION window on trace_id, gap ``agents.max_trace_minutes``): spans, orphans,
  the slowest span (SQL) and the critical path. The critical path needs the span tree, which
  SQL cannot walk, so one Python scalar function runs per *trace* over its spans packed by
  LISTAGG (not per span on the hot path); ``critical_path`` is that function, pure and
  unit-tested.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace

from genai_apm.jobs.runner import Job
from genai_apm.jobs.sinks import Sinks
from genai_apm.schemas.outputs import SESSION_COLUMNS, TRACE_COLUMNS, percentile_name  # noqa: F401
from genai_apm.schemas.outputs import agent_stats_columns as stats_columns  # noqa: F401
from genai_apm.schemas.outputs import agent_window as window
from genai_apm.settings.config import Settings

JOB = "agents"
UNKNOWN = "unknown"  # the key of spans without a conversation, agent or tool
EPOCH = "TO_TIMESTAMP_LTZ(0, 3)"


# packing a trace's spans into one string for the critical-path function
SPAN_SEP, FIELD_SEP = ";", "|"
PATH_SEP = " > "


@dataclass(frozen=True)
class PathSpan:
    span_id: str
    parent_span_id: str | None
    start_ms: int
    end_ms: int
    name: str


def critical_path(spans: list[PathSpan]) -> list[PathSpan]:
    """The chain of spans that bounded the trace's end-to-end time, root first.

    From the root (no parent in the trace; the longest if several, e.g. beside an orphan),
    walk back from its end: the child that finished last before the cursor was on the path,
    then recursively its own children; the cursor moves to that child's start and the walk
    repeats for earlier children. Sequential children (an agent turn) are all on the path;
    of parallel ones only the last to finish is.
    """
    if not spans:
        return []
    ids = {s.span_id for s in spans}
    children: dict[str, list[PathSpan]] = {}
    for s in spans:
        if s.parent_span_id in ids and s.parent_span_id != s.span_id:
            children.setdefault(s.parent_span_id, []).append(s)
    roots = [s for s in spans if s.parent_span_id not in ids or s.parent_span_id == s.span_id]
    root = max(roots or spans, key=lambda s: (s.end_ms - s.start_ms, -s.start_ms))

    path: list[PathSpan] = []
    seen: set[str] = set()

    def walk(span: PathSpan) -> None:
        if span.span_id in seen:  # a cycle of ids: malformed, never loop
            return
        seen.add(span.span_id)
        path.append(span)
        below = sorted(children.get(span.span_id, ()), key=lambda c: (c.end_ms, c.start_ms))
        cursor, chosen = span.end_ms, []
        for child in reversed(below):
            if child.end_ms <= cursor:
                chosen.append(child)
                cursor = child.start_ms
        for child in reversed(chosen):
            walk(child)

    walk(root)
    return path


def unpack_spans(packed: str) -> list[PathSpan]:
    """LISTAGG's ``span_id|parent|start_ms|end_ms|name;...`` -> spans (bad parts skipped)."""
    spans = []
    for part in (packed or "").split(SPAN_SEP):
        fields = part.split(FIELD_SEP, 4)
        if len(fields) != 5:
            continue
        span_id, parent, start, end, name = fields
        try:
            spans.append(PathSpan(span_id, parent or None, int(start), int(end), name))
        except ValueError:
            continue
    return spans


def critical_path_function():
    """The SQL function: packed spans -> critical path (names joined by PATH_SEP)."""
    from pyflink.table import DataTypes
    from pyflink.table.udf import udf

    def path_of(packed: str) -> str:
        return PATH_SEP.join(s.name for s in critical_path(unpack_spans(packed)))

    return udf(path_of, result_type=DataTypes.STRING(), deterministic=True)


# (dimension, operation of its spans, key column)
STATS = (("tool", "execute_tool", "tool_name"), ("agent", "invoke_agent", "agent_name"))


def epoch_ms(column: str) -> str:
    """Epoch milliseconds of a TIMESTAMP_LTZ(3) column (BIGINT; the session zone is UTC)."""
    return (
        f"(CAST(TIMESTAMPDIFF(SECOND, {EPOCH}, {column}) AS BIGINT) * 1000"
        f" + CAST(DATE_FORMAT({column}, 'SSS') AS BIGINT))"
    )


def register_events(t_env, settings: Settings, cost_expression: str) -> None:
    """agent_spans: the columns the analytics need; linked_spans: with `is_orphan`."""
    t_env.execute_sql(f"""
CREATE TEMPORARY VIEW agent_spans AS
SELECT
  event_ts, trace_id, span_id, NULLIF(parent_span_id, '') AS parent_span_id, `name`,
  operation,
  COALESCE(conversation_id, '{UNKNOWN}') AS conversation_id,
  COALESCE(agent_name, '{UNKNOWN}') AS agent_name,
  COALESCE(tool_name, '{UNKNOWN}') AS tool_name,
  service_name, COALESCE(status_code, 'UNSET') AS status_code, start_time, end_time,
  {epoch_ms("start_time")} AS start_ms,
  {epoch_ms("end_time")} AS end_ms,
  COALESCE(duration_ms, CAST({epoch_ms("end_time")} - {epoch_ms("start_time")} AS DOUBLE))
    AS duration_ms,
  status_code = 'ERROR' AS failed,
  CASE WHEN operation = 'chat' THEN COALESCE(input_tokens, 0) END AS chat_input_tokens,
  CASE WHEN operation = 'chat' THEN COALESCE(output_tokens, 0) END AS chat_output_tokens,
  CASE WHEN operation = 'chat' THEN {cost_expression} END AS cost_usd
FROM spans""")
    # A parent starts no later than its child: wait up to max_trace_minutes for it.
    bound = f"INTERVAL '{int(settings.agents.max_trace_minutes)}' MINUTE"
    t_env.execute_sql(f"""
CREATE TEMPORARY VIEW linked_spans AS
SELECT c.*,
  c.parent_span_id IS NOT NULL AND p.span_id IS NULL AS is_orphan
FROM agent_spans AS c
LEFT JOIN (SELECT trace_id, span_id, event_ts FROM agent_spans) AS p
  ON c.trace_id = p.trace_id AND c.parent_span_id = p.span_id
  AND p.event_ts BETWEEN c.event_ts - {bound} AND c.event_ts""")


def sessions_sql(settings: Settings) -> str:
    gap = f"INTERVAL '{int(settings.agents.session_gap_minutes)}' MINUTE"
    # the last turn's status: the largest (start, status) pair, start zero-padded to sort
    last_root = (
        "MAX(CONCAT(LPAD(CAST(start_ms AS STRING), 15, '0'), status_code))"
        " FILTER (WHERE operation = 'invoke_agent')"
    )
    return f"""
SELECT
  CAST(window_start AS TIMESTAMP_LTZ(3)) AS session_start,
  CAST(window_end AS TIMESTAMP_LTZ(3)) AS session_end,
  conversation_id,
  MAX(agent_name) AS agent_name,
  MAX(service_name) AS service_name,
  CAST(MAX(end_ms) - MIN(start_ms) AS DOUBLE) AS duration_ms,
  COUNT(*) FILTER (WHERE operation = 'invoke_agent') AS turns,
  COUNT(*) FILTER (WHERE operation = 'invoke_agent' AND failed) AS failed_turns,
  COUNT(*) FILTER (WHERE operation = 'chat') AS llm_calls,
  COUNT(*) FILTER (WHERE operation = 'chat' AND failed) AS llm_errors,
  COUNT(*) FILTER (WHERE operation = 'execute_tool') AS tool_calls,
  COUNT(*) FILTER (WHERE operation = 'execute_tool' AND failed) AS tool_errors,
  COUNT(*) FILTER (WHERE operation = 'chat') AS agent_cycles,
  COUNT(*) AS spans,
  COUNT(DISTINCT trace_id) AS traces,
  COUNT(*) FILTER (WHERE is_orphan) AS orphan_spans,
  COALESCE(SUM(chat_input_tokens), 0) AS input_tokens,
  COALESCE(SUM(chat_output_tokens), 0) AS output_tokens,
  SUM(cost_usd) AS cost_usd,
  COALESCE(SUM(duration_ms) FILTER (WHERE operation = 'chat'), 0) AS model_time_ms,
  COALESCE(SUM(duration_ms) FILTER (WHERE operation = 'execute_tool'), 0) AS tool_time_ms,
  SUBSTRING({last_root} FROM 16) AS final_status,
  window_time
FROM TABLE(SESSION(TABLE linked_spans PARTITION BY conversation_id,
  DESCRIPTOR(event_ts), {gap}))
GROUP BY window_start, window_end, window_time, conversation_id"""


def stats_sql(settings: Settings, dimension: str, operation: str, key: str) -> str:
    ps = settings.agents.percentiles
    array = "ARRAY[" + ", ".join(repr(float(p)) for p in ps) + "]"
    picks = ", ".join(f"p[{i + 1}] AS duration_{percentile_name(p)}_ms" for i, p in enumerate(ps))
    w = window(settings)
    return f"""
SELECT
  CAST(window_start AS TIMESTAMP_LTZ(3)) AS window_start,
  CAST(window_end AS TIMESTAMP_LTZ(3)) AS window_end,
  '{w.name}' AS `window`, '{dimension}' AS dimension, `key`, calls, errors,
  CAST(errors AS DOUBLE) / calls AS error_rate, {picks}, duration_max_ms, orphan_spans
FROM (
  SELECT window_start, window_end, {key} AS `key`,
    COUNT(*) AS calls,
    COUNT(*) FILTER (WHERE failed) AS errors,
    PERCENTILE(duration_ms, {array}) AS p,
    MAX(duration_ms) AS duration_max_ms,
    COUNT(*) FILTER (WHERE is_orphan) AS orphan_spans
  FROM TABLE({w.tvf("linked_spans")})
  WHERE operation = '{operation}'
  GROUP BY window_start, window_end, {key}
)"""


def traces_sql(settings: Settings) -> str:
    gap = f"INTERVAL '{int(settings.agents.max_trace_minutes)}' MINUTE"
    clean = "REGEXP_REPLACE(COALESCE({}, ''), '[|;]', '_')"
    packed = (
        f"CONCAT_WS('{FIELD_SEP}', {clean.format('span_id')}, {clean.format('parent_span_id')},"
        f" CAST(start_ms AS STRING), CAST(end_ms AS STRING), {clean.format('name')})"
    )
    # the slowest span: the largest (duration, -start) pair, both zero-padded to sort as text
    slowest = (
        "MAX(CONCAT(LPAD(CAST(CAST(duration_ms * 1000 AS BIGINT) AS STRING), 15, '0'),"
        " LPAD(CAST(9999999999999 - start_ms AS STRING), 13, '0'), name))"
    )
    return f"""
SELECT trace_start, trace_end, trace_id, conversation_id, agent_name, duration_ms, spans,
  orphan_spans, SUBSTRING(slowest FROM 29) AS slowest_span,
  CAST(SUBSTRING(slowest FROM 1 FOR 15) AS BIGINT) / 1000.0 AS slowest_span_ms,
  critical_path,
  CASE WHEN critical_path = '' THEN 0
    ELSE CARDINALITY(SPLIT(critical_path, '{PATH_SEP}')) END AS critical_path_spans
FROM (
  SELECT *, agent_critical_path(packed) AS critical_path
  FROM (
    SELECT
      CAST(window_start AS TIMESTAMP_LTZ(3)) AS trace_start,
      CAST(window_end AS TIMESTAMP_LTZ(3)) AS trace_end,
      trace_id,
      MAX(conversation_id) AS conversation_id,
      MAX(agent_name) AS agent_name,
      CAST(MAX(end_ms) - MIN(start_ms) AS DOUBLE) AS duration_ms,
      COUNT(*) AS spans,
      COUNT(*) FILTER (WHERE is_orphan) AS orphan_spans,
      {slowest} AS slowest,
      LISTAGG({packed}, '{SPAN_SEP}') AS packed
    FROM TABLE(SESSION(TABLE linked_spans PARTITION BY trace_id, DESCRIPTOR(event_ts), {gap}))
    GROUP BY window_start, window_end, trace_id
  )
)"""


def _text(value: str) -> str:
    return "CAST('" + value.replace("'", "''") + "' AS STRING)"


# (rule, metric, scope, operation, the key's columns): a tool repeated in a conversation,
# or the model called again and again within one turn (trace)
LOOPS = (
    (
        "agent-tool-loop",
        "tool_repeats",
        "session_agent_tool",
        "execute_tool",
        ("conversation_id", "agent_name", "tool_name"),
    ),
    (
        "agent-llm-loop",
        "llm_repeats",
        "session_agent_step_trace",
        "chat",
        ("conversation_id", "agent_name", "`name`", "trace_id"),
    ),
)


def loop_view(rule: str) -> str:
    return "agent_loop_" + rule.removeprefix("agent-").replace("-", "_")


def register_loop_views(t_env, settings: Settings) -> None:
    """Per loop rule: each step's calls with the count of its key's calls over the trailing
    max_session_hours (what loop_alerts_sql reads)."""
    hours = f"INTERVAL '{int(settings.agents.max_session_hours)}' HOUR"
    for rule, _, _, operation, keys in LOOPS:
        key_list = ", ".join(keys)
        t_env.execute_sql(f"""
CREATE TEMPORARY VIEW {loop_view(rule)} AS
SELECT event_ts, {key_list},
  COUNT(*) OVER w AS repeats,
  MIN(start_time) OVER w AS first_start
FROM agent_spans
WHERE operation = '{operation}'
WINDOW w AS (PARTITION BY {key_list} ORDER BY event_ts
  RANGE BETWEEN {hours} PRECEDING AND CURRENT ROW)""")


def loop_alerts_sql(settings: Settings) -> str:
    """ALERT_COLUMNS rows: ALARM at the Nth repeat of a step (over max_session_hours of a
    key), OK when that key's calls pause for the gap (its SESSION window closes)."""
    from genai_apm.jobs.alerts import number_text

    n = int(settings.agents.loop_repeats)
    gaps = {
        "agent-tool-loop": int(settings.agents.session_gap_minutes),
        "agent-llm-loop": int(settings.agents.max_trace_minutes),
    }
    selects = []
    for rule, metric, scope, _, keys in LOOPS:
        key_list = ", ".join(keys)
        counts = loop_view(rule)
        gap = gaps[rule]
        head = f"""{_text(rule)} AS `rule`,
  {_text("agent_loop")} AS `kind`, {_text(metric)} AS `metric`, {_text(scope)} AS `scope`,
  CONCAT_WS('|', {key_list}) AS `key`"""
        selects.append(f"""
SELECT event_ts AS alert_time, {head},
  {_text("ALARM")} AS `state`, CAST(NULL AS STRING) AS previous_state,
  CAST(repeats AS DOUBLE) AS observed, {_text(">=")} AS `op`,
  CAST({n} AS DOUBLE) AS threshold, {_text("session")} AS `window`,
  first_start AS window_start, CAST(event_ts AS TIMESTAMP_LTZ(3)) AS window_end,
  CONCAT({_text(f"{metric} ")}, CAST(repeats AS STRING), {_text(f" >= {n} in the session")})
    AS message
FROM {counts}
WHERE repeats = {n}
UNION ALL
SELECT CAST(window_end AS TIMESTAMP_LTZ(3)) AS alert_time, {head},
  {_text("OK")} AS `state`, {_text("ALARM")} AS previous_state,
  CAST(repeats AS DOUBLE) AS observed, {_text(">=")} AS `op`,
  CAST({n} AS DOUBLE) AS threshold, {_text("session")} AS `window`,
  first_start AS window_start, CAST(window_end AS TIMESTAMP_LTZ(3)) AS window_end,
  CONCAT({_text(f"{metric} ")}, {number_text("repeats")},
    {_text(f", the loop stopped: no call for {gap} min")}) AS message
FROM (
  SELECT window_start, window_end, {key_list},
    MAX(repeats) AS repeats, MIN(first_start) AS first_start,
    -- the session that holds the ALARM's call: later sessions of a key whose trailing
    -- count is still at or over N raised no ALARM of their own
    COUNT(*) FILTER (WHERE repeats = {n}) AS alarms
  FROM TABLE(SESSION(TABLE {counts} PARTITION BY ({key_list}), DESCRIPTOR(event_ts),
    INTERVAL '{gap}' MINUTE))
  GROUP BY window_start, window_end, {key_list}
)
WHERE alarms > 0""")
    return "\nUNION ALL".join(selects)


def budget_evaluations(settings: Settings, sessions_view: str) -> list:
    """alerts.Evaluation per session budget (cycles, cost; 0 disables one), per agent over its
    closed sessions: ALARM when one went over, OK at the next one within the budget."""
    from genai_apm.jobs.alerts import Evaluation

    a = settings.agents
    return [
        Evaluation(
            rule=rule,
            kind="budget",
            metric=metric,
            scope="agent",
            op=">",
            threshold=float(limit),
            window="session",
            relation=f"(SELECT *, session_start AS window_start, session_end AS window_end "
            f"FROM {sessions_view})",
            key_sql="agent_name",
            observed_sql=f"COALESCE({metric}, 0)",
            detail_sql="CONCAT('conversation ', conversation_id)",
        )
        for rule, metric, limit in (
            ("session-cycle-budget", "agent_cycles", a.cycle_budget),
            ("session-cost-budget", "cost_usd", a.cost_budget_usd),
        )
        if limit > 0
    ]


def assemble(t_env, settings: Settings, statements, sinks: Sinks) -> None:
    """Add every insert over the registered `spans` views to ``statements``."""
    from genai_apm import pricing as prices
    from genai_apm.jobs import alerts

    table = prices.load(settings.cost.pricing_file)  # a bad file: one clear line
    cost = prices.cost_sql(table, cache_write="CAST(NULL AS BIGINT)")
    register_events(t_env, settings, cost)

    t_env.execute_sql(f"CREATE TEMPORARY VIEW agent_sessions AS {sessions_sql(settings)}")
    # window_time (the rowtime budget alerts order by) is not an output column
    session_columns = ", ".join(f"`{name}`" for name, _ in SESSION_COLUMNS)
    sinks.write(statements, sinks.output("sessions"), "agent_sessions", session_columns)
    t_env.create_temporary_function("agent_critical_path", critical_path_function())
    t_env.execute_sql(f"CREATE TEMPORARY VIEW agent_traces AS {traces_sql(settings)}")
    sinks.write(statements, sinks.output("traces"), "agent_traces")
    # one INSERT per Kafka topic, so one sink each: an exactly-once sink's transactional ids
    # come from its table, and two sinks of one table with the same ids are refused
    stats_views, topic = [], None
    for dimension, operation, key in STATS:
        view = f"{dimension}_stats"
        t_env.execute_sql(
            f"CREATE TEMPORARY VIEW {view} AS {stats_sql(settings, dimension, operation, key)}"
        )
        stats_views.append(view)
        output = sinks.output(f"{view}_{window(settings).name}")
        sinks.write(statements, replace(output, topic=None), view)
        topic = output.topic  # the tool and agent tables share one topic
    if topic:
        statements.add_insert_sql(
            f"INSERT INTO `{topic}` "
            + " UNION ALL ".join(f"SELECT * FROM {view}" for view in stats_views)
        )
    columns = ", ".join(f"`{name}`" for name, _ in alerts.ALERT_COLUMNS)
    register_loop_views(t_env, settings)
    selects = [loop_alerts_sql(settings)]
    if budgets := budget_evaluations(settings, "agent_sessions"):
        selects.append(alerts.transitions_sql(budgets))
    statements.add_insert_sql(
        f"INSERT INTO `{alerts.sink(sinks)}` "
        + " UNION ALL ".join(f"SELECT {columns} FROM ({sql})" for sql in selects)
    )


SPEC = Job(JOB, (assemble,))
run, backfill, main = SPEC.run, SPEC.backfill, SPEC.main


if __name__ == "__main__":
    sys.exit(main())
