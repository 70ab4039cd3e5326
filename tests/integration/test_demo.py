"""`make run`'s path: the demo on the session's stack runs the combined analytics job, and
what it prints is what the topics hold; the throttling storm raises one ALARM and one OK."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest

from genai_apm import traffic as generator
from genai_apm.demo import run_demo

pytestmark = pytest.mark.integration


def test_demo_end_to_end(settings, tmp_path):
    lines: list[str] = []
    s = settings.replace(output={"tables_path": str(tmp_path / "tables")})
    rows = run_demo(s, minutes=3, rate_per_s=40, out=lines.append)

    # every model of the generated traffic has a row per minute, plus the '*' rollup
    spec = generator.TrafficSpec(rate_per_s=40, count=3 * 60 * 40)
    events = list(generator.invocations(spec, spec.count))
    per_minute = Counter((e["event_time"] // 60_000, e["model_id"]) for e in events)
    tumbling = [
        r for r in rows if r["window"] == "1m" and r["app_id"] == "*" and r["model_id"] != "*"
    ]
    assert len(tumbling) == len(per_minute)
    assert sum(r["requests"] for r in tumbling) == len(events)

    text = "\n".join(lines)
    storm_alerts = [line for line in lines if line.startswith("alert:") and "throttle-rate" in line]
    assert len(storm_alerts) == 2, text  # OK -> ALARM, then ALARM -> OK
    assert "OK -> ALARM" in storm_alerts[0] and "ALARM -> OK" in storm_alerts[1], text
    assert "3 dead letters" in text
    assert (tmp_path / "tables" / "latency_1m").is_dir()

    # it ends with the HTML dashboard of this run: the storm's alert and every model
    (path,) = [line.split(": ", 1)[1].split(" (")[0] for line in lines if "HTML dashboard" in line]
    page = Path(path).read_text()
    assert 'data-series="throttle-rate ' in page and 'data-state="ALARM"' in page
    models = {r["model_id"] for r in tumbling}
    assert all(f'data-model="{m}"' in page for m in models)


def test_demo_through_kinesis_and_the_bridge(settings, tmp_path):
    """`make run SOURCE=kinesis`: the events go through moto's Kinesis and the bridge, and
    the analytics' per-minute counts match the generated events, as from Kafka."""
    lines: list[str] = []
    s = settings.replace(output={"tables_path": str(tmp_path / "tables")})
    rows = run_demo(s, minutes=2, rate_per_s=30, source="kinesis", out=lines.append)

    spec = generator.TrafficSpec(rate_per_s=30, count=2 * 60 * 30)
    events = list(generator.invocations(spec, spec.count))
    per_minute = Counter((e["event_time"] // 60_000, e["model_id"]) for e in events)
    tumbling = [
        r for r in rows if r["window"] == "1m" and r["app_id"] == "*" and r["model_id"] != "*"
    ]
    found = Counter({(minute(r["window_start"]), r["model_id"]): r["requests"] for r in tumbling})
    assert found == per_minute
    text = "\n".join(lines)
    assert "bridging " in text and "3 dead letters" in text, text


def minute(iso: str) -> int:
    """Minutes since the epoch of a window_start such as 2026-12-02T16:00:00Z."""
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()) // 60
