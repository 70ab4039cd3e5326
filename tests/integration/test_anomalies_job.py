"""The anomaly job through Kafka and Flink: a prompt-induced latency regression on one app
(its prompts grow 5x and its calls take 3x as long) opens exactly one incident, with both
signals in its explanation, and closes it after the incident ends; the same spike seen on its
model x app keys is explained by the app; a quiet control app opens none; nothing alerts
during warm-up. The job's per-window statistics and the baseline of the
incident's opening are checked against numpy on the same events."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from functools import partial

import duckdb
import numpy as np
import pytest

from genai_apm import pricing, traffic
from genai_apm.jobs import anomalies, runner
from genai_apm.kafka import io as kafka_io

pytestmark = pytest.mark.integration

START = traffic.TrafficSpec().start_ms
MINUTE = 60_000
APP, CONTROL = "support-bot", "rag-search"
INCIDENT = (START + 16 * MINUTE, START + 21 * MINUTE)  # on window boundaries
DURATION_MIN = 26


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ms(text: str) -> int:
    return int(dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def _events() -> list[dict]:
    spec = traffic.TrafficSpec(
        rate_per_s=8,
        seed=4,
        duration_s=DURATION_MIN * 60,
        incidents=(traffic.input_token_spike(APP, *INCIDENT, factor=5.0),),
    )
    events = [r.event for r in traffic.traffic(spec) if r.contract == traffic.INVOCATION]
    # the prompts' prefill made slower still: the app's successful calls take 3x as long
    for e in events:
        ok = e["status"] == "success"
        if ok and e["app_id"] == APP and INCIDENT[0] <= e["event_time"] < INCIDENT[1]:
            e["latency_ms"] = round(e["latency_ms"] * 3, 3)
            if e["ttft_ms"] is not None:
                e["ttft_ms"] = round(e["ttft_ms"] * 3, 3)
    return events


def _cost(table, e: dict) -> float | None:
    p = table.price_at(e["provider"], e["model_id"], e["event_time"])
    if p is None:
        return None
    read = max(e["cache_read_input_tokens"] or 0, 0)
    write = max(e["cache_write_input_tokens"] or 0, 0)
    uncached = max((e["input_tokens"] or 0) - read - write, 0)
    out = e["output_tokens"] or 0
    return (uncached * p.input + out * p.output + read * p.cache_read + write * p.cache_write) / 1e6


def expected_windows(events: list[dict], min_requests: int) -> dict[tuple, dict]:
    """(window_start, dimension, key) -> the metrics, computed with numpy."""
    table = pricing.load()
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for e in events:
        start = e["event_time"] // MINUTE * MINUTE
        app, user = e["app_id"] or "unknown", e["user_id"] or "unknown"
        for dim, key in (
            ("model_app", f"{e['model_id']}|{app}"),
            ("model", e["model_id"]),
            ("app", app),
            ("user", user),
        ):
            groups[(_iso(start), dim, key)].append(e)
    rows = {}
    for key, calls in groups.items():
        ok = [c for c in calls if c["status"] == "success"]
        enough = len(calls) >= min_requests and ok
        costs = [c for c in (_cost(table, e) for e in calls) if c is not None]

        # a p99 needs 100 calls (below that it is one call's value), other stats min_requests
        enough99 = len(calls) >= max(min_requests, 100) and ok

        def q(values, p, enough=enough, enough99=enough99):
            return float(np.percentile(values, p)) if (enough99 if p == 99 else enough) else None

        tin = [c["input_tokens"] for c in ok]
        tout = [c["output_tokens"] for c in ok]
        lat = [c["latency_ms"] for c in ok]
        rows[key] = {
            "requests": len(calls),
            "input_tokens_mean": float(np.mean(tin)) if enough else None,
            "input_tokens_p99": q(tin, 99),
            "output_tokens_mean": float(np.mean(tout)) if enough else None,
            "output_tokens_p99": q(tout, 99),
            "latency_p50_ms": q(lat, 50),
            "latency_p99_ms": q(lat, 99),
            "error_rate": 1 - len(ok) / len(calls) if len(calls) >= min_requests else None,
            "cost_usd": sum(costs) if costs else None,
        }
    return rows


def _read_jsonl(directory) -> list[dict]:
    import json

    return [
        json.loads(line)
        for p in sorted(directory.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
        for line in p.read_text().splitlines()
        if line.strip()
    ]


def test_anomaly_incident_lifecycle(settings, unique, tmp_path):
    s = settings.replace(
        kafka={"partitions": 1},  # one partition: the order produced is the order read
        flink={"watermark_emit": "on-event", "watermark_delay_s": 5},
        topics={
            "anomalies": f"it.{unique}.anomalies",
            "anomaly_counts": f"it.{unique}.anomaly-counts",
        },
        output={"tables_path": str(tmp_path / "tables")},
    )
    a = s.anomalies
    events = _events()
    t = s.topics
    kafka_io.ensure_topics(s.kafka, [t.invocations, t.deadletter, t.anomalies, t.anomaly_counts])
    kafka_io.produce_json(s.kafka, t.invocations, events)

    # the job's own assemble, also writing its per-window metrics for the numpy comparison
    runner.Job(anomalies.JOB, (partial(anomalies.assemble, windows=True),)).run(
        s, bounded=True, wait=True
    )

    # the window statistics, against numpy
    want = expected_windows(events, a.min_requests)
    got_rows = _read_jsonl(tmp_path / "tables" / "anomaly_windows")
    got = {(r["window_start"], r["dimension"], r["key"]): r for r in got_rows}
    assert len(got) == len(got_rows), "one row per window and key"
    assert got.keys() == want.keys()
    # percentiles come from the shared histograms: within their relative error of numpy's
    bound = s.latency.histogram_relative_error * (1 + 1e-9)
    for key, row in want.items():
        for column, value in row.items():
            if value is None or isinstance(value, int):
                assert got[key][column] == value, (key, column)
            elif "_p" in column:
                assert abs(got[key][column] - value) <= bound * abs(value), (key, column)
            else:
                assert got[key][column] == pytest.approx(value, rel=1e-9), (key, column)

    records = kafka_io.consume_json(s.kafka, t.anomalies, until_end=True)
    out = [r for r in records if r["event"] in ("open", "close")]  # window incidents
    outliers = [r for r in records if r["event"] == "outlier"]  # single calls
    opened = [r for r in out if r["event"] == "open"]
    # warm-up: no key has warmup_windows baseline windows before this
    first_possible = START + (a.warmup_windows + 1) * a.window_minutes * MINUTE
    assert all(_ms(r["alert_time"]) >= first_possible for r in out), out[:3]

    incident = [r for r in out if (r["dimension"], r["key"]) == ("app", APP)]
    assert [r["event"] for r in incident] == ["open", "close"], incident
    start, end = incident
    # opened by the incident's open_after_windows-th anomalous window
    opened_at = INCIDENT[0] + a.open_after_windows * a.window_minutes * MINUTE
    assert _ms(start["alert_time"]) == opened_at
    assert start["explained_by"] is None  # the root cause: nothing else explains it
    assert (
        INCIDENT[1] < _ms(end["alert_time"]) <= INCIDENT[1] + (a.close_after_windows + 1) * (MINUTE)
    )
    signals = set(start["metrics"].split(","))
    assert {"input_tokens_mean", "latency_p50_ms"} <= signals, start
    assert "input_tokens_mean" in start["explanation"] and "latency_p50_ms" in start["explanation"]
    assert start["severity"] in ("warning", "critical") and start["score"] >= a.threshold
    assert start["state"] == "ALARM" and end["state"] == "OK" and end["previous_state"] == "ALARM"

    # the opening's baseline: the median of the key's previous windows (as the job reported
    # them, checked against numpy above), numpy again
    metric = start["metric"]
    history = [
        row[metric]
        for (w, dim, key), row in sorted(got.items())
        if (dim, key) == ("app", APP)
        and _ms(w) < opened_at - a.window_minutes * MINUTE  # the windows before this one
        and row[metric] is not None
    ][-a.baseline_windows :]
    q1, median, q3 = np.percentile(history, [25, 50, 75])
    assert start["baseline"] == pytest.approx(median, rel=1e-9)
    sd = anomalies.robust_sd(
        median,
        q3 - q1,
        *next((m.floor, a.relative_floor * m.tail) for m in anomalies.METRICS if m.name == metric),
    )
    assert start["robust_sd"] == pytest.approx(sd, rel=1e-9)
    assert start["deviation"] == pytest.approx((start["observed"] - median) / sd, rel=1e-9)
    # the explanation the SQL wrote is the one anomalies.explanation formats
    top = anomalies.explanation(
        APP, "app", [(metric, start["observed"], start["baseline"], start["deviation"])]
    ).removeprefix(f"app {APP}: ")
    assert top in start["explanation"], (top, start["explanation"])

    # the app's spike shows on its model x app keys and on models it dominates: each such
    # incident names the app as its explanation, so one root incident pages someone
    for r in opened:
        if r["key"].endswith(f"|{APP}"):
            assert r["explained_by"] == f"app {APP}", r
            assert f"explained by app {APP} (" in r["explanation"]
    roots = [r for r in opened if r["explained_by"] is None]
    assert ("app", APP) in {(r["dimension"], r["key"]) for r in roots}

    # the quiet control: nothing on its own key or its model x app keys
    control = [r for r in out if r["key"] == CONTROL or r["key"].endswith(f"|{CONTROL}")]
    assert control == []

    # every open incident closes within the data or is still open at its end
    counts = kafka_io.consume_json(s.kafka, t.anomaly_counts, until_end=True)
    by_window = {r["window_start"]: r for r in counts}
    assert len(by_window) == DURATION_MIN
    assert by_window[_iso(opened_at - a.window_minutes * MINUTE)]["open_incidents"] >= 1
    assert by_window[_iso(START)]["open_incidents"] == 0
    assert by_window[_iso(START)]["keys_evaluated"] == 0

    # the Parquet table holds what the topic holds
    con = duckdb.connect()
    parquet = con.execute(
        f"SELECT count(*) FROM read_parquet('{tmp_path}/tables/anomalies/*/*/[!._]*')"
    ).fetchone()[0]
    assert parquet == len(records)
    print(f"{len(opened)} incidents opened:", sorted({(r["dimension"], r["key"]) for r in opened}))
    print(f"{len(outliers)} outlier calls, e.g.:", [r["explanation"] for r in outliers][:3])
