"""The anomaly job and its numpy twin (jobs/detectors.py) open the same incidents: one bounded
Flink run over a few NAB-style series (one value every 5 minutes per app: a level shift, a
spike, a slow drift and a daily cycle with a broken day), its per-window metrics fed to the
twin, the twin's openings compared with the job's, window by window. The evaluation tunes
the NAB settings on the twin, so this is what makes its numbers the job's numbers."""

from __future__ import annotations

import dataclasses
import json
from functools import partial

import numpy as np
import pytest

from genai_apm import scoring
from genai_apm.jobs import anomalies, detectors, runner
from genai_apm.settings import config

pytestmark = pytest.mark.integration

START = 1_767_225_600_000  # 2026-01-01T00:00:00Z
STEP = 5 * 60_000
POINTS = 3 * 288  # three days of 5-minute points


def _series() -> dict[str, list[tuple[int, float]]]:
    rng = np.random.default_rng(7)
    t = np.arange(POINTS)
    day = 100 + 40 * np.sin(2 * np.pi * t / 288)
    shapes = {
        "level": 100 + rng.normal(0, 3, POINTS) + np.where(t >= 500, 40, 0),
        "spike": 100 + rng.normal(0, 5, POINTS) + np.where(np.isin(t, (420, 700)), 80, 0),
        "drift": 100 + rng.normal(0, 2, POINTS) + np.clip(t - 450, 0, None) * 0.3,
        # the third day flat where the cycle should peak: a seasonality break
        "season": day + rng.normal(0, 1, POINTS) - np.where((t >= 620) & (t < 680), 40, 0),
    }
    return {
        f"synthetic/{name}.csv": [(START + i * STEP, float(v)) for i, v in enumerate(values)]
        for name, values in shapes.items()
    }


def _read(directory) -> list[dict]:
    return [
        json.loads(line)
        for p in sorted(directory.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
        for line in p.read_text().splitlines()
        if line.strip()
    ]


def test_job_opens_what_the_twin_opens(tmp_path):
    adaptive = scoring.NAB_SETTINGS | {
        "baseline_windows": 96,
        "warmup_windows": 24,
        "history_windows": 200,
        "threshold": 3.0,
        "open_after_windows": 1,
        "close_after_windows": 12,
        "seasonal_days": 2,
    }
    s = config.load(path=None, environ={}).replace(
        flink={"watermark_emit": "on-event", "parallelism": 1}, anomalies=adaptive
    )
    series = _series()
    events = scoring.nab_events(series)
    (tmp_path / "input").mkdir()
    with open(tmp_path / "input" / "events.jsonl", "w") as f:
        f.writelines(json.dumps(e) + "\n" for e in events)
    runner.Job(anomalies.JOB, (partial(anomalies.assemble, windows=True),)).backfill(
        s, input_path=str(tmp_path / "input"), output_path=str(tmp_path / "out")
    )
    assert _read(tmp_path / "out" / "deadletters") == []
    windows = _read(tmp_path / "out" / "anomaly_windows")
    opened = [r for r in _read(tmp_path / "out" / "anomaly_events") if r["event"] == "open"]

    floor = next(m.floor for m in anomalies.METRICS if m.name == "latency_p50_ms")
    p = detectors.Params.of(s.anomalies)
    without_bar = detectors.Params.of(dataclasses.replace(s.anomalies, history_windows=0))
    total, suppressed = 0, 0
    for name in series:
        app = name.split("/")[1].removesuffix(".csv")
        rows = sorted(
            (scoring.epoch_ms(r["window_start"]), r["latency_p50_ms"])
            for r in windows
            if (r["dimension"], r["key"]) == ("app", app)
        )
        assert len(rows) == POINTS, app
        starts = [t for t, _ in rows]
        values = [np.nan if v is None else v for _, v in rows]
        want = [starts[i] + STEP for i in detectors.detect(starts, values, p, floor)]
        got = sorted(
            scoring.epoch_ms(r["alert_time"])
            for r in opened
            if (r["dimension"], r["key"]) == ("app", app)
        )
        assert got == want, app
        total += len(want)
        dev, warm = detectors.deviations(starts, values, p, floor)
        barred = detectors.hot_windows(dev, warm, p).sum()
        suppressed += detectors.hot_windows(dev, warm, without_bar).sum() - barred
    # not vacuous: incidents open, and the history bar holds some hot windows back
    assert total >= len(series)
    assert suppressed > 0
