"""The errors and cost jobs through Kafka and Flink, each checked row by row against a Python
computation on the same events: outcome breakdowns and availability per window and key,
spend per dimension with unknown models and a price change inside the data, and alerts as
state transitions (a throttling storm raises exactly one ALARM and one OK; a budget exceeded
in 24 overlapping windows alerts once)."""

from __future__ import annotations

import datetime as dt
import statistics
from collections import Counter, defaultdict

import duckdb
import pytest

from genai_apm import pricing, rules, traffic
from genai_apm.jobs import cost, errors
from genai_apm.kafka import io as kafka_io

pytestmark = pytest.mark.integration

START = traffic.TrafficSpec().start_ms  # 2026-01-01T00:00:00Z
MINUTE = 60_000
DELAY_S = 5
MIN_REQUESTS = 20


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _window_starts(ts: int, size_min: int, hop_min: int | None) -> list[int]:
    size, hop = size_min * MINUTE, (hop_min or size_min) * MINUTE
    last = ts // hop * hop
    return [s for s in range(last - size + hop, last + 1, hop) if s <= ts < s + size]


def _events(spec: traffic.TrafficSpec) -> list[dict]:
    return [r.event for r in traffic.traffic(spec) if r.contract == traffic.INVOCATION]


def _copies(events: list[dict], prefix: str, n: int, **changes) -> list[dict]:
    """``n`` events spread over the stream, changed and given fresh request ids."""
    step = len(events) // n
    return [
        dict(e, request_id=f"{prefix}-{i}", **changes) for i, e in enumerate(events[::step][:n])
    ]


def _in_time_order(*streams: list[dict]) -> list[dict]:
    return sorted((e for s in streams for e in s), key=lambda e: e["event_time"])


def _holds(observed: float, op: str, threshold: float) -> bool:
    return {
        ">": observed > threshold,
        ">=": observed >= threshold,
        "<": observed < threshold,
        "<=": observed <= threshold,
    }[op]


def expected_transitions(series: dict[tuple[str, str], list], limits: dict) -> list:
    """(rule, key, state, previous_state, window_end, observed) per change of state, in the
    key's window order; a key's first OK is silent. ``limits``: rule -> (op, threshold)."""
    out = []
    for (name, key), values in series.items():
        previous = None
        for end, observed in sorted(values):
            state = "ALARM" if _holds(observed, *limits[name]) else "OK"
            if state != (previous or "OK"):
                out.append((name, key, state, previous, _iso(end), observed))
            previous = state
    return sorted(out, key=_order)


def _order(alert: tuple) -> tuple:
    rule, key, _, _, time, _ = alert
    return (rule, key, time)


def _alerts(rows: list[dict]) -> list:
    return sorted(
        (
            (r["rule"], r["key"], r["state"], r["previous_state"], r["alert_time"], r["observed"])
            for r in rows
        ),
        key=_order,
    )


def assert_alerts_match(got: list[dict], want: list) -> None:
    got_t = _alerts(got)
    assert [g[:5] for g in got_t] == [w[:5] for w in want]
    for g, w in zip(got_t, want, strict=True):
        assert g[5] == pytest.approx(w[5], rel=1e-9), g


def _read_parquet(path: str) -> list[dict]:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    rel = con.sql(f"SELECT * FROM read_parquet('{path}/*/*/[!._]*', hive_partitioning = true)")
    return [dict(zip(rel.columns, values, strict=True)) for values in rel.fetchall()]


def _parquet_key(r: dict, *columns: str) -> tuple:
    start = r["window_start"]
    if not isinstance(start, str):
        start = start.strftime("%Y-%m-%dT%H:%M:%SZ")
    return (start, *(r[c] for c in columns))


@pytest.fixture
def job_settings(settings, unique, tmp_path):
    return settings.replace(
        kafka={"partitions": 1},  # one partition: the order produced is the order read
        flink={"watermark_emit": "on-event", "watermark_delay_s": DELAY_S},
        topics={
            "errors": f"it.{unique}.errors",
            "cost": f"it.{unique}.cost",
            "alerts": f"it.{unique}.alerts",
        },
        output={"tables_path": str(tmp_path / "tables")},
    )


def _produce(s, events: list[dict], *outputs: str) -> None:
    t = s.topics
    kafka_io.ensure_topics(s.kafka, [t.invocations, t.deadletter, *outputs])
    kafka_io.produce_json(s.kafka, t.invocations, events)


# ---------------------------------------------------------------------------------------------
# errors


def outcome(e: dict) -> str:
    if e["status"] == "error":
        known = ("client", "server", "throttle", "timeout")
        return e["error_class"] if e["error_class"] in known else "unclassified"
    if e["error_class"] == "content_filtered" or e["guardrail_intervened"]:
        return "content_filtered"
    return "success"


def expected_error_rows(events: list[dict], windows) -> dict[tuple, dict]:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for e in events:
        app = e["app_id"] or "unknown"
        for w in windows:
            for start in _window_starts(e["event_time"], w.size_min, w.hop_min):
                for key in ((e["model_id"], app), (e["model_id"], "*"), ("*", app), ("*", "*")):
                    groups[(w.name, start, *key)].append(e)
    rows = {}
    for key, calls in groups.items():
        n = len(calls)
        c = Counter(map(outcome, calls))
        failures = c["client"] + c["server"] + c["throttle"] + c["timeout"] + c["unclassified"]
        unavailable = c["server"] + c["throttle"] + c["timeout"] + c["unclassified"]
        rows[key] = {
            "requests": n,
            "errors": failures,
            "successes": c["success"],
            "client_errors": c["client"],
            "server_errors": c["server"],
            "throttles": c["throttle"],
            "timeouts": c["timeout"],
            "content_filtered": c["content_filtered"],
            "unclassified_errors": c["unclassified"],
            "error_rate": failures / n,
            "success_rate": c["success"] / n,
            "client_error_rate": c["client"] / n,
            "server_error_rate": c["server"] / n,
            "throttle_rate": c["throttle"] / n,
            "timeout_rate": c["timeout"] / n,
            "content_filtered_rate": c["content_filtered"] / n,
            "availability_pct": 100 * (n - unavailable) / n,
            "error_types": dict(Counter(e["error_type"] for e in calls if e["error_type"])),
        }
    return rows


SCOPE_KEY = {  # scope -> (row filter on (model_id, app_id), alert key)
    "model_app": (lambda m, a: m != "*" and a != "*", lambda m, a: f"{m}|{a}"),
    "model": (lambda m, a: m != "*" and a == "*", lambda m, a: m),
    "app": (lambda m, a: m == "*" and a != "*", lambda m, a: a),
    "all": (lambda m, a: m == "*" and a == "*", lambda m, a: "*"),
}


def threshold_series(rows: dict[tuple, dict], threshold_rules, windows) -> dict:
    sizes = {w.name: w.size_min for w in windows}
    series = defaultdict(list)
    for (window, start, model, app), row in rows.items():
        for r in threshold_rules:
            matches, key_of = SCOPE_KEY[r.scope]
            if r.window != window or not matches(model, app):
                continue
            key = key_of(model, app)
            if r.key is not None and key != r.key:
                continue
            if r.kind != "count" and row["requests"] < MIN_REQUESTS:
                continue
            series[(r.name, key)].append((start + sizes[window] * MINUTE, row[r.metric]))
    return series


def test_errors_job_breakdowns_and_alerts(job_settings):
    base = traffic.TrafficSpec(rate_per_s=10, seed=21, duration_s=720)
    busiest = Counter(e["model_id"] for e in _events(base)).most_common(1)[0][0]
    storm_start, storm_end = START + 4 * MINUTE, START + 7 * MINUTE
    spec = traffic.TrafficSpec(
        rate_per_s=10,
        seed=21,
        duration_s=720,
        incidents=(traffic.throttling_storm(busiest, storm_start, storm_end, share=0.6),),
    )
    plain = _events(spec)
    stream = _in_time_order(
        plain,
        _copies(plain, "acme", 12, model_id="acme-llm-9000", provider="acme"),
        # a failure with no class: counted, and held against availability
        _copies(plain, "odd", 8, status="error", error_class=None, error_type="MysteryError"),
        _copies(plain, "noapp", 6, app_id=None),
    )
    texts = (
        "storm:throttle_rate:model:>:5%:5m",
        "server:server_errors:model:>:2:1m",
        "filtered:content_filtered_rate:app:>:1%:5m",
        "availability:availability_pct:all:<:97.5:1m",
        f"busiest:error_rate:model_app={busiest}|support-bot:>=:4%:5m",
    )
    s = job_settings.replace(alerts={"rules": texts, "min_requests": MIN_REQUESTS})
    _produce(s, stream, s.topics.errors, s.topics.alerts)

    errors.run(s, bounded=True, wait=True)

    windows = errors.windows(s)
    want = expected_error_rows(stream, windows)
    got = kafka_io.consume_json(s.kafka, s.topics.errors, until_end=True)
    by_key = {}
    for r in got:
        start = int(dt.datetime.fromisoformat(r["window_start"]).timestamp() * 1000)
        by_key[(r["window"], start, r["model_id"], r["app_id"])] = r
    assert len(by_key) == len(got), "one row per window and key"
    assert by_key.keys() == want.keys()
    for key, row in want.items():
        for column, value in row.items():
            if column == "error_types":
                assert (by_key[key][column] or {}) == value, (key, column)
            elif isinstance(value, int):
                assert by_key[key][column] == value, (key, column)
            else:
                assert by_key[key][column] == pytest.approx(value, rel=1e-12), (key, column)
    totals = [r for k, r in by_key.items() if k[0] == "1m" and k[2:] == ("*", "*")]
    assert sum(r["unclassified_errors"] for r in totals) == 8
    acme = [r for k, r in by_key.items() if k[0] == "1m" and k[2:] == ("acme-llm-9000", "*")]
    assert sum(r["requests"] for r in acme) == 12

    # the Parquet table holds what the topic holds
    parquet = _read_parquet(f"{s.output.tables_path}/errors_1m")
    assert sorted(_parquet_key(r, "model_id", "app_id", "requests", "errors") for r in parquet) == (
        sorted(
            _parquet_key(r, "model_id", "app_id", "requests", "errors")
            for r in got
            if r["window"] == "1m"
        )
    )

    parsed = [rules.parse_threshold_rule(t, ("1m", "5m")) for t in texts]
    series = threshold_series(want, parsed, windows)
    expected = expected_transitions(series, {r.name: (r.op, r.threshold) for r in parsed})
    alerts = kafka_io.consume_json(s.kafka, s.topics.alerts, until_end=True)
    assert_alerts_match(alerts, expected)

    # the storm: one ALARM while a 5-minute window overlaps it, one OK once none does
    storm = [a for a in alerts if a["rule"] == "storm" and a["key"] == busiest]
    assert [a["state"] for a in storm] == ["ALARM", "OK"], storm
    alarm, ok = storm
    assert _iso(storm_start) < alarm["window_end"] <= _iso(storm_start + 5 * MINUTE)
    assert ok["window_start"] == _iso(storm_end)
    assert {a["rule"] for a in alerts} >= {"storm", "server", "availability"}


# ---------------------------------------------------------------------------------------------
# cost


def _test_prices(dropped: str, changed: str, change_ms: int) -> list[dict]:
    """The shipped prices of the generator's models, less one, plus a price change."""
    rows = []
    for p in pricing.load().prices:
        if p.model_id == dropped:
            continue
        row = {
            "provider": p.provider,
            "model_id": p.model_id,
            "from_ms": p.effective_from_ms,
            "input": p.input,
            "output": p.output,
            "cache_read": p.cache_read,
            "cache_write": p.cache_write,
        }
        rows.append(row)
        if p.model_id == changed:
            doubled = {k: v * 2 for k, v in row.items() if k in ("input", "output", "cache_read")}
            rows.append(row | doubled | {"from_ms": change_ms})
    return rows


def _toml(prices: list[dict]) -> str:
    lines = ['format = 1\nversion = "test-1"\n']
    for p in prices:
        lines.append(
            "[[price]]\n"
            f'provider = "{p["provider"]}"\nmodel_id = "{p["model_id"]}"\n'
            f'effective_from = {_iso(p["from_ms"])}\ncurrency = "USD"\n'
            f"input = {p['input']!r}\noutput = {p['output']!r}\n"
            f"cache_read = {p['cache_read']!r}\ncache_write = {p['cache_write']!r}\n"
            'source = "test"\n'
        )
    return "\n".join(lines)


def call_cost(prices: list[dict], e: dict) -> float | None:
    rows = [
        p
        for p in prices
        if (p["provider"], p["model_id"]) == (e["provider"], e["model_id"])
        and p["from_ms"] <= e["event_time"]
    ]
    if not rows:
        return None
    p = max(rows, key=lambda r: r["from_ms"])
    read = e["cache_read_input_tokens"] or 0
    write = e["cache_write_input_tokens"] or 0
    uncached = max((e["input_tokens"] or 0) - read - write, 0)
    out = e["output_tokens"] or 0
    return (
        uncached * p["input"]
        + out * p["output"]
        + read * p["cache_read"]
        + write * p["cache_write"]
    ) / 1e6


DIMENSION_KEYS = {
    "app": lambda e: e["app_id"] or "unknown",
    "user": lambda e: e["user_id"] or "unknown",
    "feature": lambda e: e["feature"] or "unknown",
    "model": lambda e: e["model_id"],
    "session": lambda e: e["session_id"] or "unknown",
    "all": lambda e: "*",
}


def expected_spend(events: list[dict], costs: list, size_min: int) -> dict[tuple, dict]:
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i, e in enumerate(events):
        for start in _window_starts(e["event_time"], size_min, None):
            for dimension, key_of in DIMENSION_KEYS.items():
                groups[(_iso(start), dimension, key_of(e))].append(i)
    rows = {}
    for key, members in groups.items():
        calls = [events[i] for i in members]
        priced = [costs[i] for i in members if costs[i] is not None]
        unpriced = [events[i] for i in members if costs[i] is None]
        rows[key] = {
            "requests": len(calls),
            "priced_requests": len(priced),
            "unpriced_requests": len(unpriced),
            "input_tokens": sum(e["input_tokens"] or 0 for e in calls),
            "output_tokens": sum(e["output_tokens"] or 0 for e in calls),
            "cache_read_tokens": sum(e["cache_read_input_tokens"] or 0 for e in calls),
            "cache_write_tokens": sum(e["cache_write_input_tokens"] or 0 for e in calls),
            "unpriced_tokens": sum(
                (e["input_tokens"] or 0) + (e["output_tokens"] or 0) for e in unpriced
            ),
            "cost_usd": sum(priced) if priced else None,
            "pricing_version": "test-1",
        }
    return rows


def rolling_spend(events, costs, scope: str, size_min: int, hop_min: int) -> dict:
    """(window_start, key) -> spend over the rolling window, for one budget scope."""
    spend: dict[tuple[int, str], float] = defaultdict(float)
    for e, c in zip(events, costs, strict=True):
        for start in _window_starts(e["event_time"], size_min, hop_min):
            spend[(start, DIMENSION_KEYS[scope](e))] += c or 0.0
    return spend


def test_cost_job_spend_prices_and_budgets(job_settings, tmp_path):
    spike_user, spike_start, spike_end = "u-150", START + 2 * MINUTE, START + 4 * MINUTE
    spec = traffic.TrafficSpec(
        rate_per_s=10,
        seed=5,
        duration_s=600,
        incidents=(traffic.cost_spike(spike_user, spike_start, spike_end, calls_per_s=2.0),),
    )
    plain = _events(spec)
    models = Counter(e["model_id"] for e in plain)
    changed = models.most_common(1)[0][0]
    dropped = models.most_common()[-1][0]  # a known model left out of the table: unpriced
    prices = _test_prices(dropped, changed, START + 4 * MINUTE)
    stream = _in_time_order(
        plain, _copies(plain, "acme", 10, model_id="acme-llm-9000", provider="acme")
    )
    costs = [call_cost(prices, e) for e in stream]
    assert any(c is None for c in costs) and any(c is not None for c in costs)

    # budgets set from the data, so each has something to say
    hour = rolling_spend(stream, costs, "user", 60, 5)
    first, last = START - 55 * MINUTE, START + 5 * MINUTE  # windows holding [0,5) and [5,10) min
    spike_peak = hour[(first, spike_user)]
    quiet_max = max(v for (start, _), v in hour.items() if start == last)
    assert spike_peak > 2 * quiet_max, "the spike must stand out"
    user_limit = round((spike_peak * quiet_max) ** 0.5, 6)
    day = rolling_spend(stream, costs, "app", 1440, 60)
    app_limit = round(statistics.median(v for (start, _), v in day.items() if start == START), 6)
    budgets = (f"user-hour:user:1h:{user_limit}", f"app-day:app:1d:{app_limit}")

    table_path = tmp_path / "prices.toml"
    table_path.write_text(_toml(prices))
    s = job_settings.replace(
        cost={
            "pricing_file": str(table_path),
            "budgets": budgets,
            "budget_hour_hop_minutes": 5,
            "budget_day_hop_minutes": 60,
        }
    )
    _produce(s, stream, s.topics.cost, s.topics.alerts)

    cost.run(s, bounded=True, wait=True)

    want = expected_spend(stream, costs, 60)
    got = kafka_io.consume_json(s.kafka, s.topics.cost, until_end=True)
    by_key = {(r["window_start"], r["dimension"], r["key"]): r for r in got}
    assert len(by_key) == len(got), "one row per window, dimension and key"
    assert by_key.keys() == want.keys()
    for key, row in want.items():
        for column, value in row.items():
            if isinstance(value, float):
                assert by_key[key][column] == pytest.approx(value, rel=1e-9), (key, column)
            else:
                assert by_key[key][column] == value, (key, column)
    window = _iso(START)
    assert by_key[(window, "model", "acme-llm-9000")]["cost_usd"] is None
    assert by_key[(window, "model", dropped)]["unpriced_requests"] == models[dropped]
    assert by_key[(window, "all", "*")]["unpriced_requests"] == models[dropped] + 10
    # the price change took effect inside the data: one price for the whole hour disagrees
    old_only = [p for p in prices if not (p["model_id"] == changed and p["from_ms"] > START)]
    flat = sum(call_cost(old_only, e) for e in stream if e["model_id"] == changed)
    assert by_key[(window, "model", changed)]["cost_usd"] > flat * 1.2

    parquet = _read_parquet(f"{s.output.tables_path}/cost_1h")
    assert sorted(_parquet_key(r, "dimension", "key", "requests") for r in parquet) == sorted(
        _parquet_key(r, "dimension", "key", "requests") for r in got
    )

    limits = {b.name: (">", b.limit_usd) for b in map(rules.parse_budget_rule, budgets)}
    series = defaultdict(list)
    for name, size, spend in (("user-hour", 60, hour), ("app-day", 1440, day)):
        for (start, key), spent in spend.items():
            series[(name, key)].append((start + size * MINUTE, spent))
    expected = expected_transitions(series, limits)
    alerts = kafka_io.consume_json(s.kafka, s.topics.alerts, until_end=True)
    assert_alerts_match(alerts, expected)

    spike = [a for a in alerts if a["rule"] == "user-hour" and a["key"] == spike_user]
    assert [(a["state"], a["window_end"]) for a in spike] == [
        ("ALARM", _iso(START + 5 * MINUTE)),
        ("OK", _iso(START + 65 * MINUTE)),
    ]
    # 24 overlapping day windows over the limit, one alert per app
    daily = Counter(a["key"] for a in alerts if a["rule"] == "app-day")
    assert daily and set(daily.values()) == {1}
    assert all(a["state"] == "ALARM" for a in alerts if a["rule"] == "app-day")
