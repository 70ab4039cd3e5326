"""Python functions Flink calls. Only foreign formats (Bedrock logs, OTLP JSON) pay for one:
native events are parsed by generated SQL, which is several times faster."""

from __future__ import annotations

import json


def decode_records_function():
    """A UDTF: (format, raw bytes) -> rows of (contract, normalised JSON, rejection reason)."""
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
                records = decode(fmt, raw)
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
