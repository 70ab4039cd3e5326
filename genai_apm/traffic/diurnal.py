"""Arrival times of a Poisson process whose rate follows the hour of day (UTC).

DIURNAL_CURVE is the rate multiplier for each UTC hour, normalised to average 1 over the day
so ``rate_per_s`` stays the daily mean. Its shape is a global business-day load seen from
UTC: a trough of about 0.4x around 03:00-05:00 (night in Europe and the Americas), a rise
through the European morning, a peak of about 1.6x at 14:00-16:00 when Europe's afternoon
overlaps the Americas' morning, and a slow decline through the American afternoon. The
multiplier is constant within each hour.

Arrivals are drawn by time warping: a unit-rate process in "work time" W(t) = integral of the
multiplier, mapped back to wall time through the piecewise-linear inverse of W. Exact, and
vectorised, so diurnal traffic costs no more than flat traffic.
"""

from __future__ import annotations

import numpy as np

DAY_S = 86_400.0
_RAW = (
    0.75, 0.60, 0.50, 0.42, 0.38, 0.40, 0.50, 0.65, 0.85, 1.05, 1.20, 1.30,
    1.35, 1.45, 1.55, 1.60, 1.55, 1.45, 1.30, 1.15, 1.05, 0.95, 0.90, 0.85,
)  # fmt: skip
DIURNAL_CURVE: tuple[float, ...] = tuple(float(v) for v in np.array(_RAW) / np.mean(_RAW))

_HOUR_KNOTS = np.arange(25) * 3600.0  # wall seconds since midnight
_WORK_KNOTS = np.concatenate(([0.0], np.cumsum(np.array(DIURNAL_CURVE) * 3600.0)))
_WORK_KNOTS[-1] = DAY_S  # the curve averages 1: a day of work time is a day


def _to_work(seconds_of_day: float) -> float:
    day, rest = divmod(seconds_of_day, DAY_S)
    return day * DAY_S + float(np.interp(rest, _HOUR_KNOTS, _WORK_KNOTS))


def _to_wall(work: np.ndarray) -> np.ndarray:
    day, rest = np.divmod(work, DAY_S)
    return day * DAY_S + np.interp(rest, _WORK_KNOTS, _HOUR_KNOTS)


class Arrivals:
    """Successive batches of arrival times (epoch ms, float) from ``start_ms`` on."""

    def __init__(self, start_ms: int, rate_per_s: float, diurnal: bool):
        if rate_per_s <= 0:
            raise ValueError("rate_per_s must be positive")
        self._midnight_ms = start_ms - start_ms % 86_400_000
        self._rate = rate_per_s
        self._diurnal = diurnal
        offset_s = (start_ms - self._midnight_ms) / 1000
        self._work = _to_work(offset_s) if diurnal else offset_s

    def next(self, rng: np.random.Generator, n: int) -> np.ndarray:
        work = self._work + np.cumsum(rng.exponential(1.0 / self._rate, n))
        self._work = float(work[-1]) if n else self._work
        seconds = _to_wall(work) if self._diurnal else work
        return self._midnight_ms + seconds * 1000.0
