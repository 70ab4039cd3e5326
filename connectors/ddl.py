"""Pieces every table factory shares: quoting, WITH clauses, the raw-record columns."""

from __future__ import annotations

from collections.abc import Sequence

from genai_apm.schemas.flink_format import EVENT_TS_COLUMN, Decoding
from genai_apm.schemas.flink_sql import quote_ident, sql_literal
from genai_apm.settings.config import FlinkSettings

# The payload as text, for JSON functions; computed columns cannot reference each other,
# so expressions over the payload inside DDL use this rather than the `doc` column.
RAW_DOC = "CAST(`raw` AS STRING)"
# the rowtime of records without a usable event time: never advances the watermark
NO_EVENT_TIME = "TO_TIMESTAMP_LTZ(0, 3)"


def with_clause(options: dict[str, str]) -> str:
    return ",\n  ".join(f"{sql_literal(k)} = {sql_literal(v)}" for k, v in options.items())


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
    return {"scan.watermark.emit.strategy": flink.watermark_emit}  # checked by the settings


def typed_columns(columns: Sequence[tuple[str, str]]) -> list[str]:
    return [f"{quote_ident(n)} {t}" for n, t in columns]


def raw_record_columns(
    metadata: Sequence[str],
    *,
    flink: FlinkSettings,
    event_time_sql: str | None = None,
    decoding: Decoding | None = None,
) -> list[str]:
    """The columns every raw source has: the record, where it came from, rowtime `event_ts`.

    ``metadata`` declares src_name, src_partition, src_offset and src_timestamp. With
    ``decoding`` the `genai-contract` format fills the physical columns from one parse of the
    record (every field typed, `reason`, `event_ts`, `raw`) and the watermark is declared on
    its `event_ts`; without it the record stays `raw` bytes (with a `doc` text column) and
    ``event_time_sql`` over RAW_DOC computes `event_ts`.

    Records without a usable event time get the epoch as rowtime: a NULL rowtime fails the
    watermark operator, and any real "now" would drag the watermark past historic events
    being replayed. The records themselves go to the dead-letter topic.
    """
    if (event_time_sql is None) == (decoding is None):
        raise ValueError("a raw source needs exactly one of event_time_sql and decoding")
    delay = f"INTERVAL '{int(flink.watermark_delay_s)}' SECOND"
    watermark = f"WATERMARK FOR `{EVENT_TS_COLUMN}` AS `{EVENT_TS_COLUMN}` - {delay}"
    if decoding is not None:
        return [*decoding.columns(), *metadata, watermark]
    return [
        "`raw` BYTES",
        *metadata,
        f"`doc` AS {RAW_DOC}",
        f"`event_ts` AS COALESCE({event_time_sql}, {NO_EVENT_TIME})",
        watermark,
    ]


def source_format(decoding: Decoding | None) -> dict[str, str]:
    """The format options of a raw source: the contract's decoding, or the bytes as they are."""
    return {"format": "raw"} if decoding is None else decoding.options()
