"""Python functions Flink calls. Only foreign formats (Bedrock logs, OTLP JSON) pay for one:
native events are parsed by generated SQL, which is several times faster."""

from __future__ import annotations

import json


def decode_records_function(store_bodies: bool = False):
    """A UDTF: (format, raw bytes) -> rows of (contract, normalised JSON, rejection reason).

    With ``store_bodies`` (privacy.store_bodies) the rows include BodyEvents, the redacted
    prompt and response of each call; without, bodies are never read."""
    from pyflink.table import DataTypes
    from pyflink.table.udf import TableFunction, udtf

    from genai_apm.adapters import AdapterError, decode

    class DecodeRecords(TableFunction):
        def open(self, function_context):
            group = function_context.get_metric_group().add_group("genai_apm")
            self.decoded = group.counter("adapter_events")
            self.rejected = group.counter("adapter_rejections")

        def eval(self, fmt: str, raw: bytes):
            try:
                records = decode(fmt, raw, bodies=store_bodies)
            except AdapterError as e:
                self.rejected.inc()
                yield None, None, str(e)
                return
            if not records:
                # a well-formed envelope with nothing inside (e.g. an empty OTLP export)
                return
            self.decoded.inc(len(records))
            for contract, event in records:
                yield contract, json.dumps(event, separators=(",", ":")), None

    return udtf(
        DecodeRecords(),
        result_types=[DataTypes.STRING(), DataTypes.STRING(), DataTypes.STRING()],
        deterministic=True,
    )


DEADLETTER_PAYLOAD_FUNCTION = "GENAI_DEADLETTER_PAYLOAD"


def deadletter_payload_function(store_bodies: bool):
    """A scalar UDF: (format, raw bytes) -> the payload a dead letter keeps: bodies removed,
    or redacted with ``store_bodies`` (genai_apm.adapters.bodies). Called for rejected
    records only."""
    from pyflink.table import DataTypes
    from pyflink.table.udf import udf

    from genai_apm.adapters.bodies import deadletter_payload

    def payload(fmt: str, raw: bytes) -> bytes:
        return deadletter_payload(fmt, raw, store_bodies=store_bodies)

    return udf(payload, result_type=DataTypes.BYTES(), deterministic=True)
