"""The traffic generator: determinism, rates, the diurnal curve, realistic call shapes, the
contract, and delivery helpers. Fixed epochs throughout; no test sleeps."""

from __future__ import annotations

import collections
import json
import math

import numpy as np
import pytest

from genai_apm import traffic as generator
from genai_apm.schemas import validate
from genai_apm.schemas.contract import Contract, Kind
from genai_apm.schemas.invocation import INVOCATION_V1
from genai_apm.schemas.span import SPAN_V1
from genai_apm.traffic import TrafficSpec, invocations
from genai_apm.traffic.catalogue import ERRORS

T0 = generator.TrafficSpec().start_ms  # 2026-01-01T00:00:00Z
MIN = 60_000
REASONING = {"us.anthropic.claude-3-7-sonnet-20250219-v1:0", "o3-mini"}
PYTHON_TYPES = {
    Kind.STRING: (str,),
    Kind.LONG: (int,),
    Kind.TIMESTAMP: (int,),
    Kind.DOUBLE: (float, int),
    Kind.BOOLEAN: (bool,),
}


def contract_problems(contract: Contract, event: dict) -> list[str]:
    """What the pipeline would reject (by the reference validator, on the JSON a producer
    sends), plus what it would let through but a producer should not write: missing or
    extra fields, numbers as strings, NaN. Empty when the event is clean."""
    problems = validate.problems(contract, json.loads(json.dumps(event)))
    if set(event) != set(contract.names):
        problems.append(f"fields {sorted(event)}")
    for field in contract.fields:
        value = event.get(field.name)
        if value is None:
            continue
        if isinstance(value, bool) and field.kind is not Kind.BOOLEAN:
            problems.append(f"{field.name}: bool")
        elif not isinstance(value, PYTHON_TYPES[field.kind]):
            problems.append(f"{field.name}: {type(value).__name__}")
        elif isinstance(value, float) and not math.isfinite(value):
            problems.append(f"{field.name}: not finite")
    return problems


def _mixed_spec(**overrides) -> TrafficSpec:
    """2.5 minutes of everything: plain and agent traffic, every kind of incident."""
    s = 1000
    incidents = (
        generator.latency_regression("gpt-4o-mini", T0 + 30 * s, T0 + 90 * s),
        generator.throttling_storm("amazon.nova-pro-v1:0", T0 + 60 * s, T0 + 120 * s),
        generator.content_filter_spike("support-bot", T0 + 20 * s, T0 + 80 * s),
        generator.input_token_spike("doc-summariser", T0 + 40 * s, T0 + 100 * s),
        generator.cost_spike("u-3", T0 + 40 * s, T0 + 70 * s),
        generator.runaway_agent_loop("conv-loop", T0 + 10 * s, T0 + 140 * s, repeats=12),
    )
    spec = dict(rate_per_s=40, duration_s=150, agent_share=0.3, incidents=incidents)
    return TrafficSpec(**(spec | overrides))


def _bytes(spec: TrafficSpec) -> bytes:
    return b"".join(
        json.dumps([r.contract, r.event], separators=(",", ":")).encode() + b"\n"
        for r in generator.traffic(spec)
    )


def test_same_seed_same_bytes_other_seed_different():
    spec = _mixed_spec(duration_s=60, rate_per_s=20)
    assert _bytes(spec) == _bytes(spec)
    assert _bytes(spec) != _bytes(_mixed_spec(duration_s=60, rate_per_s=20, seed=8))
    # the original entry point keeps its meaning
    assert list(invocations(TrafficSpec(seed=5), 500)) == list(
        invocations(TrafficSpec(seed=5), 500)
    )
    assert list(invocations(TrafficSpec(seed=5), 500)) != list(
        invocations(TrafficSpec(seed=6), 500)
    )


@pytest.fixture(scope="module")
def mixed() -> list[generator.Record]:
    return list(generator.traffic(_mixed_spec()))


def test_a_shorter_run_is_a_prefix_of_a_longer_one(mixed):
    short = list(generator.traffic(_mixed_spec(duration_s=70)))
    assert short == mixed[: len(short)]
    spec = TrafficSpec(agent_share=0.2)
    assert list(invocations(spec, 2000)) == list(invocations(spec, 3000))[:2000]


def test_event_time_never_decreases_in_emission_order(mixed):
    times = [generator.record_time(r) for r in mixed]
    assert len(times) > 8000
    assert np.all(np.diff(times) >= 0)


@pytest.mark.parametrize("agent_share", [0.0, 0.3])
def test_invocations_arrive_at_the_requested_rate(agent_share):
    spec = TrafficSpec(rate_per_s=50, agent_share=agent_share)
    times = np.array([e["event_time"] for e in invocations(spec, 8000)])
    assert np.all(np.diff(times) >= 0)
    rate = 8000 / ((times[-1] - spec.start_ms) / 1000)
    assert 46 < rate < 54
    # a duration-bounded run holds rate x duration calls and nothing past its end
    bounded = TrafficSpec(rate_per_s=20, duration_s=600, agent_share=agent_share)
    records = list(generator.traffic(bounded))
    calls = [r for r in records if r.contract == generator.INVOCATION]
    assert 0.9 * 12_000 < len(calls) < 1.1 * 12_000
    assert max(generator.record_time(r) for r in records) < bounded.start_ms + 600_000


def test_hourly_counts_follow_the_diurnal_curve():
    spec = TrafficSpec(rate_per_s=0.25, duration_s=2 * 86_400, diurnal=True)
    hours = np.array([(e["event_time"] - T0) // 3_600_000 % 24 for e in invocations(spec, 10**9)])
    counts = np.bincount(hours, minlength=24) / 2
    curve = np.array(generator.DIURNAL_CURVE)
    assert np.corrcoef(counts, curve)[0, 1] > 0.97
    # the curve is a multiplier of the daily mean rate: the day's volume is unchanged
    assert abs(np.mean(curve) - 1) < 1e-9
    assert abs(counts.sum() / (0.25 * 86_400) - 1) < 0.03
    assert counts[3:5].mean() < 0.5 * spec.rate_per_s * 3600
    assert counts[14:16].mean() > 1.4 * spec.rate_per_s * 3600
    flat = np.array(
        [
            (e["event_time"] - T0) // 3_600_000
            for e in invocations(TrafficSpec(rate_per_s=0.25), 21_600)
        ]
    )
    flat_counts = np.bincount(flat)[:24]
    assert flat_counts.std() / flat_counts.mean() < 0.1


def test_every_record_honours_its_contract(mixed):
    records = mixed
    kinds = collections.Counter(r.contract for r in records)
    assert kinds[generator.SPAN] > 1000 and kinds[generator.INVOCATION] > 5000
    for contract, event in records:
        schema = INVOCATION_V1 if contract == generator.INVOCATION else SPAN_V1
        assert contract_problems(schema, event) == [], event
        if contract == generator.SPAN:
            continue
        ok = event["status"] == "success"
        # a content-filtered call is a success with a class of its own, never an error
        filtered = event["error_class"] == "content_filtered"
        assert filtered == event["guardrail_intervened"]
        assert (
            ok
            == (event["error_type"] is None)
            == (event["error_class"] in (None, "content_filtered"))
        )
        assert ok == (event["http_status"] == 200)
        # a first token only when the model streamed one: not when the call failed or a
        # filter blocked the prompt (no output at all)
        answered = ok and event["output_tokens"] > 0
        assert (event["ttft_ms"] is not None) == (answered and event["streaming"])
        if event["ttft_ms"] is not None:
            assert 0 < event["ttft_ms"] < event["latency_ms"]
        assert (event["cache_read_input_tokens"] or 0) <= event["input_tokens"]
        assert (event["cache_write_input_tokens"] or 0) <= event["input_tokens"]
        assert (event["reasoning_output_tokens"] or 0) <= event["output_tokens"]
    calls = [r.event for r in records if r.contract == generator.INVOCATION]
    assert sum(e["error_class"] == "content_filtered" for e in calls) > 100  # the spike's


@pytest.fixture(scope="module")
def with_errors() -> list[dict]:
    return list(invocations(TrafficSpec(error_rate=0.05, models=12), 30_000))


def test_error_mix_is_realistic_and_consistent(with_errors):
    events = with_errors
    errors = [e for e in events if e["status"] == "error"]
    # error_rate is the share of failed calls; content filtering is not a failure
    assert 0.045 < len(errors) / len(events) < 0.055
    classes = collections.Counter(e["error_class"] for e in errors)
    assert set(classes) == {"throttle", "client", "timeout", "server"}
    assert classes.most_common(1)[0][0] == "throttle"
    assert classes["throttle"] > 2 * classes["client"] > classes["timeout"]
    # one error type always means one class and one HTTP status
    meaning = collections.defaultdict(set)
    for e in errors:
        meaning[e["error_type"]].add((e["error_class"], e["http_status"]))
    assert all(len(m) == 1 for m in meaning.values()), meaning
    for e in errors:
        assert e["output_tokens"] == 0 and e["ttft_ms"] is None
        assert not e["guardrail_intervened"] and e["finish_reason"] is None
        assert e["input_tokens"] == 0  # rejected before any usage was reported
        status, klass = e["http_status"], e["error_class"]
        if klass == "throttle":
            assert status == 429
        if klass == "client":
            assert 400 <= status < 500
        if klass == "server":
            assert status >= 500
    assert all(e["http_status"] == 200 for e in events if e["status"] == "success")
    latency = {
        k: np.median([e["latency_ms"] for e in errors if e["error_class"] == k]) for k in classes
    }
    assert latency["throttle"] < 100 < latency["server"] < latency["timeout"]


def test_content_filtered_calls_are_successes_with_sensible_usage(with_errors):
    events = with_errors
    filtered = [e for e in events if e["error_class"] == "content_filtered"]
    # besides the failures, as often as the catalogue weighs the filter against them
    weights = [(k.error_class, k.weight) for k in ERRORS["aws.bedrock"]]
    per_failure = sum(w for c, w in weights if c == "content_filtered") / sum(
        w for c, w in weights if c != "content_filtered"
    )
    assert 0.8 < len(filtered) / len(events) / (0.05 * per_failure) < 1.2
    for e in filtered:
        assert (e["status"], e["error_type"], e["http_status"]) == ("success", None, 200)
        assert e["guardrail_intervened"]
        expected = "guardrail_intervened" if e["provider"] == "aws.bedrock" else "content_filter"
        assert e["finish_reason"] == expected
        assert e["input_tokens"] > 0  # the filter read the prompt
    # a blocked prompt: the model never ran, so no output, no first token, no cache use
    prompt_blocked = [e for e in filtered if e["output_tokens"] == 0]
    for e in prompt_blocked:
        assert e["ttft_ms"] is None and e["reasoning_output_tokens"] in (None, 0)
        assert not e["cache_read_input_tokens"] and not e["cache_write_input_tokens"]
    # a blocked answer: cut part way, its tokens so far reported, timed like any answer
    answer_blocked = [e for e in filtered if e["output_tokens"] > 0]
    assert 0.3 < len(prompt_blocked) / len(filtered) < 0.9 and answer_blocked
    for e in answer_blocked:
        assert (e["ttft_ms"] is not None) == e["streaming"]
    answered = [e for e in events if e["status"] == "success" and e["error_class"] is None]

    def visible(e) -> int:
        return e["output_tokens"] - (e["reasoning_output_tokens"] or 0)

    usual = {
        app: np.median([visible(e) for e in answered if e["app_id"] == app])
        for app in {e["app_id"] for e in answer_blocked}
    }
    cut = np.array([visible(e) / usual[e["app_id"]] for e in answer_blocked])
    assert np.all(cut > 0) and np.median(cut) < 0.75
    # blocking a prompt is quick: no decoding, only the guardrail reading the prompt
    blocked_ms = np.array([e["latency_ms"] for e in prompt_blocked])
    answered_ms = np.array([e["latency_ms"] for e in answered])
    assert np.median(blocked_ms) < 0.5 * np.median(answered_ms)
    prompts = np.array([e["input_tokens"] for e in prompt_blocked])
    assert np.corrcoef(np.log(prompts), np.log(blocked_ms))[0, 1] > 0.2


def test_latency_grows_with_tokens_for_every_model():
    events = list(invocations(TrafficSpec(models=12), 30_000))
    # the calls that produced output (a blocked prompt is a success with none)
    ok = [e for e in events if e["status"] == "success" and e["output_tokens"] > 0]
    assert sum(e["status"] == "success" for e in events) > len(ok)
    by_model = collections.defaultdict(list)
    for e in ok:
        by_model[e["model_id"]].append(e)
    assert len(by_model) == 12
    for model, calls in by_model.items():
        tokens = np.array([e["output_tokens"] for e in calls])
        latency = np.array([e["latency_ms"] for e in calls])
        assert np.corrcoef(np.log(tokens), np.log(latency))[0, 1] > 0.6, model
        streamed = [e for e in calls if e["streaming"]]
        uncached = [e["input_tokens"] - (e["cache_read_input_tokens"] or 0) for e in streamed]
        if model not in REASONING:  # there reasoning time dominates the first token
            ttft = [e["ttft_ms"] for e in streamed]
            assert np.corrcoef(uncached, ttft)[0, 1] > 0.4, model
    medians = {m: np.median([e["latency_ms"] for e in c]) for m, c in by_model.items()}
    assert max(medians.values()) > 3 * min(medians.values())  # models differ


def test_token_shapes_differ_by_app_and_model():
    events = list(invocations(TrafficSpec(models=12, error_rate=0), 30_000))

    def median(app, field, visible=False):
        values = [
            e[field] - ((e["reasoning_output_tokens"] or 0) if visible else 0)
            for e in events
            if e["app_id"] == app
        ]
        return np.median(values)

    assert median("rag-search", "input_tokens") > 5 * median("ticket-classifier", "input_tokens")
    assert median("doc-summariser", "input_tokens") > median("rag-search", "input_tokens")
    classifier = [e for e in events if e["app_id"] == "ticket-classifier"]
    assert all(e["output_tokens"] - (e["reasoning_output_tokens"] or 0) <= 16 for e in classifier)
    assert median("ticket-classifier", "output_tokens", visible=True) < 10
    assert median("translator", "output_tokens", visible=True) > 10 * median(
        "ticket-classifier", "output_tokens", visible=True
    )
    assert not any(e["streaming"] for e in classifier)
    for e in events:
        reasoning = e["reasoning_output_tokens"]
        assert (reasoning is not None) == (e["model_id"] in REASONING)
        if e["provider"] == "openai":  # automatic prefix caching: reads, never a write count
            assert e["cache_write_input_tokens"] is None
    assert all(e["reasoning_output_tokens"] > 0 for e in events if e["model_id"] in REASONING)
    cached = [e for e in events if (e["cache_read_input_tokens"] or 0) > 0]
    written = [e for e in events if (e["cache_write_input_tokens"] or 0) > 0]
    assert 0.1 < len(cached) / len(events) < 0.6 and written
    truncated = [e for e in events if e["finish_reason"] in ("max_tokens", "length")]
    assert 0 < len(truncated) < 0.05 * len(events)


def test_population_scales_to_many_keys():
    spec = TrafficSpec(models=20, apps=12, users=10_000, rate_per_s=1000)
    events = list(invocations(spec, 40_000))
    assert len({e["model_id"] for e in events}) == 20
    assert len({e["app_id"] for e in events}) == 12
    assert len({e["user_id"] for e in events}) > 8_000
    assert len({(e["model_id"], e["app_id"], e["user_id"]) for e in events}) > 25_000
    # a few models and users carry most of the traffic
    per_model = collections.Counter(e["model_id"] for e in events).most_common()
    assert per_model[0][1] > 3 * per_model[-1][1]
    # worlds depend on the counts, not the seed: keys mean the same across seeds
    other = list(invocations(TrafficSpec(models=20, apps=12, users=10_000, seed=99), 5000))
    assert {e["model_id"] for e in other} <= {e["model_id"] for e in events}


def test_spec_rejects_nonsense():
    with pytest.raises(ValueError):
        TrafficSpec(rate_per_s=0)
    with pytest.raises(ValueError):
        TrafficSpec(agent_share=1.5)
    with pytest.raises(ValueError):
        invocations(TrafficSpec(models=0), 1)


class FakeClock:
    def __init__(self):
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_paced_holds_the_wall_clock_rate():
    clock = FakeClock()
    released = []
    for item in generator.paced(range(101), 20, clock=clock, sleep=clock.sleep):
        released.append((item, clock.now))
    assert [i for i, _ in released] == list(range(101))
    assert released[-1][1] - released[0][1] == pytest.approx(5.0)  # 100 intervals at 20/s
    assert np.allclose(np.diff([t for _, t in released]), 0.05)


def test_paced_catches_up_briefly_after_a_stall_but_does_not_flood():
    clock = FakeClock()
    stalls = {10: 0.5, 20: 30.0}
    times = []
    for item in generator.paced(range(60), 10, clock=clock, sleep=clock.sleep, max_lag_s=1.0):
        times.append(clock.now)
        clock.now += stalls.get(item, 0.0)  # the consumer is slow now and then
    gaps = np.diff(times)
    # a half-second stall is made up by releasing the next items at once
    assert gaps[10] == pytest.approx(0.5) and gaps[11] == pytest.approx(0.0)
    # after a long stall the schedule restarts at the normal pace
    assert gaps[20] == pytest.approx(30.0) and np.allclose(gaps[21:], 0.1)


def test_progress_is_reported_every_n_and_at_the_end():
    seen = []
    items = list(generator.with_progress(range(25), seen.append, every=10))
    assert items == list(range(25)) and seen == [10, 20, 25]
    seen.clear()
    list(generator.with_progress(range(20), seen.append, every=10))
    assert seen == [10, 20]


def test_disorder_is_bounded_and_repeatable(mixed):
    records = mixed
    shuffled = list(generator.with_disorder(records, max_ms=2000, seed=1))
    assert sorted(map(id, shuffled)) == sorted(map(id, records))  # same records, unchanged
    times = np.array([generator.record_time(r) for r in shuffled])
    lateness = np.maximum.accumulate(times) - times
    assert lateness.max() <= 2000 and (lateness > 0).mean() > 0.3
    again = list(generator.with_disorder(records, max_ms=2000, seed=1))
    assert again == shuffled
    assert list(generator.with_disorder(records, 2000, seed=2)) != shuffled
    events = [r.event for r in records if r.contract == generator.INVOCATION]
    bare = [e["event_time"] for e in generator.with_disorder(events, 500, seed=3)]
    assert (np.maximum.accumulate(bare) - bare).max() <= 500
