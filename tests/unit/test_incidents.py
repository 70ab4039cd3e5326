"""Each incident changes its key in its window, measurably, and nothing else.

Incidents draw their randomness apart from the traffic, so a run with an incident equals
the run without it except where the incident applies: the tests diff the two record by
record, and measure the effect with numpy.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from genai_apm import traffic as generator
from genai_apm.traffic import TrafficSpec

T0 = TrafficSpec().start_ms  # 2026-01-01T00:00:00Z
MIN = 60_000
START, END = T0 + 5 * MIN, T0 + 12 * MIN
BASE = TrafficSpec(rate_per_s=20, duration_s=20 * 60)


def _calls(spec: TrafficSpec) -> list[dict]:
    return [r.event for r in generator.traffic(spec) if r.contract == generator.INVOCATION]


@pytest.fixture(scope="module")
def baseline() -> list[dict]:
    return _calls(BASE)


def _with(*incidents: generator.Incident) -> TrafficSpec:
    return TrafficSpec(**{**vars(BASE), "incidents": incidents})


def _changed(baseline: list[dict], incident: generator.Incident) -> tuple[list[dict], list]:
    """The run with the incident, and its (before, after) pairs that differ."""
    after = _calls(_with(incident))
    assert len(after) == len(baseline)  # incidents that change calls add none
    pairs = [(b, a) for b, a in zip(baseline, after, strict=True) if a != b]
    assert pairs, "the incident changed nothing"
    for before, changed in pairs:
        assert changed[incident.key_field] == incident.key
        assert incident.start_ms <= changed["event_time"] < incident.end_ms
        assert changed["request_id"] == before["request_id"]
    return after, pairs


def _in_window(e: dict) -> bool:
    return START <= e["event_time"] < END


def _median_latency(events, keep) -> float:
    return float(np.median([e["latency_ms"] for e in events if keep(e)]))


def test_latency_regression_slows_one_model_in_its_window(baseline):
    model = "gpt-4o"
    after, pairs = _changed(baseline, generator.latency_regression(model, START, END, factor=3))
    assert {b["status"] for b, _ in pairs} == {"success"}  # rejections stay fast
    ratio = np.array([a["latency_ms"] / b["latency_ms"] for b, a in pairs])
    assert np.allclose(ratio, 3, rtol=1e-3)
    ok = [e for e in after if e["status"] == "success"]
    inside = _median_latency(ok, lambda e: e["model_id"] == model and _in_window(e))
    outside = _median_latency(ok, lambda e: e["model_id"] == model and not _in_window(e))
    assert inside > 2.5 * outside
    for other in {e["model_id"] for e in ok} - {model}:
        inside = _median_latency(ok, lambda e, m=other: e["model_id"] == m and _in_window(e))
        outside = _median_latency(ok, lambda e, m=other: e["model_id"] == m and not _in_window(e))
        assert 0.7 < inside / outside < 1.4, other
    streamed = [(b, a) for b, a in pairs if a["ttft_ms"] is not None]
    assert streamed and all(
        a["ttft_ms"] == pytest.approx(3 * b["ttft_ms"], rel=1e-3) for b, a in streamed
    )


def test_input_token_spike_raises_prompts_and_latency_together(baseline):
    app = "rag-search"
    after, pairs = _changed(baseline, generator.input_token_spike(app, START, END, factor=5))
    ok = [e for e in after if e["status"] == "success" and e["app_id"] == app]
    inside = [e for e in ok if _in_window(e)]
    outside = [e for e in ok if not _in_window(e)]

    def mean(events, field):
        return np.mean([e[field] for e in events])

    assert mean(inside, "input_tokens") > 3 * mean(outside, "input_tokens")
    # against the same calls without the spike, so the window's own noise cancels out
    usual = [e for e in baseline if e["status"] == "success" and e["app_id"] == app]
    assert mean(inside, "latency_ms") > 1.15 * mean(list(filter(_in_window, usual)), "latency_ms")
    assert mean(inside, "latency_ms") > mean(outside, "latency_ms")
    # the same calls, with longer prompts: each one slower, by prefill time (or, for a blocked
    # prompt, by the time the guardrail takes to read it); answers unchanged
    for before, changed in pairs:
        if changed["status"] == "success":
            assert changed["error_class"] == before["error_class"]
            assert changed["input_tokens"] > before["input_tokens"]
            assert changed["latency_ms"] > before["latency_ms"]
            assert changed["output_tokens"] == before["output_tokens"]


def test_throttling_storm_rejects_most_calls_of_one_model(baseline):
    model = "gpt-4o-mini"
    after, pairs = _changed(baseline, generator.throttling_storm(model, START, END, share=0.6))
    assert {(a["error_type"], a["error_class"], a["http_status"]) for _, a in pairs} == {
        ("RateLimitError", "throttle", 429)
    }

    def error_share(keep) -> float:
        return np.mean([e["status"] == "error" for e in after if keep(e)])

    assert 0.55 < error_share(lambda e: e["model_id"] == model and _in_window(e)) < 0.7
    assert error_share(lambda e: e["model_id"] == model and not _in_window(e)) < 0.08
    assert error_share(lambda e: e["model_id"] != model and _in_window(e)) < 0.08
    throttled = [a for _, a in pairs]
    assert np.median([e["latency_ms"] for e in throttled]) < 100  # rejected at the door
    assert all(e["output_tokens"] == 0 and e["ttft_ms"] is None for e in throttled)


def test_content_filter_spike_blocks_a_share_of_one_app(baseline):
    app = "support-bot"
    after, pairs = _changed(baseline, generator.content_filter_spike(app, START, END, share=0.3))
    for b, a in pairs:
        # answered calls become blocked ones: still successes, with the filter's class
        assert (b["status"], b["error_class"]) == ("success", None)
        assert (a["status"], a["error_type"], a["http_status"]) == ("success", None, 200)
        assert a["error_class"] == "content_filtered" and a["guardrail_intervened"]
        expected = "guardrail_intervened" if a["provider"] == "aws.bedrock" else "content_filter"
        assert a["finish_reason"] == expected
        assert a["input_tokens"] == b["input_tokens"]  # the filter read the same prompt
        assert a["output_tokens"] <= b["output_tokens"]  # none, or the answer up to the cut
    kept = np.array([a["output_tokens"] / b["output_tokens"] for b, a in pairs])
    assert 0.3 < np.mean(kept == 0) < 0.9 and np.mean(kept) < 0.5

    def share(events, keep, of) -> float:
        return float(np.mean([of(e) for e in events if keep(e)]))

    def filtered(e) -> bool:
        return e["error_class"] == "content_filtered"

    def failed(e) -> bool:
        return e["status"] == "error"

    def hit(e) -> bool:
        return e["app_id"] == app and _in_window(e)

    assert 0.25 < share(after, hit, filtered) < 0.4
    assert share(after, lambda e: e["app_id"] == app and not _in_window(e), filtered) < 0.02
    assert share(after, lambda e: e["app_id"] != app and _in_window(e), filtered) < 0.02
    # the content_filtered share rises, the error share does not: failures stay failures
    assert share(baseline, hit, filtered) < 0.02
    assert [failed(e) for e in after] == [failed(e) for e in baseline]
    assert 0.02 < share(after, hit, failed) < 0.07  # the usual failures, all still there


def test_cost_spike_adds_large_calls_for_one_user(baseline):
    user = "u-5"
    spike = generator.cost_spike(user, START, END, calls_per_s=2, size_factor=8)
    after = _calls(_with(spike))
    known = {e["request_id"] for e in baseline}
    # everything else is untouched: the baseline is what remains without the extra calls
    assert [e for e in after if e["request_id"] in known] == baseline
    extra = [e for e in after if e["request_id"] not in known]
    assert all(e["user_id"] == user and _in_window(e) for e in extra)
    window_s = (END - START) / 1000
    assert 0.85 * 2 * window_s < len(extra) < 1.15 * 2 * window_s

    def tokens_per_min(keep, minutes: float) -> float:
        return sum(e["input_tokens"] + e["output_tokens"] for e in after if keep(e)) / minutes

    inside = tokens_per_min(lambda e: e["user_id"] == user and _in_window(e), 7)
    outside = tokens_per_min(lambda e: e["user_id"] == user and not _in_window(e), 13)
    assert inside > 20 * outside
    ok_extra = [e for e in extra if e["status"] == "success"]
    ok_usual = [e for e in baseline if e["status"] == "success"]
    assert np.median([e["input_tokens"] for e in ok_extra]) > 3 * np.median(
        [e["input_tokens"] for e in ok_usual]
    )
    # a user outside the configured population is still labelled by its key
    outsider = generator.cost_spike("acme-batch-job", START, START + MIN)
    users = {e["user_id"] for e in _calls(_with(outsider)) if e["request_id"] not in known}
    assert users == {"acme-batch-job"}


def _longest_repeat(names: list[str]) -> int:
    longest = run = 0
    for i, name in enumerate(names):
        run = run + 1 if i and name == names[i - 1] else 1
        longest = max(longest, run)
    return longest


def test_runaway_agent_loop_repeats_one_tool_call_in_one_session():
    loop = generator.runaway_agent_loop("conv-runaway", START, END, repeats=25)
    spec = TrafficSpec(rate_per_s=4, duration_s=13 * 60, agent_share=0.5, incidents=(loop,))
    records = list(generator.traffic(spec))
    plain = list(generator.traffic(TrafficSpec(**{**vars(spec), "incidents": ()})))
    # the loop's session is added; every other record is as it was
    assert [r for r in records if _conversation(r) != loop.key] == plain
    mine = [r.event for r in records if _conversation(r) == loop.key]
    assert all(
        START <= generator.record_time(r) < END for r in records if _conversation(r) == loop.key
    )
    tools = [s for s in mine if s.get("operation") == "execute_tool"]
    assert _longest_repeat([s["tool_name"] for s in tools]) >= 25
    assert len({s["tool_call_id"] for s in tools}) == len(tools)  # new calls, same tool
    (root,) = [s for s in mine if s.get("operation") == "invoke_agent"]
    assert root["status_code"] == "ERROR" and root["error_type"] == "MaxIterationsExceeded"
    # the context grows with every round trip: the loop gets dearer as it runs
    prompts = [e["input_tokens"] for e in mine if "event_time" in e and e["status"] == "success"]
    assert prompts == sorted(prompts) and prompts[-1] > 3 * prompts[0]
    # ordinary sessions never come close
    by_conversation: dict[str, list[str]] = {}
    for r in plain:
        if r.contract == generator.SPAN and r.event["operation"] == "execute_tool":
            by_conversation.setdefault(r.event["conversation_id"], []).append(r.event["tool_name"])
    assert max(map(_longest_repeat, by_conversation.values())) < 10


def _conversation(record: generator.Record) -> str | None:
    event = record.event
    return event.get("conversation_id") or event.get("session_id")


def test_the_loop_stops_at_the_end_of_its_window():
    loop = generator.runaway_agent_loop("conv-short", START, START + 20_000, repeats=1000)
    spans = [
        r.event
        for r in generator.traffic(TrafficSpec(rate_per_s=1, duration_s=15 * 60, incidents=(loop,)))
        if r.contract == generator.SPAN
    ]
    assert spans and all(s["start_time"] < START + 20_000 for s in spans)
    assert 0 < sum(s["operation"] == "execute_tool" for s in spans) < 1000


def test_incidents_together_touch_only_their_keys_and_windows(baseline):
    incidents = (
        generator.latency_regression("gpt-4o", START, END),
        generator.throttling_storm("gpt-4o-mini", T0 + 2 * MIN, T0 + 4 * MIN),
        generator.input_token_spike("doc-summariser", T0 + 8 * MIN, T0 + 15 * MIN),
        generator.content_filter_spike("support-bot", T0 + 14 * MIN, T0 + 16 * MIN),
    )
    after = _calls(_with(*incidents))
    changed = [a for b, a in zip(baseline, after, strict=True) if a != b]
    assert len(changed) > 500
    for e in changed:
        assert any(i.covers(e[i.key_field], e["event_time"]) for i in incidents), e


def test_labels_round_trip_and_say_what_was_injected():
    incidents = (
        generator.latency_regression("gpt-4o", START, END, factor=2.5),
        generator.runaway_agent_loop("conv-1", START, END),
        generator.cost_spike("u-9", START, END, calls_per_s=3),
    )
    text = generator.labels_json(incidents)
    assert generator.load_labels(text) == incidents
    labels = json.loads(text)["labels"]
    assert labels[0] == {
        "kind": "latency_regression",
        "key_field": "model_id",
        "key": "gpt-4o",
        "start_ms": START,
        "end_ms": END,
        "params": {"factor": 2.5},
    }
    assert labels[1]["key_field"] == "session_id" and labels[1]["params"] == {"repeats": 30}
    assert labels[2]["params"] == {"calls_per_s": 3, "size_factor": 8}  # defaults written out


@pytest.mark.parametrize(
    "make",
    [
        lambda: generator.Incident("meteor_strike", "x", START, END),
        lambda: generator.latency_regression("gpt-4o", END, START),
        lambda: generator.Incident("latency_regression", "gpt-4o", START, END, (("share", 1),)),
        lambda: generator.traffic(_with(generator.latency_regression("gpt-9", START, END))),
        lambda: generator.load_labels(
            '{"version": 1, "labels": [{"kind": "cost_spike", "key_field": "app_id", '
            '"key": "u-1", "start_ms": 1, "end_ms": 2}]}'
        ),
    ],
)
def test_mistakes_in_incidents_fail_loudly(make):
    with pytest.raises(ValueError):
        make()
