"""The agents job through Kafka: generated agent traces (a runaway loop among them, delivered
out of order within the watermark bound, plus an orphan span and a malformed record),
checked session by session, tool by tool and alert by alert against Python on the same
spans."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import numpy as np
import pytest

from genai_apm import pricing, traffic
from genai_apm.jobs import agents
from genai_apm.kafka import io as kafka_io

pytestmark = pytest.mark.integration

START = traffic.TrafficSpec().start_ms  # 2026-01-01T00:00:00Z
MINUTE = 60_000
DELAY_S = 5
GAP_MIN = 30
LOOP_REPEATS = 10
CYCLE_BUDGET = 14
ORPHAN_PARENT = "feedfacefeedface"
MALFORMED = b'{"trace_id": "0123", "name": "chat m"}'


def _ms(value: str) -> int:
    return int(dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)


def make_spans() -> list[dict]:
    """~2 minutes of agent traces with a runaway loop, plus one orphan, disordered."""
    loop = traffic.runaway_agent_loop("conv-loop", START + 20_000, START + 100_000, repeats=15)
    spec = traffic.TrafficSpec(
        rate_per_s=3, duration_s=120, agent_share=1.0, seed=5, incidents=(loop,)
    )
    spans = [r.event for r in traffic.traffic(spec) if r.contract == traffic.SPAN]
    # an orphan: a tool span of a real conversation whose parent never arrives
    tool = next(s for s in spans[len(spans) // 2 :] if s["operation"] == "execute_tool")
    orphan = dict(tool, span_id="0badc0ffee000001", parent_span_id=ORPHAN_PARENT)
    at = spans.index(tool)
    ordered = spans[: at + 1] + [orphan] + spans[at + 1 :]
    return list(traffic.with_disorder(ordered, max_ms=3_000, seed=2))


def chat_cost(span: dict, table: pricing.PricingTable) -> float | None:
    price = table.price_at(span["provider"], span["model_id"], span["start_time"])
    if price is None:
        return None
    read = span["cache_read_input_tokens"] or 0
    uncached = max((span["input_tokens"] or 0) - read, 0)
    out = span["output_tokens"] or 0
    return (uncached * price.input + out * price.output + read * price.cache_read) / 1e6


def expected_sessions(spans: list[dict]) -> dict[str, dict]:
    """Per conversation (no conversation here pauses for the gap, so one session each)."""
    by_conv: dict[str, list[dict]] = defaultdict(list)
    for s in spans:
        by_conv[s["conversation_id"]].append(s)
    ids = {(s["trace_id"], s["span_id"]) for s in spans}
    table = pricing.load()
    out = {}
    for conv, rows in by_conv.items():
        rows.sort(key=lambda s: s["start_time"])
        starts = [s["start_time"] for s in rows]
        assert max(b - a for a, b in zip(starts, starts[1:], strict=False)) < GAP_MIN * MINUTE
        roots = [s for s in rows if s["operation"] == "invoke_agent"]
        chats = [s for s in rows if s["operation"] == "chat"]
        tools = [s for s in rows if s["operation"] == "execute_tool"]
        out[conv] = {
            "session_start": starts[0],
            "session_end": starts[-1] + GAP_MIN * MINUTE,
            "duration_ms": float(max(s["end_time"] for s in rows) - starts[0]),
            "turns": len(roots),
            "failed_turns": sum(s["status_code"] == "ERROR" for s in roots),
            "llm_calls": len(chats),
            "llm_errors": sum(s["status_code"] == "ERROR" for s in chats),
            "tool_calls": len(tools),
            "tool_errors": sum(s["status_code"] == "ERROR" for s in tools),
            "agent_cycles": len(chats),
            "spans": len(rows),
            "traces": len({s["trace_id"] for s in rows}),
            "orphan_spans": sum(
                bool(s["parent_span_id"]) and (s["trace_id"], s["parent_span_id"]) not in ids
                for s in rows
            ),
            "input_tokens": sum(s["input_tokens"] or 0 for s in chats),
            "output_tokens": sum(s["output_tokens"] or 0 for s in chats),
            "cost_usd": sum(c for c in (chat_cost(s, table) for s in chats) if c is not None)
            if any(chat_cost(s, table) is not None for s in chats)
            else None,
            "model_time_ms": float(sum(s["duration_ms"] for s in chats)),
            "tool_time_ms": float(sum(s["duration_ms"] for s in tools)),
            "final_status": max(roots, key=lambda s: s["start_time"])["status_code"]
            if roots
            else None,
        }
    return out


def expected_traces(spans: list[dict]) -> dict[str, dict]:
    """Agent turns run their children one after another: all are on the critical path."""
    by_trace: dict[str, list[dict]] = defaultdict(list)
    for s in spans:
        by_trace[s["trace_id"]].append(s)
    out = {}
    for trace_id, rows in by_trace.items():
        ids = {s["span_id"] for s in rows}
        linked = [s for s in rows if s["parent_span_id"] in ids]
        roots = [s for s in rows if s["parent_span_id"] is None]
        assert len(roots) == 1
        children = sorted(linked, key=lambda s: s["start_time"])
        for a, b in zip(children, children[1:], strict=False):
            assert a["end_time"] <= b["start_time"], "sequential children"
        slowest = max(rows, key=lambda s: (s["duration_ms"], -s["start_time"]))
        out[trace_id] = {
            "spans": len(rows),
            "orphan_spans": len(rows) - len(linked) - 1,
            "duration_ms": float(
                max(s["end_time"] for s in rows) - min(s["start_time"] for s in rows)
            ),
            "slowest_span": slowest["name"],
            "slowest_span_ms": slowest["duration_ms"],
            "critical_path": agents.PATH_SEP.join(s["name"] for s in roots + children),
            "critical_path_spans": 1 + len(children),
        }
    return out


def expected_stats(spans: list[dict], operation: str, key: str, percentiles) -> dict:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for s in spans:
        if s["operation"] == operation:
            groups[(s["start_time"] // MINUTE * MINUTE, s[key])].append(s)
    out = {}
    for k, rows in groups.items():
        durations = [s["duration_ms"] for s in rows]
        errors = sum(s["status_code"] == "ERROR" for s in rows)
        row = {
            "calls": len(rows),
            "errors": errors,
            "error_rate": errors / len(rows),
            "duration_max_ms": max(durations),
            "orphan_spans": sum(s["parent_span_id"] == ORPHAN_PARENT for s in rows),
        }
        for p in percentiles:
            row[f"duration_{agents.percentile_name(p)}_ms"] = float(
                np.percentile(durations, p * 100)
            )
        out[k] = row
    return out


def expected_alerts(spans: list[dict], sessions: dict[str, dict]) -> list[tuple]:
    """(rule, key, state) of every alert, sorted: a loop's ALARM and, when its calls pause,
    its OK; per agent, a transition at each closed session that changes the budget state."""
    calls: dict[tuple, int] = defaultdict(int)
    for s in spans:
        if s["operation"] == "execute_tool":
            calls[(s["conversation_id"], s["agent_name"], s["tool_name"])] += 1
    chats: dict[tuple, int] = defaultdict(int)
    for s in spans:
        if s["operation"] == "chat":
            chats[(s["conversation_id"], s["agent_name"], s["name"], s["trace_id"])] += 1
    out = []
    for rule, counts in (("agent-tool-loop", calls), ("agent-llm-loop", chats)):
        for k, n in counts.items():
            if n >= LOOP_REPEATS:
                out += [(rule, "|".join(k), "ALARM"), (rule, "|".join(k), "OK")]
    agent = {s["conversation_id"]: s["agent_name"] for s in spans}
    by_agent: dict[str, list] = defaultdict(list)
    for conv, row in sessions.items():
        by_agent[agent[conv]].append((row["session_end"], row["agent_cycles"]))
    for name, closed in by_agent.items():
        previous = None
        for _, cycles in sorted(closed):
            state = "ALARM" if cycles > CYCLE_BUDGET else "OK"
            if state != (previous or "OK"):
                out.append(("session-cycle-budget", name, state))
            previous = state
    return sorted(out)


@pytest.fixture
def job_settings(settings, tmp_path, unique):
    return settings.replace(
        kafka={"partitions": 1},
        topics={
            "spans": f"it.{unique}.spans",
            "sessions": f"it.{unique}.sessions",
            "agents": f"it.{unique}.agents",
            "alerts": f"it.{unique}.alerts",
            "traces": f"it.{unique}.traces",
        },
        flink={"watermark_emit": "on-event", "watermark_delay_s": DELAY_S},
        agents={
            "session_gap_minutes": GAP_MIN,
            "loop_repeats": LOOP_REPEATS,
            "cycle_budget": CYCLE_BUDGET,
            "cost_budget_usd": 0.0,
        },
        output={"tables_path": str(tmp_path / "tables")},
    )


def test_sessions_tool_stats_and_loop_alert_match_python(job_settings):
    s = job_settings
    spans = make_spans()
    topics = s.topics
    kafka_io.ensure_topics(
        s.kafka,
        [
            topics.spans,
            topics.sessions,
            topics.agents,
            topics.alerts,
            topics.traces,
            topics.deadletter,
        ],
    )
    kafka_io.produce_json(s.kafka, topics.spans, spans)
    kafka_io.produce_raw(s.kafka, topics.spans, [MALFORMED])

    agents.run(s, bounded=True, wait=True)

    # sessions
    want = expected_sessions(spans)
    assert "conv-loop" in want
    got = kafka_io.consume_json(s.kafka, topics.sessions, until_end=True)
    by_conv = {r["conversation_id"]: r for r in got}
    assert len(by_conv) == len(got), "one session per conversation"
    assert by_conv.keys() == want.keys()
    for conv, row in want.items():
        r = by_conv[conv]
        for column, value in row.items():
            actual = _ms(r[column]) if column.startswith("session_") else r[column]
            if isinstance(value, float) and column == "cost_usd":
                assert actual == pytest.approx(value, rel=1e-9), (conv, column)
            else:
                assert actual == value, (conv, column)
    assert sum(r["cost_usd"] or 0 for r in got) > 0
    assert sum(r["orphan_spans"] for r in got) == 1

    # traces: orphan counts, slowest span, critical path
    want_traces = expected_traces(spans)
    traces = {
        r["trace_id"]: r for r in kafka_io.consume_json(s.kafka, topics.traces, until_end=True)
    }
    assert traces.keys() == want_traces.keys()
    for trace_id, row in want_traces.items():
        for column, value in row.items():
            assert traces[trace_id][column] == value, (trace_id, column)
    assert sum(r["orphan_spans"] for r in traces.values()) == 1

    # tool and agent stats
    stats = kafka_io.consume_json(s.kafka, topics.agents, until_end=True)
    ps = s.agents.percentiles
    for dimension, operation, key in agents.STATS:
        want_stats = expected_stats(spans, operation, key, ps)
        rows = {(_ms(r["window_start"]), r["key"]): r for r in stats if r["dimension"] == dimension}
        assert rows.keys() == want_stats.keys(), dimension
        for k, row in want_stats.items():
            for column, value in row.items():
                assert rows[k][column] == pytest.approx(value, rel=1e-9), (dimension, k, column)

    # alerts: the runaway loop (tool and model, once each), sessions over the cycle budget
    alerts = kafka_io.consume_json(s.kafka, topics.alerts, until_end=True)
    got_alerts = sorted((a["rule"], a["key"], a["state"]) for a in alerts)
    assert got_alerts == expected_alerts(spans, want)
    loop = [a for a in alerts if a["rule"] in ("agent-tool-loop", "agent-llm-loop")]
    for rule in ("agent-tool-loop", "agent-llm-loop"):
        assert any(a["rule"] == rule and a["key"].startswith("conv-loop|") for a in loop)
    assert all(a["observed"] == LOOP_REPEATS for a in loop if a["state"] == "ALARM")
    # the OK comes after its ALARM, once the loop's calls have paused for the gap
    for a in loop:
        if a["state"] == "OK":
            alarm = next(b for b in loop if b["key"] == a["key"] and b["state"] == "ALARM")
            assert a["previous_state"] == "ALARM" and a["alert_time"] > alarm["alert_time"]
            assert "the loop stopped" in a["message"]

    dead = kafka_io.consume_json(s.kafka, topics.deadletter, until_end=True)
    assert [d["payload"] for d in dead] == [MALFORMED.decode()]
    assert "start_time: required" in dead[0]["reason"]

    # the Parquet tables hold what the topics hold
    tables = s.output.tables_path
    parquet = _read_parquet(f"{tables}/sessions")
    assert sorted(r["conversation_id"] for r in parquet) == sorted(by_conv)
    tool_rows = _read_parquet(f"{tables}/tool_stats_1m")
    assert len(tool_rows) == sum(r["dimension"] == "tool" for r in stats)


def _read_parquet(path: str) -> list[dict]:
    import duckdb

    con = duckdb.connect()
    rel = con.sql(f"SELECT * FROM read_parquet('{path}/*/*/[!._]*', hive_partitioning = true)")
    return [dict(zip(rel.columns, values, strict=True)) for values in rel.fetchall()]
