"""`genai-apm export cloudwatch`: the derived metric topics -> CloudWatch custom metrics.

What is published (namespace ``cloudwatch.namespace``), per row of a published window
(``cloudwatch.windows``, 1m: sliding windows would count each call several times):

  genai.metrics.latency
    Invocations, InvocationErrors, InputTokenCount, OutputTokenCount   Count, one value
    InvocationLatency, TimeToFirstToken                                 Milliseconds, Values/Counts
  genai.metrics.errors
    ClientErrors, ServerErrors, Throttles, Timeouts, ContentFilteredCalls,
    UnclassifiedErrors                                                  Count (zeros included)

with the dimensions of the row's key: {ModelId, AppId}, {ModelId} for the all-apps rollup,
none for the whole fleet. Per row of genai.metrics.cost (its tumbling spend window,
``cost.window_minutes``) by app ({AppId}) or model ({ModelId}): EstimatedCostUSD (None) and
UnpricedInvocations (Count). Per row of genai.metrics.anomalies, fleet-wide:
OpenAnomalyIncidents (Count) and AnomalyMaxScore (None). Per row of genai.metrics.slo
({SLO, Key}): ErrorBudgetRemaining (Percent) and BurnRate per {SLO, Key, Window}; per row of
genai.metrics.quota ({Provider, ModelId, Region}): QuotaUsePercent (Percent) and
QuotaMinutesToExhaustion (None, while a rising trend gives one). CloudWatch does not aggregate a
custom metric across dimension sets, so each rollup level is its own stream, fed by its own
row.

Latency and TTFT go as distributions, not as statistic sets: CloudWatch computes percentiles
only from values. They come from the row's log-bucketed histograms (jobs/latency.py): each
bucket becomes its representative value with its count, within the histogram's relative
error a of every call in it. A datum takes at most 150 distinct values; a row spanning more
buckets has them merged m at a time (m as small as fits) into buckets of gamma^m, whose
representative is within (gamma^m - 1) / (gamma^m + 1) ~ m a of every member: 2% for m = 2
with the default a = 1% (``merge_error``). CloudWatch's own percentiles over those values,
for any period and any statistic, are then as right as the histogram allows.

Delivery is at-least-once: the consumer group's offsets are committed only after every datum
of the records read so far was accepted by CloudWatch or written to the dead-letter topic.
A crash or restart in between sends those records again: CloudWatch then counts their
values twice for that minute (it has no idempotent puts). Throttling, 5xx and connection
errors are retried with exponential backoff and full jitter, ``cloudwatch.max_attempts``
times; a request CloudWatch refuses as invalid is split in halves until the datums at
fault are found. What cannot be delivered is counted and dead-lettered (topics.deadletter,
format ``cloudwatch``, the datum in ``event``) with the reason. Any other refusal (denied,
bad credentials) stops the exporter with nothing committed: no datum is at fault there.

``cloudwatch.output = "emf"`` writes Embedded Metric Format JSON lines to stdout instead, for
a CloudWatch agent or Lambda-style log shipping; EMF has no counts, so distributions are
expanded to repeated values, 100 per event.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from genai_apm.errors import GenaiApmError
from genai_apm.schemas.outputs import (
    ALL,
    BURN_WINDOWS,
    ERROR_OUTCOMES,
    burn_column,
    histogram_gamma,
)
from genai_apm.settings.config import CloudWatchSettings, Settings

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

RETRYABLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "ServiceUnavailable",
        "InternalFailure",
        "InternalServiceError",
        "InternalServiceFault",
    }
)
# refusals caused by the datums themselves; anything else (credentials, permissions) stops
# the exporter with its offsets uncommitted instead of dead-lettering every datum
DATUM_ERRORS = frozenset(
    {"InvalidParameterValue", "InvalidParameterCombination", "MissingParameter", "InvalidFormat"}
)


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


# ---- sending ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """The record a datum came from: what a dead letter carries."""

    topic: str
    partition: int
    offset: int
    payload: bytes

    @property
    def name(self) -> str:
        return f"{self.topic}/{self.partition}@{self.offset}"


@dataclass
class Pending:
    datum: dict
    source: Source


@dataclass
class Stats:
    records: int = 0
    datums: int = 0  # accepted by CloudWatch (or written as EMF)
    requests: int = 0  # PutMetricData calls that succeeded
    retries: int = 0
    # what the retried requests failed with (Throttling, 500, ConnectionError, ...), so a
    # throttled exporter says so instead of only looking slow
    retry_causes: Counter = field(default_factory=Counter)
    dead_letters: int = 0  # datums (or unreadable records) sent to the dead-letter topic
    reasons: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        causes = ", ".join(f"{n:,} x {c}" for c, n in self.retry_causes.most_common(3))
        text = (
            f"{self.records:,} records -> {self.datums:,} datums in {self.requests:,} requests"
            f" ({self.retries:,} retries{': ' + causes if causes else ''});"
            f" {self.dead_letters:,} dead-lettered"
        )
        if self.reasons:
            text += ": " + "; ".join(f"{n} x {r}" for r, n in self.reasons.most_common(5))
        return text


class RequestSizer:
    """The body size a PutMetricData request will have, measured with botocore's serializer
    for the protocol the client speaks (CBOR, JSON or query): a datum with 150 values takes
    about 3 KB in CBOR and several times that as a query string, so counting is not enough."""

    def __init__(self, client, namespace: str):
        from botocore.serialize import create_serializer

        model = client.meta.service_model
        protocol = getattr(model, "resolved_protocol", None) or model.protocol
        self._serializer = create_serializer(protocol, include_validation=False)
        self._operation = model.operation_model("PutMetricData")
        self._namespace = namespace
        self.base = self._size([])

    def _size(self, datums: list[dict]) -> int:
        from urllib.parse import urlencode

        request = self._serializer.serialize_to_request(
            {"Namespace": self._namespace, "MetricData": datums}, self._operation
        )
        body = request["body"]
        return len(urlencode(body)) if isinstance(body, dict) else len(body)

    def datum(self, datum: dict) -> int:
        return self._size([datum]) - self.base


def batches(
    pending: list[Pending],
    size: Callable[[dict], int],
    base: int = 0,
    max_datums: int = MAX_DATUMS,
    max_bytes: int = MAX_REQUEST_BYTES - REQUEST_HEADROOM,
) -> Iterable[list[Pending]]:
    """Consecutive runs of at most ``max_datums`` datums and ``max_bytes`` serialised."""
    batch: list[Pending] = []
    used = base
    for item in pending:
        n = size(item.datum)
        if batch and (len(batch) >= max_datums or used + n > max_bytes):
            yield batch
            batch, used = [], base
        batch.append(item)
        used += n
    if batch:
        yield batch


def retryable(error: Exception) -> bool:
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return code in RETRYABLE_CODES or status >= 500 or status == 429
    return isinstance(error, ConnectionError | HTTPClientError)


def retry_cause(error: Exception) -> str:
    """A retryable failure's short name: the error code, else the HTTP status or class."""
    from botocore.exceptions import ClientError

    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return code or f"HTTP {status}"
    return type(error).__name__


def datum_error(error: Exception) -> bool:
    """True when the request failed because of what it carried (client-side validation
    included), so splitting it finds the datums at fault."""
    from botocore.exceptions import ClientError, ParamValidationError

    if isinstance(error, ClientError):
        return error.response.get("Error", {}).get("Code", "") in DATUM_ERRORS
    return isinstance(error, ParamValidationError)


def _describe(error: Exception) -> str:
    from botocore.exceptions import ClientError

    if isinstance(error, ClientError):
        e = error.response.get("Error", {})
        return f"{e.get('Code', 'Error')}: {e.get('Message', '')}".strip()[:300]
    return f"{type(error).__name__}: {error}"[:300]


class PutMetricDataSender:
    """Sends datums in requests within the API's limits; returns what could not be sent."""

    def __init__(
        self,
        client,
        cw: CloudWatchSettings,
        stats: Stats,
        *,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
    ):
        self.client, self.cw, self.stats = client, cw, stats
        self.sizer = RequestSizer(client, cw.namespace)
        self.sleep, self.rng = sleep, rng

    def send(self, pending: list[Pending]) -> list[tuple[Pending, str]]:
        failed: list[tuple[Pending, str]] = []
        sizes = {id(p.datum): self.sizer.datum(p.datum) for p in pending}
        for batch in batches(pending, lambda d: sizes[id(d)], self.sizer.base):
            failed += self._put(batch)
        return failed

    def _put(self, batch: list[Pending]) -> list[tuple[Pending, str]]:
        for attempt in range(self.cw.max_attempts):
            try:
                self.client.put_metric_data(
                    Namespace=self.cw.namespace, MetricData=[p.datum for p in batch]
                )
            except Exception as e:
                if retryable(e):
                    if attempt + 1 < self.cw.max_attempts:
                        self.stats.retries += 1
                        self.stats.retry_causes[retry_cause(e)] += 1
                        cap = min(self.cw.backoff_max_s, self.cw.backoff_base_s * 2**attempt)
                        self.sleep(cap * self.rng())  # full jitter
                        continue
                    reason = f"gave up after {self.cw.max_attempts} attempts: {_describe(e)}"
                    return [(p, reason) for p in batch]
                if not datum_error(e):
                    raise GenaiApmError(f"CloudWatch PutMetricData: {_describe(e)}") from e
                if len(batch) == 1:
                    return [(batch[0], f"refused: {_describe(e)}")]
                # one bad datum must not sink a thousand good ones
                half = len(batch) // 2
                return self._put(batch[:half]) + self._put(batch[half:])
            self.stats.requests += 1
            self.stats.datums += len(batch)
            return []
        return []  # pragma: no cover - max_attempts < 1 is refused by the caller


class EmfSender:
    """Embedded Metric Format: one JSON object per line, for a log agent to turn into metrics."""

    def __init__(self, cw: CloudWatchSettings, stats: Stats, out: IO[str]):
        self.cw, self.stats, self.out = cw, stats, out

    def send(self, pending: list[Pending]) -> list[tuple[Pending, str]]:
        groups: dict[tuple, list[dict]] = {}
        for p in pending:
            d = p.datum
            key = (d["Timestamp"], tuple((x["Name"], x["Value"]) for x in d["Dimensions"]))
            groups.setdefault(key, []).append(d)
        for (stamp, dims), datums in groups.items():
            for event in self._events(stamp, dict(dims), datums):
                self.out.write(json.dumps(event, separators=(",", ":")) + "\n")
            self.stats.datums += len(datums)
        self.out.flush()
        return []

    def _events(self, stamp: dt.datetime, dims: dict[str, str], datums: list[dict]):
        # (metric, unit, resolution, values for this event) across as many events as needed
        chunks: list[list[tuple[dict, list[float]]]] = []
        for d in datums:
            if "Value" in d:
                values = [d["Value"]]
            else:
                values = [
                    v for v, c in zip(d["Values"], d["Counts"], strict=True) for _ in range(int(c))
                ]
            for i in range(0, len(values), EMF_MAX_VALUES):
                index = i // EMF_MAX_VALUES
                while len(chunks) <= index:
                    chunks.append([])
                chunks[index].append((d, values[i : i + EMF_MAX_VALUES]))
        for chunk in chunks:
            event: dict[str, Any] = {
                "_aws": {
                    "Timestamp": int(stamp.timestamp() * 1000),
                    "CloudWatchMetrics": [
                        {
                            "Namespace": self.cw.namespace,
                            "Dimensions": [list(dims)],
                            "Metrics": [
                                {
                                    "Name": d["MetricName"],
                                    "Unit": d["Unit"],
                                    "StorageResolution": d["StorageResolution"],
                                }
                                for d, _ in chunk
                            ],
                        }
                    ],
                },
                **dims,
            }
            for d, values in chunk:
                event[d["MetricName"]] = values[0] if len(values) == 1 else values
            yield event


# ---- the exporter loop ---------------------------------------------------------------------


class DeadLetters:
    """Undeliverable datums and unreadable records -> topics.deadletter, in the shape every
    job uses (jobs/deadletters.py), flushed before any offset is committed."""

    def __init__(self, settings: Settings, stats: Stats):
        from kafka import KafkaProducer

        from genai_apm.kafka.io import client_args

        self.topic, self.stats = settings.topics.deadletter, stats
        self.producer = KafkaProducer(**client_args(settings.kafka), acks="all")

    def send(self, source: Source, reason: str, datum: dict | None = None) -> None:
        record = {
            "payload": source.payload.decode("utf-8", errors="replace"),
            "payload_base64": base64.b64encode(source.payload).decode(),
            "event": json.dumps(datum, default=str) if datum is not None else None,
            "source": source.name,
            "format": "cloudwatch",
            "contract": None,
            "reason": reason,
            "rejected_at": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
        }
        self.producer.send(self.topic, json.dumps(record).encode())
        self.stats.dead_letters += 1
        self.stats.reasons[reason.split(":")[0]] += 1

    def flush(self) -> None:
        self.producer.flush(timeout=60)

    def close(self) -> None:
        self.producer.close(timeout=10)


def _topics(settings: Settings) -> dict[str, Translator]:
    return {getattr(settings.topics, name): fn for name, fn in TRANSLATORS.items()}


def export(
    settings: Settings,
    *,
    once: bool = False,
    client=None,
    out: IO[str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    flush_interval_s: float = 5.0,
    idle_timeout_s: float = 30.0,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> Stats:
    """Consume the metric topics and publish them until interrupted (or, with ``once``, until
    the end offsets seen at the start are reached and everything read is delivered)."""
    from kafka import KafkaConsumer

    from genai_apm import aws
    from genai_apm.kafka.io import client_args, kafka_errors

    cw = settings.cloudwatch  # its values were checked when the settings loaded
    stats = Stats()
    if cw.output == "api":
        # our retry policy replaces botocore's, so attempts and backoff are ours to count
        client = client or aws.client(
            settings.aws, "cloudwatch", retries={"total_max_attempts": 1, "mode": "standard"}
        )
        sender: PutMetricDataSender | EmfSender = PutMetricDataSender(
            client, cw, stats, sleep=sleep
        )
    else:
        sender = EmfSender(cw, stats, out or sys.stdout)
    translators = _topics(settings)
    max_age = dt.timedelta(hours=cw.max_age_hours)
    with kafka_errors(settings.kafka):
        consumer = KafkaConsumer(
            **client_args(settings.kafka),
            group_id=cw.consumer_group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )
        dead = DeadLetters(settings, stats)
        try:
            consumer.subscribe(list(translators))
            pending: list[Pending] = []
            unread = False  # records read whose offsets are not committed yet
            stop_at: dict | None = None  # with once: the end offsets when assigned
            last_flush = idle_since = time.monotonic()
            while True:
                polled = consumer.poll(timeout_ms=500, max_records=2000)
                for tp, records in polled.items():
                    translate = translators[tp.topic]
                    for r in records:
                        stats.records += 1
                        source = Source(tp.topic, tp.partition, r.offset, r.value or b"")
                        pending += _datums(source, translate, settings, dead, now(), max_age)
                        unread = True
                if polled:
                    idle_since = time.monotonic()
                due = time.monotonic() - last_flush >= flush_interval_s
                if unread and (len(pending) >= MAX_DATUMS or due or not polled):
                    for item, reason in sender.send(pending):
                        dead.send(item.source, reason, _printable(item.datum))
                    dead.flush()
                    consumer.commit()  # only now: everything read so far is delivered
                    pending, unread, last_flush = [], False, time.monotonic()
                if once:
                    if stop_at is None and consumer.assignment():
                        stop_at = consumer.end_offsets(list(consumer.assignment()))
                    if not unread and stop_at is not None and _reached(consumer, stop_at):
                        break
                    if time.monotonic() - idle_since > idle_timeout_s:
                        raise GenaiApmError(
                            f"nothing to read from {', '.join(translators)} for "
                            f"{idle_timeout_s:.0f} s (do the topics exist?)"
                        )
        finally:
            dead.close()
            consumer.close(autocommit=False)
    return stats


def _datums(
    source: Source,
    translate: Translator,
    settings: Settings,
    dead: DeadLetters,
    now: dt.datetime,
    max_age: dt.timedelta,
) -> list[Pending]:
    try:
        row = json.loads(source.payload)
        if not isinstance(row, dict):
            raise ValueError("not a JSON object")
        datums = translate(row, settings)
    except (ValueError, KeyError, TypeError) as e:
        dead.send(source, f"unreadable metric row: {type(e).__name__}: {e}")
        return []
    kept = []
    for datum in datums:
        found = problems(datum, now, max_age)
        if found:
            dead.send(source, "invalid datum: " + "; ".join(found), _printable(datum))
        else:
            kept.append(Pending(datum, source))
    return kept


def _printable(datum: dict) -> dict:
    return {k: v.isoformat() if isinstance(v, dt.datetime) else v for k, v in datum.items()}


def _reached(consumer, stop_at: dict) -> bool:
    return all(consumer.position(tp) >= offset for tp, offset in stop_at.items())
