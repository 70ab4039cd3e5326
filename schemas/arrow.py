"""Arrow (and so Parquet) schema generated from a contract: the layout of files Athena reads."""

from __future__ import annotations

import pyarrow as pa

from genai_apm.schemas.contract import Contract, Field, Kind

_TYPES = {
    Kind.STRING: pa.string(),
    Kind.LONG: pa.int64(),
    Kind.DOUBLE: pa.float64(),
    Kind.BOOLEAN: pa.bool_(),
    # Parquet TIMESTAMP(MILLIS, isAdjustedToUTC=true): an instant, as Athena's timestamp reads
    Kind.TIMESTAMP: pa.timestamp("ms", tz="UTC"),
}


def arrow_type(kind: Kind) -> pa.DataType:
    return _TYPES[kind]


def arrow_field(field: Field) -> pa.Field:
    metadata = {key: text for key, text in (("doc", field.doc), ("otel", field.otel)) if text}
    return pa.field(
        field.name, arrow_type(field.kind), nullable=not field.required, metadata=metadata or None
    )


def arrow_schema(contract: Contract) -> pa.Schema:
    return pa.schema(
        [arrow_field(f) for f in contract.fields],
        metadata={"contract": contract.name, "schema_version": str(contract.version)},
    )
