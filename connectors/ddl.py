"""Pieces every table factory shares: quoting, WITH clauses, the raw-record columns."""

from __future__ import annotations

from collections.abc import Sequence

from genai_apm.config import FlinkSettings
from genai_apm.errors import GenaiApmError
from genai_apm.schemas.flink_sql import quote_ident

# The payload as text, for JSON functions; computed columns cannot reference each other,
# so expressions over the payload inside DDL use this rather than the `doc` column.
RAW_DOC = "CAST(`raw` AS STRING)"
# the rowtime of records without a usable event time: never advances the watermark
NO_EVENT_TIME = "TO_TIMESTAMP_LTZ(0, 3)"


def sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def with_clause(options: dict[str, str]) -> str:
    return ",\n  ".join(f"{sql_string(k)} = {sql_string(v)}" for k, v in options.items())


def create_table(
    name: str,
    column_lines: Sequence[str],
    options: dict[str, str],
    partitioned_by: Sequence[str] = (),
) -> str:
    partitions = ""
    if partitioned_by:
        partitions = "\nPARTITIONED BY (" + ", ".join(map(quote_ident, partitioned_by)) + ")"
    columns = ",\n  ".join(column_lines)
    return (
        f"CREATE TEMPORARY TABLE {quote_ident(name)} (\n  {columns}\n){partitions}"
        f" WITH (\n  {with_clause(options)}\n)"
    )


def watermark_options(flink: FlinkSettings) -> dict[str, str]:
    """Source options for how often watermarks are emitted (FLIP-296)."""
    emit = flink.watermark_emit
    if emit not in ("on-periodic", "on-event"):
        raise GenaiApmError(f"flink.watermark_emit must be on-periodic or on-event, not {emit!r}")
    return {"scan.watermark.emit.strategy": emit}


def typed_columns(columns: Sequence[tuple[str, str]]) -> list[str]:
    return [f"{quote_ident(n)} {t}" for n, t in columns]


def raw_record_columns(
    metadata: Sequence[str], *, event_time_sql: str, flink: FlinkSettings
) -> list[str]:
    """The columns every raw source has: payload, where it came from, doc, rowtime.

    ``metadata`` declares src_name, src_partition, src_offset and src_timestamp. Records
    without a usable event time get the epoch as rowtime: a NULL rowtime fails the
    watermark operator, and any real "now" would drag the watermark past historic events
    being replayed. The records themselves go to the dead-letter topic.
    """
    delay = f"INTERVAL '{int(flink.watermark_delay_s)}' SECOND"
    return [
        "`raw` BYTES",
        *metadata,
        f"`doc` AS {RAW_DOC}",
        f"`event_ts` AS COALESCE({event_time_sql}, {NO_EVENT_TIME})",
        f"WATERMARK FOR `event_ts` AS `event_ts` - {delay}",
    ]
