"""What CloudWatch accepts: PutMetricData's limits and the check of one datum against them."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

# PutMetricData limits (AWS API reference)
MAX_DATUMS = 1000
MAX_REQUEST_BYTES = 1_000_000
# the serialised body is measured; the headroom covers what the measure leaves out
REQUEST_HEADROOM = 50_000
MAX_VALUES = 150
MAX_DIMENSIONS = 30
MAX_ABS_VALUE = 2.0**360
MAX_FUTURE = dt.timedelta(hours=2)
EMF_MAX_VALUES = 100


def problems(datum: Mapping[str, Any], now: dt.datetime, max_age: dt.timedelta) -> list[str]:
    """Why CloudWatch would refuse ``datum`` (empty: nothing known)."""
    found = []
    if not 1 <= len(datum.get("MetricName", "")) <= 255:
        found.append("MetricName must have 1 to 255 characters")
    dims = datum.get("Dimensions", [])
    if len(dims) > MAX_DIMENSIONS:
        found.append(f"more than {MAX_DIMENSIONS} dimensions")
    for d in dims:
        if not 1 <= len(d["Name"]) <= 255 or not 1 <= len(d["Value"]) <= 1024:
            found.append(f"dimension {d['Name']!r}: name or value of invalid length")

    def bad(x: float) -> bool:
        return not math.isfinite(x) or abs(x) > MAX_ABS_VALUE

    if "Value" in datum and bad(datum["Value"]):
        found.append(f"Value {datum['Value']!r} is not a finite number CloudWatch accepts")
    values, counts = datum.get("Values", []), datum.get("Counts", [])
    if len(values) > MAX_VALUES:
        found.append(f"{len(values)} values, more than {MAX_VALUES}")
    if len(values) != len(counts):
        found.append("Values and Counts differ in length")
    if any(bad(v) for v in values) or any(bad(c) or c <= 0 for c in counts):
        found.append("Values/Counts hold NaN, Inf, out-of-range or non-positive numbers")
    stamp = datum.get("Timestamp")
    if stamp is not None and max_age.total_seconds() > 0 and stamp < now - max_age:
        found.append(f"Timestamp {stamp.isoformat()} is older than {max_age} (CloudWatch refuses)")
    if stamp is not None and stamp > now + MAX_FUTURE:
        found.append(f"Timestamp {stamp.isoformat()} is more than {MAX_FUTURE} in the future")
    return found
