"""Datums -> PutMetricData requests within the API's limits on count and body size."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from genai_apm.export.cloudwatch.checks import MAX_DATUMS, MAX_REQUEST_BYTES, REQUEST_HEADROOM
from genai_apm.export.cloudwatch.pending import Pending


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
