"""Athena (Glue) DDL for every Parquet table the jobs write, plus example queries.

``python -m genai_apm.athena`` (or ``genai-apm athena-ddl``) writes
  infra/athena/<table>.sql      CREATE EXTERNAL TABLE with partition projection (no MSCK REPAIR)
  infra/athena/queries/*.sql    example queries over them
from the column lists the jobs themselves use (``jobs/*.output_columns``, the contracts), so
a column added to a job shows up here after one regeneration; ``--check`` fails while a
committed file differs from a fresh generation (tests/unit/test_athena.py runs it too).

The files use ``${bucket}`` for the table root: the jobs write ``<tables_path>/<table>/``,
so they match ``output.tables_path = "s3://<bucket>"``. ``--tables-path s3://bucket/prefix``
prints the DDL ready to run for another root instead of writing files.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from genai_apm.config import Settings

ROOT = Path(__file__).resolve().parents[1]
COMMAND = "genai-apm athena-ddl"
ATHENA_DIR = Path("infra/athena")
ROOT_PLACEHOLDER = "s3://${bucket}"


@dataclass(frozen=True)
class Table:
    name: str
    columns: Sequence[tuple[str, str]]  # (name, Flink SQL type), as the job declares them
    comment: str


def _latency(s: Settings) -> list[Table]:
    from genai_apm.jobs import latency

    return [
        *(
            Table(f"latency_{w.name}", latency.output_columns(s), f"latency per {w.name} window")
            for w in latency.windows(s)
        ),
        Table("late_events", latency.LATE_COLUMNS, "calls that arrived behind the watermark"),
    ]


def _errors(s: Settings) -> list[Table]:
    from genai_apm.jobs import errors

    return [
        Table(f"errors_{w.name}", errors.output_columns(), f"call outcomes per {w.name} window")
        for w in errors.windows(s)
    ]


def _cost(s: Settings) -> list[Table]:
    from genai_apm.jobs import cost

    name = f"cost_{cost.spend_window(s).name}"
    return [Table(name, cost.output_columns(), "spend per dimension and key")]


def _agents(s: Settings) -> list[Table]:
    from genai_apm.jobs import agents

    name = agents.window(s).name
    return [
        Table("sessions", agents.SESSION_COLUMNS, "agent sessions (conversations)"),
        Table("traces", agents.TRACE_COLUMNS, "per trace: slowest span, critical path"),
        *(
            Table(f"{d}_stats_{name}", agents.stats_columns(s), f"{d} calls per {name} window")
            for d, _, _ in agents.STATS
        ),
    ]


def _anomalies(s: Settings) -> list[Table]:
    from genai_apm.jobs import anomalies

    return [
        Table(
            "anomalies",
            anomalies.ANOMALY_COLUMNS,
            "anomaly incidents (open and close events) and outlier calls",
        )
    ]


def _slo(s: Settings) -> list[Table]:
    from genai_apm.jobs import slo

    return [
        Table("slo_1m", slo.SLO_COLUMNS, "per SLO, key and minute: SLI, error budget, burn rates"),
        Table("quota_1m", slo.QUOTA_COLUMNS, "per provider, model, region and minute: quota use"),
    ]


# One entry per job writing Parquet tables: a new job's tables are one line here.
DERIVED: tuple[Callable[[Settings], list[Table]], ...] = (
    _latency,
    _errors,
    _cost,
    _agents,
    _anomalies,
    _slo,
)


def derived_tables(settings: Settings) -> list[Table]:
    return [table for family in DERIVED for table in family(settings)]


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


def table_ddl(table: Table) -> str:
    from genai_apm.schemas.athena import athena_ddl

    header = (
        f"-- Generated by `{COMMAND}` from the {table.name} sink's columns; do not edit.\n"
        "-- ${bucket} stands for the S3 bucket holding the Parquet files. Substitute it and\n"
        "-- nothing else: ${dt} and ${hour} are Athena's partition-projection variables.\n"
        "-- genai_apm.schemas.athena.render(text, bucket=...) does that and drops these lines.\n"
    )
    columns = [(name, athena_type(sql_type)) for name, sql_type in table.columns]
    return header + athena_ddl(
        table.name,
        columns,
        location=f"{ROOT_PLACEHOLDER}/{table.name}/",
        table_comment=table.comment,
    )


def contract_files() -> dict[Path, str]:
    """invocations, spans: the same text `python -m genai_apm.schemas.generate` writes."""
    from genai_apm.schemas import generate

    return {
        ATHENA_DIR / f"{table}.sql": generate.athena_file(contract, table)
        for contract, table in generate.CONTRACTS
    }


def _query(description: str, sql: str) -> str:
    lines = [f"-- {line}" if line else "--" for line in description.strip().splitlines()]
    return (
        f"-- Generated by `{COMMAND}`; do not edit. Athena (Trino) SQL.\n"
        + "\n".join(lines)
        + "\n"
        + sql.strip()
        + "\n"
    )


def example_queries(settings: Settings) -> dict[str, str]:
    """file name -> Athena SQL; every table and column named here comes from the code."""
    from genai_apm.jobs import cost, errors, latency

    gamma = latency.histogram_gamma(settings.latency.histogram_relative_error)
    error = settings.latency.histogram_relative_error
    minute = f"latency_{latency.windows(settings)[0].name}"
    errors_table = f"errors_{errors.windows(settings)[0].name}"
    cost_table = f"cost_{cost.spend_window(settings).name}"
    outcome_sums = ",\n  ".join(f"SUM({c}) AS {c}" for _, c, _ in errors.OUTCOMES)
    unavailable = " - ".join(c for o, c, _ in errors.OUTCOMES if o in errors.UNAVAILABLE)
    return {
        "p99_latency_per_model_hour.sql": _query(
            f"""
p99 latency per model and hour over the last 7 days, merged from the per-minute histograms
of {minute} (exact per-minute p99s cannot be merged; bucket counts can). The estimate is
within {error:.0%} of the exact latency at rank floor(0.99 (N - 1)) (docs/latency-rollups.md).
Change 0.99 for another quantile; the dt filter prunes partitions.""",
            f"""
WITH buckets AS (
  SELECT model_id, date_trunc('hour', window_start) AS hour_start,
         CAST(b.bucket AS integer) AS bucket, SUM(b.n) AS n
  FROM {minute}
  CROSS JOIN UNNEST(latency_hist) AS b (bucket, n)
  WHERE app_id = '*' AND dt >= CAST(current_date - INTERVAL '7' DAY AS varchar)
  GROUP BY 1, 2, 3
), ranked AS (
  SELECT *,
    SUM(n) OVER (PARTITION BY model_id, hour_start ORDER BY bucket) AS cumulative,
    SUM(n) OVER (PARTITION BY model_id, hour_start) AS total
  FROM buckets
)
SELECT model_id, hour_start, total AS calls,
  2 * power({gamma!r}, MIN(bucket)) / ({gamma!r} + 1) AS p99_ms
FROM ranked
WHERE cumulative > floor(0.99 * (total - 1))
GROUP BY model_id, hour_start, total
ORDER BY model_id, hour_start;""",
        ),
        "top_spenders.sql": _query(
            f"""
The 20 users who spent most over the last 7 days ({cost_table}: one row per window,
dimension and key). dimension is one of {", ".join(d for d, _ in cost.DIMENSIONS)} or all.
cost_usd is NULL for calls the pricing table could not price; unpriced_requests counts them.""",
            f"""
SELECT "key" AS user_id,
  SUM(cost_usd) AS cost_usd,
  SUM(requests) AS requests,
  SUM(unpriced_requests) AS unpriced_requests,
  SUM(input_tokens) AS input_tokens,
  SUM(output_tokens) AS output_tokens
FROM {cost_table}
WHERE dimension = 'user' AND dt >= CAST(current_date - INTERVAL '7' DAY AS varchar)
GROUP BY "key"
ORDER BY cost_usd DESC NULLS LAST
LIMIT 20;""",
        ),
        "error_breakdown_day.sql": _query(
            f"""
Call outcomes per model over one day, from the per-minute rows of {errors_table} (app_id '*':
every app). Set the day; availability counts client errors and content filtering as served.""",
            f"""
SELECT model_id,
  SUM(requests) AS requests,
  {outcome_sums},
  100.0 * SUM(requests - {unavailable}) / SUM(requests) AS availability_pct
FROM {errors_table}
WHERE app_id = '*' AND model_id <> '*' AND dt = '2026-01-01'
GROUP BY model_id
ORDER BY requests DESC;""",
        ),
        "late_events_24h.sql": _query(
            """
Late events of the last 24 hours (calls that arrived behind the watermark and so missed their
window) per model and hour, with how late they were.""",
            """
SELECT model_id, date_trunc('hour', missed_window_start) AS hour_start,
  COUNT(*) AS late_events,
  MAX(date_diff('millisecond', event_time, "watermark")) / 1000.0 AS max_behind_watermark_s,
  COUNT_IF(status = 'error') AS late_errors
FROM late_events
WHERE dt >= CAST(current_date - INTERVAL '1' DAY AS varchar)
  AND event_time >= current_timestamp - INTERVAL '24' HOUR
GROUP BY 1, 2
ORDER BY hour_start DESC, late_events DESC;""",
        ),
        "slo_budget_now.sql": _query(
            """
Every SLO's latest row per key of the last day: error budget left over its compliance period
and the burn rates (1 spends the budget exactly over the period; the page alerts use 14.4 over
1h and 5m, 6 over 6h and 30m).""",
            """
SELECT slo, "key", window_end, objective_pct, "period", period_sli_pct,
  budget_remaining_pct, burn_rate_5m, burn_rate_1h, burn_rate_6h, burn_rate_3d
FROM (
  SELECT *, row_number() OVER (PARTITION BY slo, "key" ORDER BY window_end DESC) AS latest
  FROM slo_1m
  WHERE dt >= CAST(current_date - INTERVAL '1' DAY AS varchar)
)
WHERE latest = 1
ORDER BY budget_remaining_pct;""",
        ),
        "quota_peaks_7d.sql": _query(
            """
Peak quota use per provider, model and region and day over the last 7 days, with the minutes
at or over 80% and the app that used most at the peak (quota_1m, genai_apm/data/quotas.toml).""",
            """
SELECT provider, model_id, region, dt,
  MAX(use_pct) AS peak_use_pct,
  COUNT_IF(use_pct >= 80) AS minutes_over_80_pct,
  MAX_BY(top_app, use_pct) AS top_app_at_peak,
  SUM(throttles) AS throttles
FROM quota_1m
WHERE dt >= CAST(current_date - INTERVAL '7' DAY AS varchar)
GROUP BY 1, 2, 3, 4
ORDER BY peak_use_pct DESC;""",
        ),
        "root_anomalies_7d.sql": _query(
            """
Anomaly incidents of the last 7 days that no other key's anomaly explains (the root causes,
what to page on), newest first, with the incidents they explain beside them: an app's prompt
spike also opens incidents on its models, each with explained_by = 'app <id>'.""",
            """
WITH opened AS (
  SELECT * FROM anomalies
  WHERE event = 'open' AND dt >= CAST(current_date - INTERVAL '7' DAY AS varchar)
)
SELECT r.alert_time, r.dimension, r."key", r.severity, r.score, r.metrics, r.explanation,
  (SELECT COUNT(*) FROM opened e
   WHERE e.explained_by = concat(r.dimension, ' ', r."key")
     AND e.alert_time BETWEEN r.alert_time - INTERVAL '10' MINUTE
                          AND r.alert_time + INTERVAL '10' MINUTE) AS incidents_explained
FROM opened r
WHERE r.explained_by IS NULL
ORDER BY r.alert_time DESC;""",
        ),
    }


def artifacts(settings: Settings | None = None) -> dict[Path, str]:
    """Every generated file (path relative to the checkout -> text), nothing written."""
    settings = settings or Settings()
    files = {ATHENA_DIR / f"{t.name}.sql": table_ddl(t) for t in derived_tables(settings)}
    files |= contract_files()
    files |= {
        ATHENA_DIR / "queries" / name: text for name, text in example_queries(settings).items()
    }
    return files


def stale(root: Path = ROOT) -> list[Path]:
    from genai_apm import generated_files

    return generated_files.stale(artifacts(), root)


def rendered(tables_path: str, settings: Settings | None = None) -> str:
    """Every table's DDL for tables under ``tables_path`` (s3://bucket[/prefix]), ready to run."""
    if not tables_path.startswith("s3://"):
        raise ValueError(f"{tables_path!r} is not an s3:// URI")
    root = tables_path.rstrip("/")
    statements = []
    for path, text in artifacts(settings).items():
        if path.parent != ATHENA_DIR:
            continue
        body = "\n".join(line for line in text.splitlines() if not line.startswith("--"))
        statements.append(body.replace(ROOT_PLACEHOLDER, root).strip() + "\n")
    return "\n".join(statements)


def write(root: Path = ROOT) -> list[Path]:
    from genai_apm import generated_files

    return generated_files.write(artifacts(), root)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--check", action="store_true", help="fail if a file is out of date")
    parser.add_argument(
        "--tables-path",
        metavar="S3_URI",
        help="print the DDL for tables under this s3:// root instead of writing files",
    )


def run(args) -> int:
    if args.tables_path:
        print(rendered(args.tables_path), end="")
        return 0
    if args.check:
        out_of_date = stale()
        for path in out_of_date:
            print(f"out of date: {path} (run `{COMMAND}`)", file=sys.stderr)
        return 1 if out_of_date else 0
    for path in write():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
