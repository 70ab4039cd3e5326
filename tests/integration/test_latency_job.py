"""The latency job, streaming through Kafka and again as a file backfill, checked window by
window and key by key against numpy on the same events; late events counted and routed;
histogram rollups within 1% of exact quantiles."""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import random
from collections import defaultdict

import duckdb
import numpy as np
import pytest

from genai_apm import traffic as generator
from genai_apm.jobs import latency
from genai_apm.kafka import io as kafka_io
from genai_apm.serve import rollups

pytestmark = pytest.mark.integration

DELAY_MS = 5_000


def _rfc3339(ms: int, offset_hours: int) -> str:
    zone = dt.timezone(dt.timedelta(hours=offset_hours))
    return (
        dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
        .astimezone(zone)
        .isoformat(timespec="milliseconds")
    )


def _epoch_ms(value) -> int:
    return (
        value
        if isinstance(value, int)
        else int(dt.datetime.fromisoformat(value).timestamp() * 1000)
    )


def make_stream() -> list[dict]:
    """~2.5 min of traffic, disordered inside the watermark bound, plus some late events."""
    events = list(generator.invocations(generator.TrafficSpec(rate_per_s=40, seed=11), 6_000))
    rng = random.Random(3)
    events.sort(key=lambda e: e["event_time"] + rng.uniform(0, 1_500))
    start = events[0]["event_time"]
    # late: replayed from the first half-minute after two minutes of traffic went by
    late = [dict(e, request_id=f"late-{i}") for i, e in enumerate(events[:400:20])]
    position = next(i for i, e in enumerate(events) if e["event_time"] > start + 120_000)
    stream = events[:position] + late + events[position:]
    for i, e in enumerate(stream):  # a third carry RFC 3339 times, some with offsets
        if i % 3 == 1:
            e["event_time"] = _rfc3339(e["event_time"], offset_hours=(i % 5) - 2)
    return stream


def split_late(stream: list[dict]) -> tuple[list[dict], list[dict]]:
    """What on-event watermarks make late: at or behind max(event time so far) - delay."""
    on_time, late, watermark = [], [], None
    for e in stream:
        ts = _epoch_ms(e["event_time"])
        (late if watermark is not None and ts <= watermark else on_time).append(e)
        watermark = ts - DELAY_MS if watermark is None else max(watermark, ts - DELAY_MS)
    return on_time, late


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _window_starts(ts: int, size_ms: int, hop_ms: int) -> list[int]:
    last = ts // hop_ms * hop_ms
    return [s for s in range(last - size_ms + hop_ms, last + 1, hop_ms) if s <= ts < s + size_ms]


def _tpot(e: dict) -> float | None:
    if e["status"] != "success" or not e["output_tokens"]:
        return None
    if e["streaming"] and e["ttft_ms"] is not None and e["output_tokens"] > 1:
        return (e["latency_ms"] - e["ttft_ms"]) / (e["output_tokens"] - 1)
    return e["latency_ms"] / e["output_tokens"]


def expected_rows(events: list[dict], percentiles, windows) -> dict[tuple, dict]:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for e in events:
        ts = _epoch_ms(e["event_time"])
        app = e.get("app_id") or latency.UNKNOWN_APP
        for w in windows:
            size, hop = w.size_min * 60_000, (w.hop_min or w.size_min) * 60_000
            for start in _window_starts(ts, size, hop):
                for model_key, app_key in ((e["model_id"], app), (e["model_id"], "*"), ("*", "*")):
                    groups[(w.name, _iso(start), model_key, app_key)].append(e)
    expected = {}
    for key, rows in groups.items():
        ok = [r for r in rows if r["status"] == "success"]
        tpot = [t for t in map(_tpot, rows) if t is not None and t > 0]
        series = {
            "latency": [r["latency_ms"] for r in ok],
            "ttft": [r["ttft_ms"] for r in ok if r["streaming"] and r["ttft_ms"] is not None],
            "tpot": tpot,
            "output_tokens_per_s": [1000 / t for t in tpot],
        }
        row = {
            "requests": len(rows),
            "errors": sum(r["status"] == "error" for r in rows),
            "latency_max_ms": max(series["latency"], default=None),
            "input_tokens_sum": sum(r["input_tokens"] for r in rows),
            "output_tokens_sum": sum(r["output_tokens"] for r in rows),
        }
        for (prefix, suffix, _), values in zip(latency.METRICS, series.values(), strict=True):
            for p in percentiles:
                name = f"{prefix}_{latency.percentile_name(p)}{suffix}"
                row[name] = float(np.percentile(values, p * 100)) if values else None
        expected[key] = row
    return expected


def percentile_columns(percentiles) -> set[str]:
    return {
        f"{prefix}_{latency.percentile_name(p)}{suffix}"
        for prefix, suffix, _ in latency.METRICS
        for p in percentiles
    }


def assert_rows_match(
    got: list[dict], expected: dict[tuple, dict], percentiles, relative_error: float
) -> None:
    """Counts and sums exact; percentiles read from the merged histograms within their
    documented relative error of numpy's interpolated quantile (docs/pipeline.md)."""
    bounded = percentile_columns(percentiles)
    by_key = {(r["window"], r["window_start"], r["model_id"], r["app_id"]): r for r in got}
    assert len(by_key) == len(got), "one row per window and key"
    assert by_key.keys() == expected.keys()
    for key, want in expected.items():
        row = by_key[key]
        for column, value in want.items():
            if value is None or isinstance(value, int):
                assert row[column] == value, (key, column)
            elif column in bounded:
                # the bound, plus float rounding of the bucket arithmetic
                assert abs(row[column] - value) <= relative_error * abs(value) * (1 + 1e-9), (
                    key,
                    column,
                    row[column],
                    value,
                )
            else:
                assert row[column] == pytest.approx(value, rel=1e-9), (key, column)
        hist_total = sum(row["latency_hist"].values()) if row["latency_hist"] else 0
        assert hist_total == row["requests"] - row["errors"], key  # success or error only


MALFORMED = [
    (b"{truncated", "not a JSON object"),
    (b"\xff\xfe\xfa", "not a JSON object"),
    (
        b'{"event_time": 1767225600000, "model_id": "m", "status": "success"}',
        "request_id: required",
    ),
    (
        b'{"event_time": "yesterday", "request_id": "r", "model_id": "m", "status": "success"}',
        "event_time: not a valid timestamp",
    ),
]


@pytest.fixture
def job_settings(settings, tmp_path):
    return settings.replace(
        kafka={"partitions": 1},  # one partition: arrival order, so lateness, is the file's
        flink={"watermark_emit": "on-event", "watermark_delay_s": DELAY_MS // 1000},
        output={"tables_path": str(tmp_path / "tables")},
    )


def test_streaming_and_backfill_match_numpy(job_settings, tmp_path):
    s = job_settings
    stream = make_stream()
    on_time, late = split_late(stream)
    assert len(late) >= 15, "the scenario must produce late events"
    topics = s.topics
    kafka_io.ensure_topics(
        s.kafka,
        [topics.invocations, topics.latency, topics.late, topics.late_counts, topics.deadletter],
    )
    kafka_io.produce_json(s.kafka, topics.invocations, stream)
    kafka_io.produce_raw(s.kafka, topics.invocations, [m for m, _ in MALFORMED])

    latency.run(s, bounded=True, wait=True)

    expected = expected_rows(on_time, s.latency.percentiles, latency.windows(s))
    streamed = kafka_io.consume_json(s.kafka, topics.latency, until_end=True)
    assert_rows_match(streamed, expected, s.latency.percentiles, s.latency.histogram_relative_error)

    late_rows = kafka_io.consume_json(s.kafka, topics.late, until_end=True)
    assert sorted(r["request_id"] for r in late_rows) == sorted(e["request_id"] for e in late)
    counts: dict[tuple, int] = defaultdict(int)
    for e in late:
        start = _epoch_ms(e["event_time"]) // 60_000 * 60_000
        counts[(_iso(start), e["model_id"])] += 1
    final: dict[tuple, int] = {}
    for r in kafka_io.consume_json(s.kafka, topics.late_counts, until_end=True):
        final[(r["missed_window_start"], r["model_id"])] = r["late_events"]  # latest wins
    assert final == counts

    dead = kafka_io.consume_json(s.kafka, topics.deadletter, until_end=True)
    by_payload = {base64.b64decode(d["payload_base64"]): d for d in dead}
    assert len(dead) == len(MALFORMED)
    for payload, reason in MALFORMED:
        assert reason in by_payload[payload]["reason"]

    # the Parquet table holds what the topic holds
    parquet = _read_parquet(f"{s.output.tables_path}/latency_1m")
    assert sorted(_row_key(r) for r in parquet) == sorted(
        _row_key(r) for r in streamed if r["window"] == "1m"
    )

    # the same events as a file, bounded: exactly the same rows, the same late events
    source = tmp_path / "events" / "part-0.jsonl"
    source.parent.mkdir()
    source.write_bytes(
        b"".join(json.dumps(e).encode() + b"\n" for e in stream)
        + b"".join(m + b"\n" for m, _ in MALFORMED)
    )
    out = tmp_path / "backfill"
    latency.backfill(s, input_path=str(source.parent), output_path=str(out))
    for window in latency.windows(s):
        got = _read_parquet(f"{out}/latency_{window.name}")
        want = [r for r in streamed if r["window"] == window.name]
        assert sorted(map(_row_key, got)) == sorted(map(_row_key, want))
        for g, w in zip(sorted(got, key=_row_key), sorted(want, key=_row_key), strict=True):
            for column in (
                "requests",
                "errors",
                "latency_p99_ms",
                "ttft_p50_ms",
                "output_tokens_per_s_p90",
            ):
                if w[column] is None:
                    assert g[column] is None, (_row_key(g), column)
                else:
                    assert g[column] == pytest.approx(w[column], rel=1e-12), (_row_key(g), column)
            assert g["latency_hist"] == w["latency_hist"]
    backfill_late = _read_parquet(f"{out}/late_events")
    assert sorted(r["request_id"] for r in backfill_late) == sorted(e["request_id"] for e in late)

    # hourly quantiles recomputed from histograms: within 1% of the exact rank value
    for q in (0.5, 0.9, 0.99):
        for model_id, _hour, calls, estimate in rollups.hourly_model_quantile(str(out), q):
            values = np.array(
                [
                    e["latency_ms"]
                    for e in on_time
                    if e["status"] == "success" and model_id in ("*", e["model_id"])
                ]
            )
            assert calls == len(values)
            exact = float(np.quantile(values, q, method="lower"))
            assert abs(estimate - exact) <= 0.01 * exact, (model_id, q, estimate, exact)
            # with dense data it also agrees with the interpolated streaming columns;
            # with few calls the gap between neighbouring values can be wider
            if len(values) >= 2_000 and q <= 0.9:
                assert math.isclose(estimate, float(np.quantile(values, q)), rel_tol=0.02)


def _row_key(r: dict) -> tuple:
    start = r["window_start"]
    if not isinstance(start, str):
        start = start.strftime("%Y-%m-%dT%H:%M:%SZ")
    return (start, r["model_id"], r["app_id"], r["requests"])


def _read_parquet(path: str) -> list[dict]:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    rel = con.sql(f"SELECT * FROM read_parquet('{path}/*/*/[!._]*', hive_partitioning = true)")
    rows = [dict(zip(rel.columns, values, strict=True)) for values in rel.fetchall()]
    for r in rows:
        if "latency_hist" in r and r["latency_hist"] is not None:
            r["latency_hist"] = {str(k): v for k, v in dict(r["latency_hist"]).items()}
    return rows
