"""The `genai-contract` source format: a contract, sent as JSON, decoded once per record in Java.

A source declared with ``Decoding(contract, event_time).columns()`` and ``.options()`` gets, from
one parse of each record (infra/udfs: ContractFormatFactory, ContractDecoder), every field
typed, the rejection reason and the event time as physical columns, so the watermark is
declared on a column the format fills. The rules and reason texts are those of the generated
SQL (flink_sql.py, still used where the document is built inside the job, e.g. ingest) and of
the Python reference validator (validate.py); tests/unit/test_validate_vs_flink.py holds the
three equal. Everything the Java side knows about a contract travels in the JSON below, so the
contract is still written once, in this package.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from genai_apm.schemas.contract import (
    DOUBLE_TEXT,
    EPOCH_TEXT,
    LONG_TEXT,
    MAX_TIMESTAMP_MS,
    MIN_TIMESTAMP_MS,
    RFC3339_TEXT,
    Contract,
    Kind,
)
from genai_apm.schemas.flink_sql import flink_type, quote_ident

FORMAT = "genai-contract"
# the physical columns the format fills beside the contract's fields
RAW_COLUMN = "raw"  # the record as received: dead letters keep it
REASON_COLUMN = "reason"  # NULL when the record honours the contract
EVENT_TS_COLUMN = "event_ts"  # the event-time field; the epoch when absent or unusable
EXTRA_COLUMNS = ((REASON_COLUMN, "STRING"), (EVENT_TS_COLUMN, "TIMESTAMP_LTZ(3)"))


def contract_json(contract: Contract, event_time: str) -> str:
    """The contract as the format's ``contract`` option reads it (ContractDecoder)."""
    field = contract.field(event_time)
    if field.kind is not Kind.TIMESTAMP:
        raise ValueError(f"{contract.name}.{event_time} is not a timestamp")
    version = contract.version_field
    return json.dumps(
        {
            "name": contract.name,
            "version": contract.version,
            "version_field": version.name if version else None,
            "event_time": event_time,
            "fields": [
                {
                    "name": f.name,
                    "kind": f.kind.value,
                    "required": f.required,
                    "minimum": f.minimum,
                    # the reason's wording of the bound, as flink_sql.problem and validate write it
                    "minimum_text": None if f.minimum is None else f"{f.minimum:g}",
                    "allowed": list(f.allowed),
                }
                for f in contract.fields
            ],
            "patterns": {
                "long": LONG_TEXT,
                "double": DOUBLE_TEXT,
                "epoch": EPOCH_TEXT,
                "rfc3339": RFC3339_TEXT,
            },
            "min_ms": MIN_TIMESTAMP_MS,
            "max_ms": MAX_TIMESTAMP_MS,
        },
        separators=(",", ":"),
    )


@dataclass(frozen=True)
class Decoding:
    """How a source decodes its records: ``contract``, with rowtime from ``event_time``."""

    contract: Contract
    event_time: str

    def __post_init__(self) -> None:
        taken = {RAW_COLUMN, REASON_COLUMN, EVENT_TS_COLUMN} & set(self.contract.names)
        if taken:
            raise ValueError(f"{self.contract.name} fields clash with the format's {taken}")

    def options(self) -> dict[str, str]:
        """The table options selecting the format (in place of ``'format' = 'raw'``)."""
        return {
            "format": FORMAT,
            f"{FORMAT}.contract": contract_json(self.contract, self.event_time),
        }

    def columns(self) -> list[str]:
        """The physical columns, in DDL: every field typed, `reason`, `event_ts`, `raw`."""
        typed = [(f.name, flink_type(f.kind)) for f in self.contract.fields]
        columns = [*typed, *EXTRA_COLUMNS, (RAW_COLUMN, "BYTES")]
        return [f"{quote_ident(n)} {t}" for n, t in columns]
