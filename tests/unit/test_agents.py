"""The agents job's pure parts: the critical path, span packing and the generated SQL."""

from __future__ import annotations

from genai_apm.jobs import agents
from genai_apm.jobs.alerts import ALERT_COLUMNS
from genai_apm.settings import config

P = agents.PathSpan


def names(path: list[agents.PathSpan]) -> list[str]:
    return [s.name for s in path]


def test_sequential_children_are_all_on_the_critical_path():
    spans = [
        P("c2", "r", 40, 70, "execute_tool search"),
        P("r", None, 0, 100, "invoke_agent a"),
        P("c1", "r", 5, 35, "chat m"),
        P("c3", "r", 75, 95, "chat m"),
    ]
    assert names(agents.critical_path(spans)) == [
        "invoke_agent a",
        "chat m",
        "execute_tool search",
        "chat m",
    ]


def test_of_parallel_children_only_the_last_to_finish_counts_and_grandchildren_follow():
    spans = [
        P("r", None, 0, 100, "root"),
        P("a", "r", 10, 60, "fast"),
        P("b", "r", 10, 90, "slow"),
        P("b1", "b", 20, 50, "slow.inner"),
        P("b2", "b", 55, 85, "slow.inner2"),
    ]
    assert names(agents.critical_path(spans)) == ["root", "slow", "slow.inner", "slow.inner2"]


def test_orphans_and_cycles_never_crash_and_stay_off_the_path():
    spans = [
        P("r", None, 0, 100, "root"),
        P("o", "missing", 10, 20, "orphan"),
        P("x", "y", 30, 40, "cycle-x"),
        P("y", "x", 30, 40, "cycle-y"),
        P("c", "r", 50, 60, "child"),
    ]
    assert names(agents.critical_path(spans)) == ["root", "child"]
    assert agents.critical_path([]) == []
    # a trace whose root was lost: the longest remaining span stands in for it
    assert names(agents.critical_path([P("a", "gone", 0, 5, "a"), P("b", "gone", 0, 9, "b")])) == [
        "b"
    ]


def test_unpack_skips_malformed_parts():
    packed = "s1||0|10|invoke_agent a;s2|s1|1|5|chat m;broken;s3|s1|x|9|bad"
    assert agents.unpack_spans(packed) == [
        P("s1", None, 0, 10, "invoke_agent a"),
        P("s2", "s1", 1, 5, "chat m"),
    ]
    assert agents.unpack_spans("") == []


def test_loop_alerts_have_the_alert_record_shape_and_an_ok_when_the_loop_stops():
    settings = config.load(path=None, environ={})
    loop = agents.loop_alerts_sql(settings)
    n = settings.agents.loop_repeats
    assert loop.count(f"\nWHERE repeats = {n}") == len(agents.LOOPS)  # one ALARM per crossing
    assert loop.count("WHERE alarms > 0") == len(agents.LOOPS)  # one OK per alarmed session
    gap, trace = settings.agents.session_gap_minutes, settings.agents.max_trace_minutes
    assert f"INTERVAL '{gap}' MINUTE" in loop and f"INTERVAL '{trace}' MINUTE" in loop
    for column, _ in ALERT_COLUMNS:
        assert loop.count(f"AS `{column}`") + loop.count(f"AS {column}") >= 2 * len(agents.LOOPS)


def test_budgets_are_evaluations_per_agent_and_zero_disables_them():
    settings = config.load(path=None, environ={})
    rules = {e.rule: e for e in agents.budget_evaluations(settings, "s")}
    assert set(rules) == {"session-cycle-budget", "session-cost-budget"}
    assert all(e.key_sql == "agent_name" and e.op == ">" for e in rules.values())
    off = settings.replace(agents={"cycle_budget": 0, "cost_budget_usd": 0.0})
    assert agents.budget_evaluations(off, "s") == []
    one = off.replace(agents={"cycle_budget": 3})
    assert [e.rule for e in agents.budget_evaluations(one, "s")] == ["session-cycle-budget"]


def test_stats_columns_follow_the_configured_percentiles():
    settings = config.load(path=None, environ={}).replace(agents={"percentiles": (0.5, 0.999)})
    names_ = [n for n, _ in agents.stats_columns(settings)]
    assert "duration_p50_ms" in names_ and "duration_p99_9_ms" in names_
    assert "SESSION(TABLE linked_spans PARTITION BY conversation_id" in agents.sessions_sql(
        settings
    )
    assert agents.window(settings).name == "1m"
