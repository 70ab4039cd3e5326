"""The SLO and quota job through real Flink (bounded, from files), checked against the Python
twin in tests/slo_reference.py on the same generated calls, and the scenarios the issue asks
for: a fast burn pages within the short window and recovers once, a slow burn raises the
ticket without crossing the single-window threshold rule, a 2-minute blip raises nothing;
the quota-headroom alert fires at least 2 minutes before the first throttled call of the
quota-ramp scenario and names the app driving it, and stays silent on clean traffic."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from genai_apm import traffic as generator
from genai_apm.jobs import slo
from genai_apm.settings import config
from genai_apm.traffic import incidents as inc
from genai_apm.traffic.population import population
from genai_apm.traffic.presets import quota_ramp_incidents
from tests import slo_reference as ref

pytestmark = pytest.mark.integration

MINUTE = 60_000
RUN_MIN = 150
SPEC = generator.TrafficSpec(rate_per_s=3, error_rate=0.0, duration_s=RUN_MIN * 60)
POP = population(SPEC.models, SPEC.apps, SPEC.users)
FAST, BLIP, SLOW, LATENCY = (POP.model_ids[i] for i in (0, 1, 2, 4))
QUOTA = """format = 1
version = "test"

[[quota]]
provider = "aws.bedrock"
model_id = "amazon.nova-pro-v1:0"
region = "us-east-1"
tpm = 400000
rpm = 300
output_burndown = 1
source = "test"
"""


def at(minute: float) -> int:
    return SPEC.start_ms + int(minute * MINUTE)


def _settings(tmp_path: Path, objectives: tuple[str, ...]) -> config.Settings:
    quota_file = tmp_path / "quotas.toml"
    quota_file.write_text(QUOTA)
    return config.load(None, environ={}).replace(
        flink={"parallelism": 1, "watermark_emit": "on-event"},
        slo={"objectives": objectives},
        quota={"quota_file": str(quota_file)},
    )


def _run(settings: config.Settings, events: list[dict], tmp_path: Path) -> Path:
    source = tmp_path / "in"
    source.mkdir()
    (source / "calls.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    out = tmp_path / "out"
    slo.backfill(settings, input_path=str(source), output_path=str(out))
    return out


def _json_lines(folder: Path) -> list[dict]:
    return [
        json.loads(line)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
        for line in p.read_text().splitlines()
        if line.strip()
    ]


def _parquet(folder: Path) -> list[dict]:
    # committed files: part-* or, once compacted, compacted-part-* (not .in-progress, _SUCCESS)
    files = [p for p in folder.rglob("*") if p.is_file() and not p.name.startswith((".", "_"))]
    return [r for p in files for r in pq.read_table(p).to_pylist()]


def _events(spec: generator.TrafficSpec) -> list[dict]:
    return [r.event for r in generator.traffic(spec) if r.contract == generator.INVOCATION]


def _alert_key(a: dict) -> tuple:
    return (a["rule"], a["key"], a["state"], a["previous_state"], a["alert_time"])


def _approx(a, b, rel: float = 1e-9) -> bool:
    return (a is None and b is None) or (
        a is not None and b is not None and a == pytest.approx(b, rel=rel, abs=rel)
    )


def test_burn_rates_budgets_quota_and_alerts_equal_python(tmp_path):
    settings = _settings(
        tmp_path,
        (
            f"fast:availability:model={FAST}:99.9%:30d",
            f"blip:availability:model={BLIP}:99%:30d",
            f"slow:availability:model={SLOW}:99.9%:30d",
            f"ttft:latency:model={LATENCY}:95%:7d:ttft:1500",
        ),
    )
    ramp, storm = quota_ramp_incidents(SPEC, RUN_MIN * 60, settings)
    scenario = (
        inc.throttling_storm(FAST, at(70), at(90), share=1.0),
        inc.throttling_storm(BLIP, at(120), at(122), share=0.5),
        inc.throttling_storm(SLOW, at(30), at(RUN_MIN), share=0.005),
        ramp,
        storm,
    )
    events = _events(generator.TrafficSpec(**{**SPEC.__dict__, "incidents": scenario}))
    out = _run(settings, events, tmp_path)
    check_scenario(out, events, settings, ramp, storm)


def check_scenario(out: Path, events: list[dict], settings, ramp, storm) -> None:
    # every SLO row: events, budget and burn rates as Python computes them
    want_rows = ref.slo_rows(events, settings)
    got_rows = {}
    for r in _parquet(out / "slo_1m"):
        minute = int(r["window_start"].timestamp() * 1000) // MINUTE
        got_rows[(r["slo"], r["key"], minute)] = r
    want_count = sum(len(v) for v in want_rows.values())
    assert len(got_rows) == want_count
    for (name, key), rows in want_rows.items():
        for w in rows:
            g = got_rows[(name, key, w["minute"])]
            assert (g["events"], g["good_events"]) == (w["events"], w["good"])
            for window in slo.BURN_WINDOWS:
                assert _approx(g[slo.burn_column(window)], w[f"burn_{window}"]), (key, window)
            assert _approx(g["budget_consumed_pct"], w["budget_consumed_pct"])
            assert _approx(g["budget_remaining_pct"], 100 - w["budget_consumed_pct"])

    # every quota row
    want_quota = ref.quota_rows(events, settings)
    got_quota = {
        (f"{r['provider']}|{r['model_id']}|{r['region']}", int(r["window_start"].timestamp())): r
        for r in _parquet(out / "quota_1m")
    }
    assert len(got_quota) == sum(len(v) for v in want_quota.values())
    for key, rows in want_quota.items():
        for w in rows:
            g = got_quota[(key, w["minute"] * 60)]
            assert g["requests"] == w["requests"] and g["top_app"] == w["top_app"]
            for column in ("quota_tokens", "use_pct", "top_app_share_pct"):
                assert _approx(g[column], w[column]), (key, w["minute"], column)
            for column in ("trend_pct_per_min", "minutes_to_exhaustion"):
                assert _approx(g[column], w[column], rel=1e-6), (key, w["minute"], column)

    # the alerts: exactly the transitions Python finds
    alerts = _json_lines(out / "alerts")
    series = {**ref.burn_series(want_rows, settings), **ref.quota_series(want_quota, settings)}
    assert sorted(map(_alert_key, alerts)) == ref.transitions(series)

    def of(rule: str) -> list[dict]:
        return sorted((a for a in alerts if a["rule"] == rule), key=lambda a: a["alert_time"])

    # a fast burn pages within the short window and closes once after it ends
    page = of("slo-fast-page-1h-5m")
    assert [a["state"] for a in page] == ["ALARM", "OK"]
    assert ref.iso(at(70)) < page[0]["alert_time"] <= ref.iso(at(75))
    assert page[1]["alert_time"] > ref.iso(at(90))
    assert "burn 1h" in page[0]["message"] and "5m" in page[0]["message"]
    assert ", back below 14.4" in page[1]["message"]

    # a slow burn raises the ticket, pages never, and the single-window rule stays quiet
    assert [a["state"] for a in of("slo-slow-ticket-3d-6h")][:1] == ["ALARM"]
    assert not of("slo-slow-page-1h-5m") and not of("slo-slow-page-6h-30m")
    slow = [e for e in events if e["model_id"] == SLOW]
    for start in range(0, RUN_MIN - 4):
        inside = [e for e in slow if at(start) <= e["event_time"] < at(start + 5)]
        bad = sum(ref.outcome(e) not in ref.GOOD for e in inside)
        if len(inside) >= settings.alerts.min_requests:
            assert 100 * (len(inside) - bad) / len(inside) >= 95, start

    # a 2-minute blip raises nothing
    assert not [a for a in alerts if a["rule"].startswith("slo-blip-")]

    # the quota alert: 2+ minutes before the first throttled call, naming the ramping app
    first_throttle = min(
        e["event_time"]
        for e in events
        if e["error_class"] == "throttle" and e["model_id"] == storm.key
    )
    assert first_throttle >= storm.start_ms
    headroom = of(slo.QUOTA_RULE)
    assert headroom and {a["key"] for a in headroom} == {
        "aws.bedrock|amazon.nova-pro-v1:0|us-east-1"
    }
    assert headroom[0]["alert_time"] <= ref.iso(first_throttle - 2 * MINUTE)
    assert f"top app {ramp.key}" in headroom[0]["message"]


def test_clean_traffic_raises_no_quota_alert(tmp_path):
    settings = _settings(tmp_path, ())
    events = _events(generator.TrafficSpec(**{**SPEC.__dict__, "duration_s": 60 * 60}))
    out = _run(settings, events, tmp_path)
    want = ref.quota_rows(events, settings)
    assert want, "the clean traffic uses the quota"
    assert len(_parquet(out / "quota_1m")) == sum(len(v) for v in want.values())
    assert ref.transitions(ref.quota_series(want, settings)) == []
    assert _json_lines(out / "alerts") == []
