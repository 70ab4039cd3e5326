"""The quota table: per provider, model and region, the tokens and requests a minute allows.

Like the pricing table (genai_apm/pricing.py): loaded from TOML (the packaged
genai_apm/data/quotas.toml or ``quota.quota_file``), checked, and turned into SQL CASE
expressions, so quota use is computed in the stream without a join or a UDF.

Quota tokens of a call (what the provider counts against tokens per minute)::

    input_tokens - cache_read_tokens + output_tokens * output_burndown

Cache reads are released at settlement on Bedrock, and some models count each output token
several times (``output_burndown``, 5 for Anthropic Claude 3.7 and later on Bedrock). A row's
region may be ``*``: any region without a row of its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from genai_apm import table_files
from genai_apm.errors import GenaiApmError
from genai_apm.schemas.flink_sql import sql_literal

FORMAT = table_files.FORMAT
ANY_REGION = "*"
REQUIRED = ("provider", "model_id", "region", "tpm", "source")
OPTIONAL = ("rpm", "output_burndown")
PACKAGED = table_files.packaged_origin("quotas.toml")


@dataclass(frozen=True)
class Quota:
    provider: str
    model_id: str
    region: str  # or ANY_REGION
    tpm: float  # tokens per minute
    rpm: float | None  # requests per minute; None: not limited by requests
    output_burndown: float
    source: str


@dataclass(frozen=True)
class QuotaTable:
    version: str
    origin: str
    quotas: tuple[Quota, ...]  # specific regions before ANY_REGION

    def quota_for(self, provider: str, model_id: str, region: str) -> Quota | None:
        for q in self.quotas:
            same_model = (q.provider, q.model_id) == (provider, model_id)
            if same_model and q.region in (region, ANY_REGION):
                return q
        return None


def _positive(raw: dict, key: str, where: str, default=None) -> float | None:
    value = raw.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise GenaiApmError(f"{where}: {key} must be a number")
    if not math.isfinite(value) or value <= 0:
        raise GenaiApmError(f"{where}: {key} {value} must be a finite, positive number")
    return float(value)


def _row(raw: object, where: str) -> Quota:
    raw = table_files.check_row(
        raw, where, "quota", REQUIRED, OPTIONAL, ("provider", "model_id", "region", "source")
    )
    return Quota(
        provider=raw["provider"],
        model_id=raw["model_id"],
        region=raw["region"],
        tpm=_positive(raw, "tpm", where),
        rpm=_positive(raw, "rpm", where),
        output_burndown=_positive(raw, "output_burndown", where, 1.0),
        source=raw["source"],
    )


def parse(text: str, origin: str) -> QuotaTable:
    version, rows = table_files.parse(text, origin, "quota", "quota")
    quotas = [_row(r, f"quota file {origin}, quota {i + 1}") for i, r in enumerate(rows)]
    seen: set[tuple] = set()
    for q in quotas:
        key = (q.provider, q.model_id, q.region)
        if key in seen:
            raise GenaiApmError(
                f"quota file {origin}: two rows for {q.provider} {q.model_id} in {q.region}"
            )
        seen.add(key)
    quotas.sort(key=lambda q: (q.provider, q.model_id, q.region == ANY_REGION, q.region))
    return QuotaTable(version=version, origin=origin, quotas=tuple(quotas))


def load(path: str | Path | None = None) -> QuotaTable:
    """The table at ``path``; without one, the table shipped in the package."""
    return parse(*table_files.read(path, "quotas.toml", "quota"))


def limit_sql(
    table: QuotaTable,
    attribute: str,
    *,
    provider: str = "provider",
    model_id: str = "model_id",
    region: str = "region",
) -> str:
    """A DOUBLE expression: the row's ``attribute`` (tpm, rpm or output_burndown) for the
    provider, model and region; NULL where the table has no row (or no rpm)."""
    branches = []
    for q in table.quotas:
        value = getattr(q, attribute)
        if value is None:
            continue
        where = f"{provider} = {sql_literal(q.provider)} AND {model_id} = {sql_literal(q.model_id)}"
        if q.region != ANY_REGION:
            where += f" AND {region} = {sql_literal(q.region)}"
        branches.append(f"WHEN {where} THEN CAST({value!r} AS DOUBLE)")
    if not branches:
        return "CAST(NULL AS DOUBLE)"
    return "CASE\n    " + "\n    ".join(branches) + "\n  END"


def quota_tokens(input_tokens: float, cache_read: float, output_tokens: float, burndown: float):
    """A call's (or a sum of calls') quota tokens; the Python twin of the SQL in jobs/slo.py."""
    return input_tokens - cache_read + output_tokens * burndown
