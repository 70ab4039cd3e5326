"""The pricing table: loaded from TOML, checked, and turned into Flink SQL.

The cost of a call is computed in SQL generated from the table (one CASE over provider,
model and effective dates), so no per-record Python UDF and no join with a price stream:
a price change applies from its effective date by event time, in streaming and backfill
alike. A model or date the table does not cover gives NULL, counted as unpriced.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path

from genai_apm import table_files
from genai_apm.errors import GenaiApmError
from genai_apm.schemas.flink_sql import sql_literal

FORMAT = table_files.FORMAT
CURRENCY = "USD"
REQUIRED = ("provider", "model_id", "effective_from", "currency", "input", "output", "source")
OPTIONAL = ("cache_read", "cache_write")  # omitted: charged as input
PACKAGED = table_files.packaged_origin("pricing.toml")


@dataclass(frozen=True)
class Price:
    provider: str
    model_id: str
    effective_from_ms: int  # epoch milliseconds, UTC
    input: float  # USD per million tokens
    output: float
    cache_read: float
    cache_write: float
    source: str


@dataclass(frozen=True)
class PricingTable:
    version: str
    origin: str  # the file it came from
    prices: tuple[Price, ...]  # by provider, model, then effective date

    def price_at(self, provider: str | None, model_id: str, time_ms: int) -> Price | None:
        """The row in effect for a call: the latest one that started at or before it."""
        rows = [
            p
            for p in self.prices
            if p.provider == provider and p.model_id == model_id and p.effective_from_ms <= time_ms
        ]
        return rows[-1] if rows else None


def _epoch_ms(value, where: str) -> int:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise GenaiApmError(f"{where}: effective_from {value} has no UTC offset")
        return int(value.timestamp() * 1000)
    if isinstance(value, dt.date):
        return (
            int(dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC).timestamp()) * 1000
        )
    raise GenaiApmError(
        f"{where}: effective_from must be a TOML date (2025-01-31) or a time with offset "
        f"(2025-01-31T12:00:00Z), not {value!r}"
    )


def _row(raw: object, where: str) -> Price:
    raw = table_files.check_row(
        raw, where, "price", REQUIRED, OPTIONAL, ("provider", "model_id", "source")
    )
    if raw["currency"] != CURRENCY:
        raise GenaiApmError(
            f"{where}: currency {raw['currency']!r}; only {CURRENCY} is supported (spend is summed)"
        )
    prices = {}
    for key in ("input", "output", *OPTIONAL):
        value = raw.get(key, raw["input"])
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise GenaiApmError(f"{where}: {key} must be a number (USD per million tokens)")
        if not math.isfinite(value) or value < 0:
            raise GenaiApmError(f"{where}: {key} {value} must be a finite, non-negative price")
        prices[key] = float(value)
    return Price(
        provider=raw["provider"],
        model_id=raw["model_id"],
        effective_from_ms=_epoch_ms(raw["effective_from"], where),
        source=raw["source"],
        **prices,
    )


def parse(text: str, origin: str) -> PricingTable:
    version, rows = table_files.parse(text, origin, "pricing", "price")
    if not rows:
        raise GenaiApmError(f"pricing file {origin}: no [[price]] rows")
    prices = [_row(r, f"pricing file {origin}, price {i + 1}") for i, r in enumerate(rows)]
    seen: set[tuple] = set()
    for p in prices:
        key = (p.provider, p.model_id, p.effective_from_ms)
        if key in seen:
            when = dt.datetime.fromtimestamp(p.effective_from_ms / 1000, dt.UTC).isoformat()
            raise GenaiApmError(
                f"pricing file {origin}: two rows for {p.provider} {p.model_id} from {when}"
            )
        seen.add(key)
    prices.sort(key=lambda p: (p.provider, p.model_id, p.effective_from_ms))
    return PricingTable(version=version, origin=origin, prices=tuple(prices))


def load(path: str | Path | None = None) -> PricingTable:
    """The table at ``path``; without one, the table shipped in the package."""
    return parse(*table_files.read(path, "pricing.toml", "pricing"))


def _double(value: float) -> str:
    return f"CAST({value!r} AS DOUBLE)"


def cost_sql(
    table: PricingTable,
    *,
    provider: str = "`provider`",
    model_id: str = "`model_id`",
    time: str = "`event_ts`",
    input_tokens: str = "`input_tokens`",
    output_tokens: str = "`output_tokens`",
    cache_read: str = "`cache_read_input_tokens`",
    cache_write: str = "`cache_write_input_tokens`",
) -> str:
    """A DOUBLE expression: the call's cost in USD, NULL when the table has no price for it.

    ``input_tokens`` includes cached tokens (the OpenTelemetry convention), so the uncached
    part is input - cache read - cache write; missing token counts count as zero.
    """
    read = f"CAST(COALESCE({cache_read}, 0) AS DOUBLE)"
    write = f"CAST(COALESCE({cache_write}, 0) AS DOUBLE)"
    zero = "CAST(0 AS DOUBLE)"
    uncached = f"GREATEST(CAST(COALESCE({input_tokens}, 0) AS DOUBLE) - {read} - {write}, {zero})"
    out = f"CAST(COALESCE({output_tokens}, 0) AS DOUBLE)"

    def cost(p: Price) -> str:
        return (
            f"({uncached} * {_double(p.input)} + {out} * {_double(p.output)}"
            f" + {read} * {_double(p.cache_read)} + {write} * {_double(p.cache_write)}) / 1e6"
        )

    by_model: dict[tuple[str, str], list[Price]] = {}
    for p in table.prices:
        by_model.setdefault((p.provider, p.model_id), []).append(p)
    branches = []
    for (prov, model), rows in by_model.items():
        # latest first: the first effective date at or before the call wins
        dated = "\n      ".join(
            f"WHEN {time} >= TO_TIMESTAMP_LTZ({p.effective_from_ms}, 3) THEN {cost(p)}"
            for p in reversed(rows)
        )
        branches.append(
            f"WHEN {provider} = {sql_literal(prov)} AND {model_id} = {sql_literal(model)}"
            " THEN CASE\n"
            f"      {dated}\n    END"
        )
    return "CASE\n    " + "\n    ".join(branches) + "\n  END"
