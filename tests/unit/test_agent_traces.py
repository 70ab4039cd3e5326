"""Agent traces: well-formed span trees, one trace per turn, several turns per conversation,
and for every chat span the InvocationEvent that describes the same call."""

from __future__ import annotations

import collections
import re

import numpy as np
import pytest

from genai_apm import traffic
from genai_apm.schemas.invocation import INVOCATION_V1
from genai_apm.schemas.span import SPAN_V1
from genai_apm.traffic import TrafficSpec
from tests.unit.test_generator import contract_problems

T0 = TrafficSpec().start_ms  # 2026-01-01T00:00:00Z
# support-triage's prompts trip a content filter for a while, so some turns get a blocked answer
BLOCKED_AGENT = "support-triage"
SPEC = TrafficSpec(
    rate_per_s=16,
    duration_s=5 * 60,
    agent_share=0.5,
    seed=3,
    incidents=(traffic.content_filter_spike(BLOCKED_AGENT, T0 + 60_000, T0 + 180_000, 0.3),),
)
END_MS = T0 + 5 * 60_000
FILTER_FINISH = ("guardrail_intervened", "content_filter")
HEX32, HEX16 = re.compile(r"^[0-9a-f]{32}$"), re.compile(r"^[0-9a-f]{16}$")


def _complete(trace: list[dict]) -> bool:
    """Whether the run went on long enough for all of the turn's spans to start."""
    return max(s["end_time"] for s in trace) < END_MS


@pytest.fixture(scope="module")
def records() -> list[traffic.Record]:
    return list(traffic.traffic(SPEC))


@pytest.fixture(scope="module")
def spans(records) -> list[dict]:
    return [r.event for r in records if r.contract == traffic.SPAN]


@pytest.fixture(scope="module")
def traces(spans) -> dict[str, list[dict]]:
    by_trace = collections.defaultdict(list)
    for s in spans:
        by_trace[s["trace_id"]].append(s)
    return by_trace


def test_spans_honour_the_contract(spans):
    assert len(spans) > 2000
    for s in spans:
        assert contract_problems(SPAN_V1, s) == [], s
        assert HEX32.match(s["trace_id"]) and HEX16.match(s["span_id"])
        assert s["duration_ms"] == s["end_time"] - s["start_time"] >= 1
        assert s["operation"] in ("invoke_agent", "chat", "execute_tool")
        assert s["name"].startswith(s["operation"] + " ")
        assert (s["status_code"] == "ERROR") == (s["error_type"] is not None)


def test_every_trace_is_one_well_formed_tree(traces):
    assert len(traces) > 300
    for trace in traces.values():
        ids = {s["span_id"]: s for s in trace}
        assert len(ids) == len(trace)  # span ids unique
        roots = [s for s in trace if s["parent_span_id"] is None]
        assert len(roots) == 1
        (root,) = roots
        assert root["operation"] == "invoke_agent" and root["kind"] == "INTERNAL"
        assert root["status_code"] in ("OK", "ERROR")
        children = sorted((s for s in trace if s is not root), key=lambda s: s["start_time"])
        assert children and children[0]["operation"] == "chat"
        for child in children:
            # a flat agent loop: every span hangs off the turn's root
            assert child["parent_span_id"] == root["span_id"]
            assert (
                root["start_time"] <= child["start_time"] <= child["end_time"] <= root["end_time"]
            )
            assert child["conversation_id"] == root["conversation_id"]
            assert child["agent_name"] == root["agent_name"]
        # one step after another, never overlapping
        for before, after in zip(children, children[1:], strict=False):
            assert before["end_time"] <= after["start_time"]
        chats = [c for c in children if c["operation"] == "chat"]
        assert chats and all(c["kind"] == "CLIENT" for c in chats)
        ok_chats = [c for c in chats if c["status_code"] != "ERROR"]
        if not _complete(trace):
            continue  # the run ended mid-turn: the root is there, later steps are not
        assert root["input_tokens"] == sum(c["input_tokens"] for c in chats)
        assert root["output_tokens"] == sum(c["output_tokens"] for c in chats)
        if root["status_code"] == "OK":  # the turn ends with an answer, not a tool request
            assert ok_chats[-1] is chats[-1] is children[-1]
            # a final answer, or a content filter's verdict (which the agent cannot act on)
            assert ok_chats[-1]["finish_reasons"] in ("end_turn", "stop", *FILTER_FINISH)


def test_a_tool_call_follows_each_chat_that_asks_for_one(traces):
    asked = 0
    for trace in traces.values():
        steps = sorted((s for s in trace if s["parent_span_id"]), key=lambda s: s["start_time"])
        for step, nxt in zip(steps, steps[1:], strict=False):
            if step["finish_reasons"] in ("tool_use", "tool_calls"):
                asked += 1
                assert nxt["operation"] == "execute_tool"
            if step["operation"] == "execute_tool":
                assert nxt["operation"] == "chat"  # the model reads every tool result
                if nxt["status_code"] != "ERROR":
                    assert nxt["input_tokens"] > step_input(steps, step)
    assert asked > 500


def step_input(steps: list[dict], tool: dict) -> int:
    """Prompt size of the chat that asked for ``tool``."""
    before = [s for s in steps if s["operation"] == "chat" and s["end_time"] <= tool["start_time"]]
    return before[-1]["input_tokens"]


def test_conversations_span_several_turns(traces):
    turns = collections.defaultdict(list)
    for trace in traces.values():
        root = next(s for s in trace if s["parent_span_id"] is None)
        turns[root["conversation_id"]].append(root)
    counts = np.array([len(t) for t in turns.values()])
    assert counts.max() >= 4 and counts.mean() > 1.8
    for roots in turns.values():
        roots.sort(key=lambda s: s["start_time"])
        assert len({r["agent_name"] for r in roots}) == 1
        for before, after in zip(roots, roots[1:], strict=False):
            assert before["end_time"] < after["start_time"]  # the user reads, then asks again


def test_some_tools_fail_and_the_agent_carries_on(traces):
    tools = [s for t in traces.values() for s in t if s["operation"] == "execute_tool"]
    failed = [s for s in tools if s["status_code"] == "ERROR"]
    assert 0.01 < len(failed) / len(tools) < 0.12
    assert {s["error_type"] for s in failed} <= {"TimeoutError", "HTTPError", "ToolExecutionError"}
    assert len({s["tool_call_id"] for s in tools}) == len(tools)
    carried_on = 0
    for s in failed:
        later = [c for c in traces[s["trace_id"]] if c["start_time"] > s["end_time"]]
        carried_on += any(c["operation"] == "chat" for c in later)
    assert carried_on == len(failed)


def test_every_chat_span_has_its_invocation_event(records, spans):
    calls = [r.event for r in records if r.contract == traffic.INVOCATION]
    traced = {(e["trace_id"], e["span_id"]): e for e in calls if e["trace_id"]}
    chats = [s for s in spans if s["operation"] == "chat"]
    assert len(traced) == len(chats) > 1000
    agents = {s["agent_name"] for s in spans}
    for chat in chats:
        event = traced[(chat["trace_id"], chat["span_id"])]
        assert contract_problems(INVOCATION_V1, event) == []
        assert event["session_id"] == chat["conversation_id"]
        assert event["event_time"] == chat["start_time"]
        assert event["latency_ms"] == chat["duration_ms"]
        assert event["model_id"] == chat["model_id"] and event["provider"] == chat["provider"]
        assert event["app_id"] == chat["agent_name"] and event["feature"] == "agent"
        for field in ("input_tokens", "output_tokens", "cache_read_input_tokens", "error_type"):
            assert event[field] == chat[field], field
        assert event["finish_reason"] == chat["finish_reasons"]
        assert (event["status"] == "error") == (chat["status_code"] == "ERROR")
    assert {e["app_id"] for e in traced.values()} == agents
    # spans come just before their call's event, both in event-time order
    position = {id(r.event): i for i, r in enumerate(records)}
    assert all(position[id(traced[(c["trace_id"], c["span_id"])])] > position[id(c)] for c in chats)


def test_a_blocked_answer_ends_the_turn_without_failing_it(records, traces):
    events = [r.event for r in records if r.contract == traffic.INVOCATION]
    calls = {(e["trace_id"], e["span_id"]): e for e in events if e["trace_id"]}
    blocked = [
        s
        for t in traces.values()
        for s in t
        if s["operation"] == "chat" and s["finish_reasons"] in FILTER_FINISH
    ]
    assert len(blocked) > 30
    assert sum(s["agent_name"] == BLOCKED_AGENT for s in blocked) > 0.7 * len(blocked)
    continued = 0
    for chat in blocked:
        # a success, not an error: neither the span nor its call says otherwise
        assert chat["status_code"] != "ERROR"
        assert chat["error_type"] is None and chat["status_message"] is None
        call = calls[(chat["trace_id"], chat["span_id"])]
        assert (call["status"], call["error_class"], call["http_status"]) == (
            "success",
            "content_filtered",
            200,
        )
        assert call["guardrail_intervened"] and chat["input_tokens"] > 0
        trace = traces[chat["trace_id"]]
        (root,) = [s for s in trace if s["parent_span_id"] is None]
        # the filter's verdict is the turn's answer: nothing follows it, the turn is OK
        assert max(s["start_time"] for s in trace if s is not root) == chat["start_time"]
        assert root["status_code"] == "OK" and root["error_type"] is None
        assert root["end_time"] >= chat["end_time"]
        # and the conversation goes on: the user may ask again
        later = [
            t
            for t in traces.values()
            if t[0]["conversation_id"] == chat["conversation_id"]
            and min(s["start_time"] for s in t) > root["end_time"]
        ]
        continued += bool(later)
    assert continued > 0.3 * len(blocked)


def test_throttled_calls_are_retried_in_the_same_turn():
    spec = TrafficSpec(**{**vars(SPEC), "error_rate": 0.2, "duration_s": 240})
    spans = [r.event for r in traffic.traffic(spec) if r.contract == traffic.SPAN]
    by_trace = collections.defaultdict(list)
    for s in spans:
        by_trace[s["trace_id"]].append(s)
    retried = 0
    throttles = ("ThrottlingException", "RateLimitError", "ResourceExhausted")
    for trace in by_trace.values():
        chats = sorted(
            (s for s in trace if s["operation"] == "chat"), key=lambda s: s["start_time"]
        )
        for failed, nxt in zip(chats, chats[1:], strict=False):
            if failed["error_type"] in throttles:
                retried += nxt["start_time"] >= failed["end_time"]
    assert retried > 20
    roots = [s for s in spans if s["parent_span_id"] is None]
    failed_turns = [r for r in roots if r["status_code"] == "ERROR"]
    assert failed_turns and all(r["error_type"] for r in failed_turns)


def test_incidents_reach_agent_calls():
    model = "anthropic.claude-3-5-sonnet-20241022-v2:0"  # the travel planner's model
    start, end = T0 + 2 * 60_000, T0 + 4 * 60_000
    spec = TrafficSpec(
        **{**vars(SPEC), "incidents": (traffic.latency_regression(model, start, end, 4),)}
    )
    chats = [
        r.event
        for r in traffic.traffic(spec)
        if r.contract == traffic.SPAN
        and r.event["operation"] == "chat"
        and r.event["model_id"] == model
        and r.event["status_code"] != "ERROR"
    ]
    inside = [c["duration_ms"] for c in chats if start <= c["start_time"] < end]
    outside = [c["duration_ms"] for c in chats if not start <= c["start_time"] < end]
    assert np.median(inside) > 3 * np.median(outside)
