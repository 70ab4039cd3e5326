"""File sources (backfill) and Parquet table sinks (for Athena/DuckDB), options from settings."""

from __future__ import annotations

from collections.abc import Sequence

from genai_apm.connectors.ddl import (
    create_table,
    raw_record_columns,
    source_format,
    typed_columns,
    watermark_options,
)
from genai_apm.schemas.flink_format import Decoding
from genai_apm.settings.config import FlinkSettings

# A file has a path and a modification time but no partition or offset.
FILE_METADATA = [
    "`src_name` STRING METADATA FROM 'file.path' VIRTUAL",
    "`src_partition` AS CAST(NULL AS INT)",
    "`src_offset` AS CAST(NULL AS BIGINT)",
    "`src_timestamp` TIMESTAMP_LTZ(3) METADATA FROM 'file.modification-time' VIRTUAL",
]


def as_uri(path: str) -> str:
    """Local paths become file:// URIs; s3:// and other schemes pass through."""
    if "://" in path:
        return path
    from pathlib import Path

    return Path(path).resolve().as_uri()


def raw_file_source_ddl(
    table: str,
    path: str,
    *,
    flink: FlinkSettings,
    event_time_sql: str | None = None,
    decoding: Decoding | None = None,
) -> str:
    """One record per line of every file under ``path`` (a file or a directory); the columns
    and the two ways to get rowtime are raw_record_columns'."""
    columns = raw_record_columns(
        FILE_METADATA, event_time_sql=event_time_sql, decoding=decoding, flink=flink
    )
    options = {
        "connector": "filesystem",
        "path": as_uri(path),
        **source_format(decoding),
        **watermark_options(flink),
    }
    return create_table(table, columns, options)


PARTITION_COLUMNS = (("dt", "STRING"), ("hour", "STRING"))


def parquet_table_ddl(
    table: str,
    path: str,
    columns: Sequence[tuple[str, str]],
    *,
    rolling_file_size: str = "128MB",
    rollover_interval: str = "15 min",
) -> str:
    """A Parquet table partitioned Hive-style by dt=YYYY-MM-DD/hour=HH.

    Parquet is a bulk format: Flink writes in-progress files and commits them only when a
    checkpoint completes, so readers never see a partial file. Files roll at every
    checkpoint (and at ``rolling_file_size`` or after ``rollover_interval``), so a partition
    gets a file per writer for each checkpoint that brought it rows. ``auto-compaction``
    merges the files of one checkpoint (all writers) into files of up to
    ``rolling_file_size`` before they become visible: one file per checkpoint with rows,
    whatever the parallelism. Files of different checkpoints are not merged: a 1-minute
    table gets a file per minute (its rows arrive once per window), a table of single
    events up to one per checkpoint interval, until `genai-apm compact` merges each closed
    hour into one file (genai_apm/compact.py, docs/sinks.md). Names: committed files are
    ``compacted-part-<uuid>-...`` without a suffix (Flink's SQL filesystem sink has no
    option for one); in-flight ones start with '.', and a _SUCCESS file marks each committed
    partition: readers take the files not starting with '.' or '_' (query.py, Athena).

    Timestamps are INT64 TIMESTAMP(MILLIS) holding UTC, not Flink's default INT96: Athena
    and DuckDB read both, but INT96 is deprecated and has no min/max statistics, so filters on
    window_start could not skip row groups. ``utc-timezone`` matters either way: without it
    Flink converts through the JVM's default zone and a non-UTC machine writes shifted times.
    """
    options = {
        "connector": "filesystem",
        "path": as_uri(path),
        "format": "parquet",
        "parquet.compression": "SNAPPY",
        "parquet.utc-timezone": "true",
        "parquet.write.int64.timestamp": "true",
        "parquet.timestamp.time.unit": "millis",
        "sink.rolling-policy.file-size": rolling_file_size,
        "sink.rolling-policy.rollover-interval": rollover_interval,
        "sink.partition-commit.policy.kind": "success-file",
        "auto-compaction": "true",
        "compaction.file-size": rolling_file_size,
    }
    return create_table(
        table,
        typed_columns([*columns, *PARTITION_COLUMNS]),
        options,
        partitioned_by=[n for n, _ in PARTITION_COLUMNS],
    )


def partition_values(time_column: str) -> str:
    """SQL for the dt and hour partition values of a TIMESTAMP_LTZ column (UTC session)."""
    return (
        f"DATE_FORMAT({time_column}, 'yyyy-MM-dd') AS dt, "
        f"DATE_FORMAT({time_column}, 'HH') AS `hour`"
    )


def json_lines_table_ddl(table: str, path: str, columns: Sequence[tuple[str, str]]) -> str:
    """Append-only JSON lines (dead letters of a backfill, normalised events)."""
    options = {
        "connector": "filesystem",
        "path": as_uri(path),
        "format": "json",
        "json.timestamp-format.standard": "ISO-8601",
        "json.encode.ignore-null-fields": "false",
    }
    return create_table(table, typed_columns(columns), options)
