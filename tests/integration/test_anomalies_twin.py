"""The anomaly job and its numpy twin (jobs/detectors.py) open the same incidents, through the
evaluation's own path: a folder in NAB's layout of a few synthetic series (one value every 5
minutes per app: a level shift, two spikes, a slow drift and a daily cycle with a broken day),
run by ``scoring.nab_openings`` (one bounded job, the adaptive and robust detectors side by
side, each with its NAB settings) and compared, window by window, with the twin fed the way
bench/nab_tuning.py feeds it (``scoring.nab_window_values``) with the settings
``scoring.nab_settings`` declares. The evaluation tunes the NAB settings on the twin, so this is
what makes its numbers the job's numbers.

The series are longer than the adaptive bar (``history_windows``, L) by several hundred
windows, and the second spike comes L + 150 windows after the first: a job whose bar reaches
further back than L (the adaptive preset's 1440 once overrode NAB's 1000) holds it back where
the twin opens an incident."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest

from genai_apm.evaluation import scoring
from genai_apm.jobs import anomalies, detectors

pytestmark = pytest.mark.integration

START = 1_767_225_600_000  # 2026-01-01T00:00:00Z
STEP = 5 * 60_000
L = scoring.nab_settings("adaptive")["history_windows"]
FIRST_SPIKE = 420
SECOND_SPIKE = FIRST_SPIKE + L + 150  # beyond the bar of L windows, within one of 1.44 L
POINTS = SECOND_SPIKE + 400


def _series() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    t = np.arange(POINTS)
    day = 100 + 40 * np.sin(2 * np.pi * t / 288)
    return {
        "level": 100 + rng.normal(0, 3, POINTS) + np.where(t >= 700, 80, 0),
        "spike": 100
        + rng.normal(0, 3, POINTS)
        + np.where(t == FIRST_SPIKE, 150, 0)
        + np.where(t == SECOND_SPIKE, 80, 0),
        "drift": 100 + rng.normal(0, 2, POINTS) + np.clip(t - 450, 0, None) * 0.1,
        # a day flat where the cycle should peak: a seasonality break
        "season": day + rng.normal(0, 1, POINTS) - np.where((t >= 1340) & (t < 1400), 70, 0),
    }


def _write_nab(root, shapes: dict[str, np.ndarray]) -> None:
    (root / "data" / "synthetic").mkdir(parents=True)
    for name, values in shapes.items():
        lines = ["timestamp,value"] + [
            f"{dt.datetime.fromtimestamp((START + i * STEP) / 1000, dt.UTC):%Y-%m-%d %H:%M:%S},"
            f"{v:.6f}"
            for i, v in enumerate(values)
        ]
        (root / "data" / "synthetic" / f"{name}.csv").write_text("\n".join(lines) + "\n")
    (root / scoring.NAB_MARKER).write_text(json.dumps({}))


def test_job_opens_what_the_twin_opens(tmp_path):
    _write_nab(tmp_path / "nab", _series())
    detector_names = ("adaptive", "robust")
    series, _, opened, by_detector, _, _ = scoring.nab_openings(
        tmp_path / "work", tmp_path / "nab", detector_names
    )
    values = scoring.nab_window_values(series)
    floor = next(m.floor for m in anomalies.METRICS if m.name == "latency_p50_ms")
    fields = detectors.Params.__dataclass_fields__
    total, suppressed = 0, 0
    for d in detector_names:
        # what the settings say, not what the job was handed: the two once differed
        declared = {k: v for k, v in scoring.nab_settings(d).items() if k in fields}
        p = detectors.Params(**declared)
        for name, (starts, x) in values.items():
            assert len(starts) == POINTS
            want = [int(starts[i]) + STEP for i in detectors.detect(starts, x, p, floor)]
            assert opened[d][name] == want, (d, name, opened[d][name], want)
            total += len(want)
        assert by_detector[d].anomalies.history_windows == p.history_windows
    # not vacuous: incidents open, the bar holds some hot windows back, and a bar longer than
    # L (the adaptive preset's 1440) would open something else on the spike series
    p = detectors.Params(
        **{k: v for k, v in scoring.nab_settings("adaptive").items() if k in fields}
    )
    for starts, x in values.values():
        dev, warm = detectors.deviations(starts, x, p, floor)
        no_bar = detectors.Params(**(vars(p) | {"history_windows": 0}))
        suppressed += (
            detectors.hot_windows(dev, warm, no_bar).sum()
            - detectors.hot_windows(dev, warm, p).sum()
        )
    assert total >= len(values)
    assert suppressed > 0
    starts, x = values["synthetic/spike.csv"]
    longer = detectors.Params(**(vars(p) | {"history_windows": int(1.44 * L)}))
    assert detectors.detect(starts, x, p, floor) != detectors.detect(starts, x, longer, floor)
