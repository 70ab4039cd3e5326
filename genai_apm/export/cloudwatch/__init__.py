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

One module per seam: datums (rows -> datums per topic, the metric names, histograms ->
Values/Counts), checks (CloudWatch's limits, what it would refuse), pending and stats (what
travels and what is counted), batching (requests within the limits), senders (PutMetricData
with retries, EMF), deadletters, exporter (the consume, send, commit loop).
"""

from __future__ import annotations

from genai_apm.export.cloudwatch.batching import (
    RequestSizer,
    batches,
)
from genai_apm.export.cloudwatch.checks import (
    EMF_MAX_VALUES,
    MAX_ABS_VALUE,
    MAX_DATUMS,
    MAX_DIMENSIONS,
    MAX_FUTURE,
    MAX_REQUEST_BYTES,
    MAX_VALUES,
    REQUEST_HEADROOM,
    problems,
)
from genai_apm.export.cloudwatch.datums import (
    ANOMALY_SCORE,
    BURN_RATE,
    COST_DIMENSIONS,
    ERROR_BUDGET_REMAINING,
    ERROR_METRICS,
    ESTIMATED_COST,
    LATENCY_DIMENSIONS,
    LATENCY_DISTRIBUTIONS,
    LATENCY_SCALARS,
    OPEN_INCIDENTS,
    QUOTA_EXHAUSTION,
    QUOTA_USE,
    TRANSLATORS,
    UNPRICED,
    Translator,
    anomaly_count_datums,
    cost_datums,
    distribution,
    error_datums,
    latency_datums,
    latency_metric_units,
    merge_error,
    quota_datums,
    slo_datums,
    topic_translators,
)
from genai_apm.export.cloudwatch.deadletters import (
    DeadLetters,
)
from genai_apm.export.cloudwatch.exporter import (
    export,
)
from genai_apm.export.cloudwatch.pending import (
    Pending,
    Source,
)
from genai_apm.export.cloudwatch.senders import (
    DATUM_ERRORS,
    RETRYABLE_CODES,
    EmfSender,
    PutMetricDataSender,
    datum_error,
    retry_cause,
    retryable,
)
from genai_apm.export.cloudwatch.stats import (
    Stats,
)

__all__ = [
    "ANOMALY_SCORE",
    "BURN_RATE",
    "COST_DIMENSIONS",
    "DATUM_ERRORS",
    "DeadLetters",
    "EMF_MAX_VALUES",
    "ERROR_BUDGET_REMAINING",
    "ERROR_METRICS",
    "ESTIMATED_COST",
    "EmfSender",
    "LATENCY_DIMENSIONS",
    "LATENCY_DISTRIBUTIONS",
    "LATENCY_SCALARS",
    "MAX_ABS_VALUE",
    "MAX_DATUMS",
    "MAX_DIMENSIONS",
    "MAX_FUTURE",
    "MAX_REQUEST_BYTES",
    "MAX_VALUES",
    "OPEN_INCIDENTS",
    "Pending",
    "PutMetricDataSender",
    "QUOTA_EXHAUSTION",
    "QUOTA_USE",
    "REQUEST_HEADROOM",
    "RETRYABLE_CODES",
    "RequestSizer",
    "Source",
    "Stats",
    "TRANSLATORS",
    "Translator",
    "UNPRICED",
    "anomaly_count_datums",
    "batches",
    "cost_datums",
    "datum_error",
    "distribution",
    "error_datums",
    "export",
    "latency_datums",
    "latency_metric_units",
    "merge_error",
    "problems",
    "quota_datums",
    "retry_cause",
    "retryable",
    "slo_datums",
    "topic_translators",
]
