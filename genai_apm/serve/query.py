"""`genai-apm query "SQL"`: DuckDB over the Parquet tables, locally or on S3, by Athena's names.

Every directory under ``output.tables_path`` holding ``dt=.../hour=.../`` Parquet files is
a view of that name (latency_1m, errors_1m, late_events, ...), with ``dt`` and ``hour`` as
strings, as in the Athena tables (genai_apm/deploy/athena.py), so a query is easy to move between
the two; only dialect differences remain (DuckDB's ``unnest(map_entries(m))`` is Athena's
``CROSS JOIN UNNEST(m)``).

DuckDB reads S3 through its httpfs extension, which it downloads on first use; offline (as
in CI) it cannot, so s3:// tables are fetched with boto3 (endpoint and credentials from the
[aws] settings) into a temporary folder first: only the tables the SQL names, and only
committed files. That suits the data a query here is for (hours to days); Athena is for
more.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import tempfile
from collections.abc import Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

from genai_apm.errors import GenaiApmError
from genai_apm.settings.config import Settings

PARTITION_GLOB = "*/*/*"
HIVE_TYPES = "{'dt': 'VARCHAR', 'hour': 'VARCHAR'}"


def _committed(name: str) -> bool:
    # Flink's in-progress files and markers start with '.' or '_' (readers skip them, as
    # Athena does); so does the _SUCCESS file of a committed partition
    return not name.startswith((".", "_"))


def local_tables(root: Path) -> dict[str, Path]:
    """Table name -> folder, for every folder under ``root`` with committed Parquet files."""
    if not root.is_dir():
        return {}
    found = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        files = folder.glob("dt=*/hour=*/*")
        if any(f.is_file() and _committed(f.name) for f in files):
            found[folder.name] = folder
    return found


def _named_in(sql: str, names) -> list[str]:
    return [n for n in names if re.search(rf"(?<![\w.]){re.escape(n)}(?!\w)", sql)]


def download_tables(settings: Settings, uri: str, sql: str, into: Path) -> None:
    """Copy the committed files of the tables ``sql`` names from ``uri`` (s3://) to ``into``."""
    from genai_apm import aws

    bucket, prefix = aws.split_s3_uri(uri)
    s3 = aws.client(settings.aws, "s3")
    base = f"{prefix}/" if prefix else ""
    try:
        pages = s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=base, Delimiter="/"
        )
        tables = [
            p["Prefix"][len(base) :].strip("/")
            for page in pages
            for p in page.get("CommonPrefixes", [])
        ]
        for table in _named_in(sql, tables):
            pages = s3.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=f"{base}{table}/"
            )
            for page in pages:
                for obj in page.get("Contents", []):
                    key = obj["Key"]
                    relative = key[len(base) :]
                    parts = relative.split("/")
                    if len(parts) != 4 or not _committed(parts[-1]):
                        continue
                    target = into / relative
                    target.parent.mkdir(parents=True, exist_ok=True)
                    s3.download_file(bucket, key, str(target))
    except Exception as e:  # botocore's errors have no common base worth importing here
        if type(e).__module__.startswith(("botocore", "boto3")):
            raise GenaiApmError(f"cannot read {uri}: {e}") from None
        raise


@contextmanager
def connect(settings: Settings, sql: str = "", tables_path: str | None = None):
    """A DuckDB connection with one view per table under ``tables_path`` (default:
    output.tables_path); for s3:// only the tables named in ``sql`` are fetched."""
    import duckdb

    root = tables_path or settings.output.tables_path
    with tempfile.TemporaryDirectory(prefix="genai-apm-query-") as scratch:
        if root.startswith("s3://"):
            download_tables(settings, root, sql, Path(scratch))
            folder = Path(scratch)
        else:
            folder = Path(root.removeprefix("file://"))
        con = duckdb.connect()
        try:
            con.execute("SET TimeZone = 'UTC'")
            for name, path in local_tables(folder).items():
                pattern = str(path / "dt=*" / "hour=*" / "[!._]*").replace("'", "''")
                con.execute(
                    f"CREATE VIEW \"{name}\" AS SELECT * FROM read_parquet('{pattern}', "
                    f"hive_partitioning = true, hive_types = {HIVE_TYPES}, "
                    "union_by_name = true)"
                )
            yield con
        finally:
            con.close()


def run(
    settings: Settings, sql: str, tables_path: str | None = None
) -> tuple[list[str], list[tuple]]:
    """(column names, rows) of ``sql`` over the tables."""
    import duckdb

    with connect(settings, sql, tables_path) as con:
        try:
            rel = con.sql(sql)
        except duckdb.CatalogException as e:
            views = con.execute(
                "SELECT view_name FROM duckdb_views() WHERE NOT internal ORDER BY 1"
            ).fetchall()
            known = ", ".join(v for (v,) in views) or "none"
            where = tables_path or settings.output.tables_path
            first = str(e).splitlines()[0]
            raise GenaiApmError(f"{first} (tables under {where}: {known})") from None
        except duckdb.Error as e:
            raise GenaiApmError(f"query failed: {e}") from None
        if rel is None:  # a statement without a result
            return [], []
        return list(rel.columns), rel.fetchall()


def _cell(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value:.6g}" if abs(value) >= 1e15 or 0 < abs(value) < 1e-4 else f"{value:,.4f}"
    if isinstance(value, Decimal):
        return f"{value:,}"
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {v}" for k, v in value.items()) + "}"
    return str(value)


def format_table(columns: Sequence[str], rows: Sequence[tuple], max_width: int = 60) -> str:
    """A plain text table: numbers right-aligned, long cells cut, a row count at the end."""
    cells = [[_cell(v) for v in row] for row in rows]
    cells = [[c if len(c) <= max_width else c[: max_width - 1] + "…" for c in row] for row in cells]
    numeric = [
        bool(rows) and all(isinstance(r[i], int | float | Decimal) or r[i] is None for r in rows)
        for i in range(len(columns))
    ]

    out = aligned(list(columns), cells, numeric)
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(out)


def aligned(header: list[str], cells: list[list[str]], right: Sequence[bool]) -> list[str]:
    """Header, a rule and the rows, each column as wide as its widest cell, joined by two
    spaces; ``right[i]`` right-aligns column i (numbers)."""
    widths = [max(len(row[i]) for row in [header, *cells]) for i in range(len(header))]

    def line(values) -> str:
        return "  ".join(
            v.rjust(w) if r else v.ljust(w) for v, w, r in zip(values, widths, right, strict=True)
        ).rstrip()

    return [line(header), "  ".join("-" * w for w in widths), *map(line, cells)]
