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

from genai_apm.schemas.contract import Contract, Kind

PARTITION_COLUMNS = (("dt", "string"), ("hour", "string"))
# Athena names are lower-case letters, digits and underscores; anything else is a mistake
_NAME = re.compile("[a-z_][a-z0-9_]*")


def athena_type(kind: Kind) -> str:
    return {
        Kind.STRING: "string",
        Kind.LONG: "bigint",
        Kind.DOUBLE: "double",
        Kind.BOOLEAN: "boolean",
        Kind.TIMESTAMP: "timestamp",
    }[kind]


def athena_columns(contract: Contract) -> list[tuple[str, str]]:
    return [(f.name, athena_type(f.kind)) for f in contract.fields]


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
