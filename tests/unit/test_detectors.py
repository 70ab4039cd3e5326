"""The detector's numpy twin (jobs/detectors.py), the NAB split and profiles, and the SQL of
the history bar. tests/integration/test_anomalies_twin.py holds the Flink job to the twin."""

from __future__ import annotations

import numpy as np
import pytest

from genai_apm.evaluation import scoring
from genai_apm.jobs import anomalies, detectors

STEP = 300_000


def _times(n: int) -> list[int]:
    return [i * STEP for i in range(n)]


def test_deviation_is_against_the_previous_windows_median_and_iqr():
    rng = np.random.default_rng(1)
    x = 100 + rng.normal(0, 2, 60)
    p = detectors.Params(baseline_windows=20, warmup_windows=10, relative_floor=0.0)
    dev, warm = detectors.deviations(_times(60), x, p, floor=0.1)
    for t in (10, 35, 59):
        q1, med, q3 = np.percentile(x[t - min(t, 20) : t], [25, 50, 75])
        assert dev[t] == pytest.approx((x[t] - med) / max((q3 - q1) / 1.349, 0.1))
    assert not warm[:10].any() and warm[10:].all()
    assert np.isnan(dev[0])


def test_the_history_bar_lets_only_the_most_unusual_window_through():
    rng = np.random.default_rng(2)
    x = 100 + rng.normal(0, 1, 200)
    x[100] += 30  # a spike
    x[150] += 20  # a smaller one later: not beyond the first
    x[180] += 45  # a bigger one
    p = detectors.Params(
        baseline_windows=40,
        warmup_windows=20,
        threshold=5.0,
        relative_floor=0.0,
        direction="both",
        open_after_windows=1,
        close_after_windows=1,
    )
    plain = detectors.detect(_times(200), x, p, floor=0.1)
    barred = detectors.detect(
        _times(200), x, detectors.Params(**{**vars(p), "history_windows": 100}), 0.1
    )
    assert {100, 150, 180} <= set(plain)
    assert 100 in barred and 180 in barred and 150 not in barred
    # and every barred opening is one of the plain ones
    assert set(barred) <= set(plain)


def test_a_run_of_hot_windows_opens_once_and_does_not_raise_its_own_bar():
    x = np.r_[np.full(50, 100.0) + np.tile([0.0, 1.0], 25), np.full(10, 160.0), np.full(40, 100.0)]
    p = detectors.Params(
        baseline_windows=20,
        warmup_windows=10,
        threshold=5.0,
        relative_floor=0.0,
        open_after_windows=2,
        close_after_windows=3,
        history_windows=30,
        direction="both",
    )
    # windows 50 and 51 are both hot (the second is not held to the first's deviation)
    assert detectors.detect(_times(100), x, p, floor=0.1) == [51]


def test_states_follow_the_sql_rules():
    hot = np.array([0, 1, 1, 0, 1, 1, 1, 0, 0, 0, 0, 1], dtype=bool)
    p = detectors.Params(open_after_windows=2, close_after_windows=2)
    alarm = detectors.states(hot, p)
    # sustained at 2, 5, 6; ALARM while one of the last 2 windows was sustained
    assert alarm.tolist() == [0, 0, 1, 1, 0, 1, 1, 1, 0, 0, 0, 0]
    assert detectors.opens(alarm).tolist() == [2, 5]


def test_nab_split_is_fixed_and_disjoint():
    names = [f"realAWSCloudwatch/s{i}.csv" for i in (3, 1, 2, 0)] + ["artificialX/a.csv"]
    chosen, held_out = scoring.nab_split(names)
    assert chosen == ["artificialX/a.csv", "realAWSCloudwatch/s0.csv", "realAWSCloudwatch/s2.csv"]
    assert held_out == ["realAWSCloudwatch/s1.csv", "realAWSCloudwatch/s3.csv"]


def test_nab_profiles_weigh_misses_and_false_detections():
    series = {"g/a.csv": [(i, 0.0) for i in range(0, 1000, 10)]}
    windows = {"g/a.csv": [(400, 500), (700, 800)]}
    # one window found at its start, one missed, one false detection before any window
    files = scoring.nab_files(series, windows, {"g/a.csv": [200, 400]})
    f = files["g/a.csv"]["profiles"]
    hit = scoring.scaled_sigmoid(-1.0)
    assert f["standard"]["raw"] == pytest.approx(hit - 0.11 - 1.0)
    assert f["reward_low_FP_rate"]["raw"] == pytest.approx(hit - 0.22 - 1.0)
    assert f["reward_low_FN_rate"]["raw"] == pytest.approx(hit - 0.11 - 2.0)
    s = scoring.nab_summary(files)
    # normalised: (raw - null) / (perfect - null), null = -fn x windows
    assert s["nab_score_reward_low_FN_rate"] == pytest.approx(
        100 * (hit - 0.11 - 2.0 + 4.0) / (2 * hit + 4.0)
    )


def test_history_bar_sql_lags_by_the_open_run(base_settings):
    a = base_settings.replace(anomalies={"history_windows": 60, "open_after_windows": 3}).anomalies
    sql = anomalies.history_sql("src", a)
    assert "ROWS BETWEEN 59 PRECEDING AND CURRENT ROW" in sql
    assert "LAG(latency_p50_ms_hmax, 3)" in sql
    flags = anomalies.evaluation._flags_sql("src", a)
    assert "GREATEST(COALESCE(latency_p50_ms_bar, 0.0), 0.0)" in flags
    assert "_bar" not in anomalies.evaluation._flags_sql("src", base_settings.anomalies)


def _kinds() -> dict[str, tuple[np.ndarray, bool]]:
    """Shapes of anomaly at point START_AT of a week of 5-minute points (noise 2% of the
    level), and whether the NAB settings should catch them within a day."""
    rng = np.random.default_rng(3)
    t = np.arange(KIND_POINTS)
    base = 1000 + rng.normal(0, 20, KIND_POINTS)
    cycle = 1000 + 300 * np.sin(2 * np.pi * t / 288) + rng.normal(0, 20, KIND_POINTS)
    after, day = t >= START_AT, (t >= START_AT) & (t < START_AT + 288)
    return {
        "level shift +40%": (base + 400 * after, True),
        "level shift -40%": (base - 400 * after, True),
        "spike x1.5": (base + 500 * (t == START_AT), True),
        "dip x0.5": (base - 500 * (t == START_AT), True),
        "flat day in a daily cycle": (np.where(day, base, cycle), True),
        # below the relative floor (0.1 x level, threshold 3): a 20% change never counts
        "level shift +20%": (base + 200 * after, False),
        "spike x1.2": (base + 200 * (t == START_AT), False),
        # the trailing baseline follows a drift; the bar is the key's own noise
        "drift +50% over a day": (base + np.clip(t - START_AT, 0, 288) / 288 * 500, False),
        # the cycle doubles: the seasonal and trailing deviations both stay under 3
        "daily cycle twice as deep": (
            np.where(day, 1000 + 600 * np.sin(2 * np.pi * t / 288), cycle),
            False,
        ),
        "noise only": (base, False),
        "daily cycle only": (cycle, False),
    }


KIND_POINTS, START_AT = 2600, 2000


@pytest.mark.parametrize("kind", list(_kinds()))
def test_what_kinds_of_anomaly_the_nab_settings_catch(kind):
    x, caught = _kinds()[kind]
    settings = scoring.NAB_SETTINGS | scoring.NAB_ADAPTIVE
    p = detectors.Params(
        **{k: v for k, v in settings.items() if k in detectors.Params.__dataclass_fields__}
    )
    opened = detectors.detect(_times(KIND_POINTS), x, p, floor=10.0)
    assert [i for i in opened if i < START_AT] == []  # no false alarm before it
    assert any(START_AT <= i < START_AT + 288 for i in opened) == caught, opened
