from __future__ import annotations

import numpy as np

from genai_apm import generator


def test_same_seed_same_events_other_seed_different():
    spec = generator.TrafficSpec(seed=5)
    a = list(generator.invocations(spec, 500))
    b = list(generator.invocations(spec, 500))
    c = list(generator.invocations(generator.TrafficSpec(seed=6), 500))
    assert a == b
    assert a != c


def test_event_time_advances_at_the_requested_rate():
    spec = generator.TrafficSpec(rate_per_s=100)
    events = list(generator.invocations(spec, 20_000))
    times = [e["event_time"] for e in events]
    assert times == sorted(times)
    span_s = (times[-1] - spec.start_ms) / 1000
    assert 20_000 / span_s == np.clip(20_000 / span_s, 95, 105)


def test_errors_and_latency_shape():
    events = list(generator.invocations(generator.TrafficSpec(error_rate=0.05), 20_000))
    errors = [e for e in events if e["status"] == "error"]
    assert 0.04 < len(errors) / len(events) < 0.06
    assert all(e["error_class"] and e["http_status"] >= 400 for e in errors)
    ok = [e for e in events if e["status"] == "success"]
    tokens = np.array([e["output_tokens"] for e in ok])
    latency = np.array([e["latency_ms"] for e in ok])
    # latency grows with output tokens, as it does for real decoders
    assert np.corrcoef(tokens, latency)[0, 1] > 0.5
    streaming = [e for e in ok if e["streaming"]]
    assert all(e["ttft_ms"] is not None for e in streaming)
    assert all(e["ttft_ms"] is None for e in ok if not e["streaming"])
