"""Athena DDL generated from a contract: external Parquet tables with partition projection.

Data lives under ``<location>/dt=yyyy-MM-dd/hour=HH/``, the Hive layout Flink's filesystem
sink writes for ``PARTITIONED BY (dt, hour)``. Partition projection computes the partitions
from TBLPROPERTIES at query time, so no crawler, ALTER TABLE ADD PARTITION or MSCK REPAIR
is ever needed.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence

from genai_apm.schemas.contract import Contract
from genai_apm.schemas.flink_sql import flink_type

PARTITION_COLUMNS = (("dt", "string"), ("hour", "string"))
# Athena names are lower-case letters, digits and underscores; anything else is a mistake
_NAME = re.compile("[a-z_][a-z0-9_]*")


_SCALARS = {
    "STRING": "string",
    "VARCHAR": "string",
    "CHAR": "string",
    "BOOLEAN": "boolean",
    "TINYINT": "tinyint",
    "SMALLINT": "smallint",
    "INT": "int",
    "INTEGER": "int",
    "BIGINT": "bigint",
    "FLOAT": "float",
    "DOUBLE": "double",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP_LTZ": "timestamp",
}


def _split_top_level(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch in "<("
        depth -= ch in ">)"
        if ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    return [*parts, text[start:].strip()]


def athena_type(flink_type: str) -> str:
    """The Athena (Hive DDL) type that reads what Flink's Parquet writer makes of a Flink type.

    MULTISET<T> is written as a Parquet map of element to INT32 count; timestamps as INT64
    millis (connectors/files.parquet_table_ddl), which Athena's ``timestamp`` reads."""
    t = re.sub(r"\s+NOT\s+NULL$", "", flink_type.strip(), flags=re.IGNORECASE)
    outer, sep, inner = t.partition("<")
    outer = outer.strip().upper()
    if sep:
        args = _split_top_level(inner.removesuffix(">"))
        if outer == "MULTISET" and len(args) == 1:
            return f"map<{athena_type(args[0])},int>"
        if outer == "MAP" and len(args) == 2:
            return f"map<{athena_type(args[0])},{athena_type(args[1])}>"
        if outer == "ARRAY" and len(args) == 1:
            return f"array<{athena_type(args[0])}>"
        raise ValueError(f"no Athena type for Flink type {flink_type!r}")
    base, _, precision = outer.partition("(")
    base = base.strip()
    if base == "DECIMAL":
        return f"decimal({precision.removesuffix(')')})" if precision else "decimal(10,0)"
    if base in _SCALARS:
        return _SCALARS[base]
    raise ValueError(f"no Athena type for Flink type {flink_type!r}")


def athena_columns(contract: Contract) -> list[tuple[str, str]]:
    return [(f.name, athena_type(flink_type(f.kind))) for f in contract.fields]


def quote(name: str) -> str:
    """Backticks, so reserved words (`date`, `hour`, `timestamp`) are safe as names."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a valid Athena name (lower-case, digits, _)")
    return f"`{name}`"


def _string(text: str) -> str:
    # Hive DDL strings escape with backslashes
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def projection_properties(location: str) -> dict[str, str]:
    return {
        "projection.enabled": "true",
        "projection.dt.type": "date",
        "projection.dt.format": "yyyy-MM-dd",
        "projection.dt.range": "2024-01-01,NOW",
        "projection.dt.interval": "1",
        "projection.dt.interval.unit": "DAYS",
        "projection.hour.type": "integer",
        "projection.hour.range": "0,23",
        "projection.hour.digits": "2",
        "storage.location.template": f"{location}dt=${{dt}}/hour=${{hour}}/",
    }


def athena_ddl(
    table: str,
    columns: Sequence[tuple[str, str]],
    *,
    location: str,
    partitioned: bool = True,
    comments: Mapping[str, str] | None = None,
    table_comment: str = "",
) -> str:
    """CREATE EXTERNAL TABLE for Parquet under ``location`` (an s3:// prefix).

    ``columns`` are (name, Athena type); with ``partitioned`` the table gains the ``dt`` and
    ``hour`` partitions and their projection.
    """
    location = location.rstrip("/") + "/"
    comments = comments or {}
    lines = [
        f"  {quote(name)} {sql_type}"
        + (f" COMMENT {_string(comments[name])}" if comments.get(name) else "")
        for name, sql_type in columns
    ]
    ddl = [f"CREATE EXTERNAL TABLE IF NOT EXISTS {quote(table)} (", ",\n".join(lines), ")"]
    if table_comment:
        ddl.append(f"COMMENT {_string(table_comment)}")
    if partitioned:
        partitions = ", ".join(f"{quote(n)} {t}" for n, t in PARTITION_COLUMNS)
        ddl.append(f"PARTITIONED BY ({partitions})")
    ddl += ["STORED AS PARQUET", f"LOCATION {_string(location)}"]
    if partitioned:
        properties = projection_properties(location)
        ddl += [
            "TBLPROPERTIES (",
            ",\n".join(f"  {_string(k)} = {_string(v)}" for k, v in properties.items()),
            ")",
        ]
    return "\n".join(ddl) + ";\n"


def contract_ddl(contract: Contract, table: str, *, location: str) -> str:
    """The partitioned table holding a contract's valid records, with its docs as comments."""
    return athena_ddl(
        table,
        athena_columns(contract),
        location=location,
        comments={f.name: f.doc for f in contract.fields},
        table_comment=f"{contract.name} v{contract.version}",
    )


def render(ddl: str, *, bucket: str) -> str:
    """A generated DDL file ready for StartQueryExecution: bucket filled in, comments gone.

    Only ``${bucket}`` is substituted: ``${dt}`` and ``${hour}`` belong to Athena's
    partition projection and must reach it as written.
    """
    if not re.fullmatch("[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket):
        raise ValueError(f"{bucket!r} is not an S3 bucket name")
    statement = "\n".join(line for line in ddl.splitlines() if not line.startswith("--"))
    return string.Template(statement).safe_substitute(bucket=bucket).strip() + "\n"
