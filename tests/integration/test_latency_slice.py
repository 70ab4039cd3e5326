"""Events produced to Kafka come out of the Flink latency job as the right counts and
percentiles, checked against numpy on the same events; malformed records land in the
dead-letter topic with a reason."""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict

import numpy as np
import pytest

from genai_apm import generator, kafka_io
from genai_apm.jobs import latency

pytestmark = pytest.mark.integration

WINDOW_MS = 60_000


def _rfc3339(ms: int, offset_hours: int) -> str:
    zone = dt.timezone(dt.timedelta(hours=offset_hours))
    t = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).astimezone(zone)
    return t.isoformat(timespec="milliseconds")


def _events() -> list[dict]:
    spec = generator.TrafficSpec(rate_per_s=40, seed=11)
    events = list(generator.invocations(spec, 6_000))  # about 2.5 minutes of event time
    rng = random.Random(3)
    # out of order by up to ~1.5 s, well inside the 5 s watermark delay: nothing may be lost
    keyed = sorted(events, key=lambda e: e["event_time"] + rng.uniform(0, 1500))
    # a third of the events carry RFC 3339 times, some with non-UTC offsets
    for i, e in enumerate(keyed):
        if i % 3 == 1:
            e["event_time"] = _rfc3339(e["event_time"], offset_hours=(i % 5) - 2)
    return keyed


def _epoch_ms(value) -> int:
    if isinstance(value, int):
        return value
    return int(dt.datetime.fromisoformat(value).timestamp() * 1000)


def _expected(events: list[dict], percentiles) -> dict[tuple[str, str], dict]:
    groups: dict[tuple[int, str], list[dict]] = defaultdict(list)
    for e in events:
        start = _epoch_ms(e["event_time"]) // WINDOW_MS * WINDOW_MS
        groups[(start, e["model_id"])].append(e)
    expected = {}
    for (start, model), rows in groups.items():
        ok = np.array([r["latency_ms"] for r in rows if r["status"] == "success"])
        key = (
            dt.datetime.fromtimestamp(start / 1000, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            model,
        )
        expected[key] = {
            "requests": len(rows),
            "errors": sum(r["status"] == "error" for r in rows),
            "max": ok.max(),
            **{p: np.percentile(ok, p * 100) for p in percentiles},  # linear interpolation
        }
    return expected


MALFORMED = [
    (b"{truncated", "not a JSON object"),
    (b"[1, 2, 3]", "not a JSON object"),
    (b"\xff\xfe\xfa", "not a JSON object"),
    (
        b'{"event_time": 1767225600000, "model_id": "m", "status": "success"}',
        "request_id: required",
    ),
    (
        b'{"event_time": "yesterday", "request_id": "r", "model_id": "m", "status": "success"}',
        "event_time: not a valid timestamp",
    ),
    (
        b'{"event_time": 1767225600000, "request_id": "r", "model_id": "m", "status": "ok"}',
        "status: not one of success|error",
    ),
    (
        b'{"event_time": 1767225600000, "request_id": "r", "model_id": "m", "status": "success",'
        b' "input_tokens": -5}',
        "input_tokens: below 0",
    ),
    (
        b'{"event_time": 1767225600000, "request_id": "r", "model_id": "m", "status": "success",'
        b' "latency_ms": "fast"}',
        "latency_ms: not a valid double",
    ),
]


def test_latency_percentiles_match_numpy(settings):
    events = _events()
    topics = settings.topics
    kafka_io.ensure_topics(settings.kafka, [topics.invocations, topics.latency, topics.deadletter])
    kafka_io.produce_json(settings.kafka, topics.invocations, events, key_field="model_id")
    kafka_io.produce_raw(settings.kafka, topics.invocations, [m for m, _ in MALFORMED])

    latency.run(settings, bounded=True, wait=True)

    rows = kafka_io.consume_json(settings.kafka, topics.latency, until_end=True)
    expected = _expected(events, settings.latency.percentiles)
    got = {(r["window_start"], r["model_id"]): r for r in rows}
    assert len(rows) == len(got), "one row per window and model"
    assert got.keys() == expected.keys()
    assert sum(r["requests"] for r in rows) == len(events)
    for key, exp in expected.items():
        row = got[key]
        assert row["requests"] == exp["requests"], key
        assert row["errors"] == exp["errors"], key
        assert row["latency_ms_max"] == pytest.approx(exp["max"]), key
        for p in settings.latency.percentiles:
            column = f"latency_ms_{latency.percentile_name(p)}"
            assert row[column] == pytest.approx(exp[p], rel=1e-9), (key, p)

    dead = kafka_io.consume_json(settings.kafka, topics.deadletter, until_end=True)
    assert len(dead) == len(MALFORMED)
    import base64

    by_payload = {base64.b64decode(d["payload_base64"]): d for d in dead}
    for payload, reason in MALFORMED:
        record = by_payload[payload]  # the raw bytes survive, even when not UTF-8
        assert reason in record["reason"], (payload, record["reason"])
        assert record["source"].startswith(topics.invocations + "/")
        assert record["contract"] == "InvocationEvent/v1"
