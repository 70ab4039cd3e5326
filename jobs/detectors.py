"""The window-level detector of jobs/anomalies/ for one key and one metric, in numpy: the
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
from numpy.lib.stride_tricks import sliding_window_view

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


def _trailing_quartiles(x: np.ndarray, width: int) -> np.ndarray:
    """Row t: (q1, median, q3, count) of the non-NaN values among x[t - width : t] (the rows
    before t); NaN quartiles where there is none."""
    n = len(x)
    out = np.full((n, 4), np.nan)
    out[:, 3] = 0
    full = width < n and not np.isnan(x).any()
    for t in range(1, width + 1 if full else n):
        v = x[max(0, t - width) : t]
        v = v[~np.isnan(v)]
        if len(v):
            out[t, :3] = np.percentile(v, [25, 50, 75])
            out[t, 3] = len(v)
    if full:  # every later row has a full window without NaN: one vectorised call
        windows = sliding_window_view(x[:-1], width)[1:]  # [j] = x[j + 1 : j + 1 + width]
        out[width + 1 :, :3] = np.percentile(windows, [25, 50, 75], axis=1).T
        out[width + 1 :, 3] = width
    return out


def deviations(
    times_ms: Sequence[int], values: Sequence[float], p: Params, floor: float, tail: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the deviation the detector judges (NaN without a baseline) and whether the
    row is warm. ``times_ms`` are window starts (the seasonal slot is their minute of day)."""
    x = np.asarray(values, dtype=float)
    relative = p.relative_floor * tail

    def sd(center: np.ndarray, spread: np.ndarray) -> np.ndarray:
        return np.maximum(np.maximum(spread, relative * np.abs(center)), floor)

    q = _trailing_quartiles(x, int(p.baseline_windows))
    warm = q[:, 3] >= p.warmup_windows
    with np.errstate(invalid="ignore"):
        dev = (x - q[:, 1]) / sd(q[:, 1], (q[:, 2] - q[:, 0]) / IQR_TO_SD)
        if p.seasonal_days:
            slots = (np.asarray(times_ms, dtype=np.int64) % DAY_MS) // MINUTE_MS
            sq = np.full((len(x), 4), np.nan)
            for slot in np.unique(slots):
                rows = np.flatnonzero(slots == slot)
                sq[rows] = _trailing_quartiles(x[rows], int(p.seasonal_days))
            s_dev = (x - sq[:, 1]) / sd(sq[:, 1], (sq[:, 2] - sq[:, 0]) / IQR_TO_SD)
            use = (
                (sq[:, 3] >= SEASONAL_MIN_DAYS)
                & ~np.isnan(dev)
                & ~np.isnan(s_dev)
                & ((np.abs(s_dev) <= np.abs(dev)) | (np.sign(s_dev) != np.sign(dev)))
            )
            dev = np.where(use, s_dev, dev)
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
