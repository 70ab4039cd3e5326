"""The window-level detector of jobs/anomalies.py for one key and one metric, in numpy: the
offline twin the evaluation tunes on (seconds per run instead of a Flink job per setting) and
the tests hold the Flink job against.

Per window t of a key (rows in event-time order, one per window with a value):

    center, spread = median and IQR / 1.349 of the key's previous ``baseline_windows`` values
    sd             = max(spread, relative_floor * tail * |center|, the metric's floor)
    dev            = (x - center) / sd
    (with ``seasonal_days``: the same from the same time-of-day slot of the previous days,
     used when it has >= 2 values and deviates less, or the other way)
    size           = |dev| (direction both) or dev (up)
    hot            = warm (>= warmup_windows baseline values) and size >= threshold
                     and, with ``history_windows`` = L > 0, size > the largest size of the
                     key's L warm windows before the last ``open_after_windows``: an anomaly
                     must be more unusual than anything the key did in that span (the key's
                     own noise sets the bar)
    sustained      = the last ``open_after_windows`` windows were all hot
    ALARM          = one of the last ``close_after_windows`` windows was sustained
    open           = ALARM now and not in the previous window

Quartiles interpolate linearly between ranks, as Flink's PERCENTILE and numpy's default do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

IQR_TO_SD = 1.349
SEASONAL_MIN_DAYS = 2
DAY_MS = 24 * 60 * 60 * 1000
MINUTE_MS = 60 * 1000


@dataclass(frozen=True)
class Params:
    """The settings the detector reads (a subset of config.AnomalySettings)."""

    baseline_windows: int = 15
    warmup_windows: int = 8
    threshold: float = 5.0
    open_after_windows: int = 2
    close_after_windows: int = 2
    relative_floor: float = 0.25
    seasonal_days: int = 0
    direction: str = "up"
    history_windows: int = 0

    @classmethod
    def of(cls, settings) -> Params:
        return cls(**{f: getattr(settings, f) for f in cls.__dataclass_fields__})


def _quartiles(values: np.ndarray) -> tuple[float, float, float, int]:
    v = values[~np.isnan(values)]
    if not len(v):
        return np.nan, np.nan, np.nan, 0
    q1, q2, q3 = np.percentile(v, [25, 50, 75])
    return float(q1), float(q2), float(q3), len(v)


def deviations(
    times_ms: Sequence[int], values: Sequence[float], p: Params, floor: float, tail: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the deviation the detector judges (NaN without a baseline) and whether the
    row is warm. ``times_ms`` are window starts (the seasonal slot is their minute of day)."""
    x = np.asarray(values, dtype=float)
    n, big_n = len(x), int(p.baseline_windows)
    dev = np.full(n, np.nan)
    warm = np.zeros(n, dtype=bool)
    relative = p.relative_floor * tail

    def sd(center: float, spread: float) -> float:
        return max(spread, relative * abs(center), floor)

    slots: dict[int, list[int]] = {}
    for t in range(n):
        if t >= 1:
            q1, med, q3, count = _quartiles(x[max(0, t - big_n) : t])
            warm[t] = count >= p.warmup_windows
            if count and not np.isnan(x[t]):
                t_sd = sd(med, (q3 - q1) / IQR_TO_SD)
                dev[t] = (x[t] - med) / t_sd
        if p.seasonal_days:
            slot = (int(times_ms[t]) % DAY_MS) // MINUTE_MS
            previous = slots.setdefault(slot, [])
            history = x[previous[-int(p.seasonal_days) :]] if previous else np.array([])
            q1, med, q3, count = _quartiles(history)
            if count >= SEASONAL_MIN_DAYS and not np.isnan(x[t]) and not np.isnan(dev[t]):
                s_dev = (x[t] - med) / sd(med, (q3 - q1) / IQR_TO_SD)
                if abs(s_dev) <= abs(dev[t]) or np.sign(s_dev) != np.sign(dev[t]):
                    dev[t] = s_dev
            previous.append(t)
    return dev, warm


def size(dev: np.ndarray, direction: str) -> np.ndarray:
    return np.abs(dev) if direction == "both" else dev


def hot_windows(dev: np.ndarray, warm: np.ndarray, p: Params) -> np.ndarray:
    s = size(dev, p.direction)
    valid = warm & ~np.isnan(s)
    hot = valid & (np.nan_to_num(s, nan=-np.inf) >= p.threshold)
    if p.history_windows:
        # the L windows before the run of n that opens an incident (n - 1 earlier windows
        # must be hot with this one: they do not raise its bar)
        big_l, n = int(p.history_windows), int(p.open_after_windows)
        scores = np.where(valid, s, -np.inf)
        for t in np.flatnonzero(hot):
            before = scores[max(0, t - n - big_l + 1) : max(0, t - n + 1)]
            if len(before) and s[t] <= max(before.max(), 0.0):
                hot[t] = False
    return hot


def states(hot: np.ndarray, p: Params) -> np.ndarray:
    """ALARM (True) per row, from the hot rows: the SQL's sustained / close_after windows."""
    n, k = int(p.open_after_windows), int(p.close_after_windows)
    h = hot.astype(int)
    run = np.convolve(h, np.ones(n, dtype=int), "full")[: len(h)]
    sustained = run == n
    sustained[: n - 1] = False
    recent = np.convolve(sustained.astype(int), np.ones(k, dtype=int), "full")[: len(h)]
    return recent > 0


def opens(alarm: np.ndarray) -> np.ndarray:
    """Row indices where an incident opens."""
    previous = np.concatenate([[False], alarm[:-1]])
    return np.flatnonzero(alarm & ~previous)


def detect(
    times_ms: Sequence[int], values: Sequence[float], p: Params, floor: float, tail: float = 1.0
) -> list[int]:
    """The rows (indices) where the job opens an incident on this metric alone."""
    dev, warm = deviations(times_ms, values, p, floor, tail)
    return [int(i) for i in opens(states(hot_windows(dev, warm, p), p))]
