"""Where the datums go: PutMetricData (batched, retried with backoff, split to find the datums
CloudWatch refuses) or Embedded Metric Format lines. A sender's ``send`` returns what it could
not deliver, with the reason, for the dead-letter topic."""

from __future__ import annotations

import datetime as dt
import json
import random
import time
from collections.abc import Callable
from typing import IO, Any

from genai_apm.errors import GenaiApmError
from genai_apm.export.cloudwatch.batching import RequestSizer, batches
from genai_apm.export.cloudwatch.checks import EMF_MAX_VALUES
from genai_apm.export.cloudwatch.pending import Pending
from genai_apm.export.cloudwatch.stats import Stats
from genai_apm.settings.config import CloudWatchSettings

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


def _code_and_status(error) -> tuple[str, int]:
    """A botocore ClientError's error code ('' if none) and HTTP status (0 if none)."""
    return (
        error.response.get("Error", {}).get("Code", ""),
        error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0),
    )


def retryable(error: Exception) -> bool:
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    if isinstance(error, ClientError):
        code, status = _code_and_status(error)
        return code in RETRYABLE_CODES or status >= 500 or status == 429
    return isinstance(error, ConnectionError | HTTPClientError)


def retry_cause(error: Exception) -> str:
    """A retryable failure's short name: the error code, else the HTTP status or class."""
    from botocore.exceptions import ClientError

    if isinstance(error, ClientError):
        code, status = _code_and_status(error)
        return code or f"HTTP {status}"
    return type(error).__name__


def datum_error(error: Exception) -> bool:
    """True when the request failed because of what it carried (client-side validation
    included), so splitting it finds the datums at fault."""
    from botocore.exceptions import ClientError, ParamValidationError

    if isinstance(error, ClientError):
        return _code_and_status(error)[0] in DATUM_ERRORS
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
