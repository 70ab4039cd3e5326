"""Rows of the derived metric topics -> CloudWatch datums: one translator per topic, the metric
names they publish (read by genai_apm.deploy.aws_templates for alarms, dashboard and IAM), and
the histogram -> Values/Counts conversion of the latency distributions."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from genai_apm.export.cloudwatch.checks import MAX_VALUES
from genai_apm.schemas.outputs import (
    ALL,
    BURN_WINDOWS,
    ERROR_OUTCOMES,
    burn_column,
    histogram_gamma,
)
from genai_apm.settings.config import Settings

# ---- histograms -> Values/Counts -------------------------------------------------------


def merge_error(gamma: float, factor: int) -> float:
    """Worst relative error of a representative after merging ``factor`` adjacent buckets."""
    g = gamma**factor
    return (g - 1) / (g + 1)


def distribution(
    hist: Mapping[str, int] | None, gamma: float, max_values: int = MAX_VALUES
) -> tuple[list[float], list[float], int]:
    """(values, counts, merge factor) for a histogram of bucket index -> count.

    Bucket i holds (gamma^(i-1), gamma^i]; merging m buckets maps i to ceil(i / m), a bucket
    of gamma^m, so the same merge of the same data always gives the same values."""
    buckets: Counter[int] = Counter()
    for key, count in (hist or {}).items():
        if count and count > 0:
            buckets[int(key)] += int(count)
    if not buckets:
        return [], [], 1
    factor = 1
    while len({-(-i // factor) for i in buckets}) > max_values:
        factor += 1
    merged: Counter[int] = Counter()
    for i, count in buckets.items():
        merged[-(-i // factor)] += count
    g = gamma**factor
    values = [2 * g**j / (g + 1) for j in sorted(merged)]
    counts = [float(merged[j]) for j in sorted(merged)]
    return values, counts, factor


# ---- rows -> datums ---------------------------------------------------------------------


def _dimensions(row: Mapping[str, Any]) -> list[dict[str, str]]:
    dims = []
    for name, column in LATENCY_DIMENSIONS:
        value = row.get(column)
        if value not in (None, "", ALL):
            dims.append({"Name": name, "Value": str(value)})
    return dims


def _timestamp(value) -> dt.datetime:
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(value / 1000, tz=dt.UTC)
    parsed = dt.datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _base(row: Mapping[str, Any], dimensions: list[dict], settings: Settings) -> dict:
    return {
        "Dimensions": dimensions,
        "Timestamp": _timestamp(row["window_start"]),
        "StorageResolution": 1 if settings.cloudwatch.high_resolution else 60,
    }


def _scalars(row: Mapping[str, Any], base: dict, metrics) -> list[dict]:
    """One single-value datum per (metric, column, unit) whose column the row has."""
    return [
        {"MetricName": name, **base, "Value": float(row[column]), "Unit": unit}
        for name, column, unit in metrics
        if row.get(column) is not None
    ]


# what a genai.metrics.latency row becomes: (metric, column, unit); the distributions are
# sent as Values/Counts from the row's histograms. Read by genai_apm.deploy.aws_templates for the
# alarms and the dashboard, so the templates name exactly what is published.
LATENCY_SCALARS = (
    ("Invocations", "requests", "Count"),
    ("InvocationErrors", "errors", "Count"),
    ("InputTokenCount", "input_tokens_sum", "Count"),
    ("OutputTokenCount", "output_tokens_sum", "Count"),
)
LATENCY_DISTRIBUTIONS = (
    ("InvocationLatency", "latency_hist", "Milliseconds"),
    ("TimeToFirstToken", "ttft_hist", "Milliseconds"),
)
# the most specific dimension set of a latency datum (model x app), (name, row column);
# rollup rows ('*') drop dimensions from the end
LATENCY_DIMENSIONS = (("ModelId", "model_id"), ("AppId", "app_id"))


def latency_metric_units() -> dict[str, str]:
    """Every metric a latency row can become -> its CloudWatch unit."""
    return {name: unit for name, _, unit in (*LATENCY_SCALARS, *LATENCY_DISTRIBUTIONS)}


def latency_datums(row: Mapping[str, Any], settings: Settings) -> list[dict]:
    """The datums of one genai.metrics.latency row (empty for windows not published)."""
    if row.get("window") not in settings.cloudwatch.windows:
        return []
    base = _base(row, _dimensions(row), settings)
    datums = _scalars(row, base, LATENCY_SCALARS)
    gamma = histogram_gamma(settings.latency.histogram_relative_error)
    for name, column, unit in LATENCY_DISTRIBUTIONS:
        values, counts, _ = distribution(row.get(column), gamma)
        if values:
            datums.append(
                {"MetricName": name, **base, "Values": values, "Counts": counts, "Unit": unit}
            )
    return datums


OPEN_INCIDENTS = "OpenAnomalyIncidents"
ANOMALY_SCORE = "AnomalyMaxScore"


def anomaly_count_datums(row: Mapping[str, Any], settings: Settings) -> list[dict]:
    """The datums of one genai.metrics.anomalies row: how many anomaly incidents are open in
    the window (a gauge to alarm on) and the largest score, fleet-wide (no dimensions)."""
    metrics = ((OPEN_INCIDENTS, "open_incidents", "Count"), (ANOMALY_SCORE, "max_score", "None"))
    return _scalars(row, _base(row, [], settings), metrics)


# outcome (schemas/outputs.py ERROR_OUTCOMES) -> the metric counting it; successes and the
# total are the latency rows' Invocations (and InvocationErrors), not sent twice
ERROR_METRICS = {
    "client": "ClientErrors",
    "server": "ServerErrors",
    "throttle": "Throttles",
    "timeout": "Timeouts",
    "content_filtered": "ContentFilteredCalls",
    "unclassified": "UnclassifiedErrors",
}


def error_datums(row: Mapping[str, Any], settings: Settings) -> list[dict]:
    """The datums of one genai.metrics.errors row: a count per error type, zeros included (an
    alarm on throttles must see a quiet minute as 0, not as missing data)."""
    if row.get("window") not in settings.cloudwatch.windows:
        return []
    metrics = [
        (ERROR_METRICS[o], column, "Count") for o, column, _ in ERROR_OUTCOMES if o in ERROR_METRICS
    ]
    return _scalars(row, _base(row, _dimensions(row), settings), metrics)


ESTIMATED_COST = "EstimatedCostUSD"
UNPRICED = "UnpricedInvocations"
# cost dimension of jobs/cost.py -> CloudWatch dimension; users, sessions and features are
# left to the Parquet table and Athena (a metric per user would cost more than it tells)
COST_DIMENSIONS = {"app": "AppId", "model": "ModelId"}


def cost_datums(row: Mapping[str, Any], settings: Settings) -> list[dict]:
    """The datums of one genai.metrics.cost row (one tumbling spend window, cost.window_minutes)
    per app or per model: the estimated spend in USD and the calls no price covered."""
    name = COST_DIMENSIONS.get(row.get("dimension"))
    if name is None:
        return []
    base = _base(row, [{"Name": name, "Value": str(row["key"])}], settings)
    metrics = ((ESTIMATED_COST, "cost_usd", "None"), (UNPRICED, "unpriced_requests", "Count"))
    return _scalars(row, base, metrics)


ERROR_BUDGET_REMAINING = "ErrorBudgetRemaining"
BURN_RATE = "BurnRate"
QUOTA_USE = "QuotaUsePercent"
QUOTA_EXHAUSTION = "QuotaMinutesToExhaustion"


def slo_datums(row: Mapping[str, Any], settings: Settings) -> list[dict]:
    """The datums of one genai.metrics.slo row (an SLO, its key, a minute): the error budget
    left over the compliance period (Percent; negative once overspent) and the burn rate per
    window (dimension Window: 5m ... 3d), the series the SLO alarms watch."""
    dims = [{"Name": "SLO", "Value": str(row["slo"])}, {"Name": "Key", "Value": str(row["key"])}]
    base = _base(row, dims, settings)
    datums = _scalars(row, base, ((ERROR_BUDGET_REMAINING, "budget_remaining_pct", "Percent"),))
    for window in BURN_WINDOWS:
        window_base = _base(row, [*dims, {"Name": "Window", "Value": window}], settings)
        datums += _scalars(row, window_base, ((BURN_RATE, burn_column(window), "None"),))
    return datums


def quota_datums(row: Mapping[str, Any], settings: Settings) -> list[dict]:
    """The datums of one genai.metrics.quota row: use of the quota (Percent of the binding one
    of tokens and requests per minute) and the forecast minutes until it runs out."""
    dims = [
        {"Name": "Provider", "Value": str(row["provider"])},
        {"Name": "ModelId", "Value": str(row["model_id"])},
        {"Name": "Region", "Value": str(row["region"])},
    ]
    metrics = (
        (QUOTA_USE, "use_pct", "Percent"),
        (QUOTA_EXHAUSTION, "minutes_to_exhaustion", "None"),
    )
    return _scalars(row, _base(row, dims, settings), metrics)


# topics.<name> -> translator: another derived topic is one entry here
Translator = Callable[[Mapping[str, Any], Settings], list[dict]]
TRANSLATORS: dict[str, Translator] = {
    "latency": latency_datums,
    "errors": error_datums,
    "cost": cost_datums,
    "anomaly_counts": anomaly_count_datums,
    "slo": slo_datums,
    "quota": quota_datums,
}


def topic_translators(settings: Settings) -> dict[str, Translator]:
    """The topic names of these settings -> their translator."""
    return {getattr(settings.topics, name): fn for name, fn in TRANSLATORS.items()}
