"""What `genai-apm report` shows, computed with DuckDB over the jobs' Parquet tables.

Tables are found as `genai-apm query` finds them (genai_apm/serve/query.py): every folder under
``output.tables_path`` with committed ``dt=/hour=`` Parquet files is a view of its name, and
s3:// roots are fetched with boto3 first. Each function here returns plain Python values
(epoch milliseconds for times) for genai_apm/serve/report.py to draw; a table that is missing
returns nothing, so its panel says "no data" instead of failing.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from genai_apm.errors import GenaiApmError
from genai_apm.record_filter import parse_since  # noqa: F401 - the report's --since
from genai_apm.schemas import outputs
from genai_apm.schemas.outputs import ALL
from genai_apm.serve import query
from genai_apm.settings.config import Settings

ERROR_CLASSES = (  # errors_* column -> legend label
    ("client_errors", "client"),
    ("server_errors", "server"),
    ("throttles", "throttled"),
    ("timeouts", "timeout"),
    ("unclassified_errors", "unclassified"),
    ("content_filtered", "content filtered (a success)"),
)
PERCENTILES = ("p50", "p90", "p99")


@dataclass(frozen=True)
class TableNames:
    """The tables the report reads, named from the settings that name the jobs' windows."""

    latency: str
    errors: str
    cost: str
    anomalies: str = "anomalies"
    sessions: str = "sessions"
    slo: str = "slo_1m"
    quota: str = "quota_1m"

    @classmethod
    def from_settings(cls, settings: Settings) -> TableNames:
        # the finest window of each: tumbling, so windows do not overlap and sums hold
        return cls(**outputs.finest(settings))

    def all(self) -> tuple[str, ...]:
        return (
            self.latency,
            self.errors,
            self.cost,
            self.anomalies,
            self.sessions,
            self.slo,
            self.quota,
        )


def _committed_files(folder: Path, written_after: float | None) -> list[Path]:
    files = [
        f for f in sorted(folder.glob("dt=*/hour=*/*")) if f.is_file() and query._committed(f.name)
    ]
    if written_after is not None:
        files = [f for f in files if f.stat().st_mtime >= written_after]
    return files


@contextmanager
def open_tables(
    settings: Settings,
    names: TableNames,
    tables_path: str | None = None,
    written_after: float | None = None,
) -> Iterator[tuple[object, Path, set[str]]]:
    """(DuckDB connection, local folder, view names) over the tables under ``tables_path``.

    ``written_after`` (epoch seconds) keeps only files written since then: the demo's report
    shows its own run, not earlier runs over the same event time that share the folder.
    """
    import duckdb

    root = tables_path or settings.output.tables_path
    with tempfile.TemporaryDirectory(prefix="genai-apm-report-") as scratch:
        if root.startswith("s3://"):
            query.download_tables(settings, root, " ".join(names.all()), Path(scratch))
            folder = Path(scratch)
        else:
            folder = Path(root.removeprefix("file://"))
        if not folder.is_dir():
            raise GenaiApmError(f"no tables under {root} (run `make run` or a job first)")
        con = duckdb.connect()
        try:
            con.execute("SET TimeZone = 'UTC'")
            views = set()
            for name, path in query.local_tables(folder).items():
                files = _committed_files(path, written_after)
                if not files:
                    continue
                listed = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
                con.execute(
                    f'CREATE VIEW "{name}" AS SELECT * FROM read_parquet([{listed}], '
                    f"hive_partitioning = true, hive_types = {query.HIVE_TYPES}, "
                    "union_by_name = true)"
                )
                views.add(name)
            yield con, folder, views
        finally:
            con.close()


def since_ms(since: dt.datetime | None) -> int:
    return int(since.timestamp() * 1000) if since else -(2**62)


def latest_time(con, views: set[str], names: TableNames) -> dt.datetime | None:
    """The end of the newest window of the latency (else errors, else cost) table."""
    for table in (names.latency, names.errors, names.cost):
        if table in views:
            (ms,) = con.execute(f'SELECT max(epoch_ms(window_end)) FROM "{table}"').fetchone()
            if ms is not None:
                return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    return None


def _columns(con, table: str) -> list[str]:
    return [r[0] for r in con.execute(f'DESCRIBE "{table}"').fetchall()]


def repeated_windows(con, views: set[str], table: str) -> int:
    """Windows present more than once for one key: several runs over the same event time."""
    if table not in views:
        return 0
    (n,) = con.execute(
        f"SELECT count(*) FROM (SELECT 1 FROM \"{table}\" WHERE app_id = '{ALL}' "
        "GROUP BY window_start, model_id HAVING count(*) > 1)"
    ).fetchone()
    return n


def latency_series(
    con, views: set[str], table: str, since: dt.datetime | None
) -> dict[str, dict[str, list[tuple[int, float | None]]]]:
    """model_id (``*`` for all models) -> column (``latency_p99_ms``, ``ttft_p50_ms``, ...) ->
    [(window start ms, value)], from the per-model rows (app_id = '*'). Repeated windows
    (see ``repeated_windows``) are averaged."""
    if table not in views:
        return {}
    present = set(_columns(con, table))
    wanted = [
        f"{metric}_{p}_ms"
        for metric in ("latency", "ttft")
        for p in PERCENTILES
        if f"{metric}_{p}_ms" in present
    ]
    rows = con.execute(
        "SELECT model_id, epoch_ms(window_start) AS t, "
        + ", ".join(f'avg("{c}")' for c in wanted)
        + f' FROM "{table}" WHERE app_id = ? AND epoch_ms(window_start) >= ? '
        "GROUP BY model_id, t ORDER BY model_id, t",
        [ALL, since_ms(since)],
    ).fetchall()
    out: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for model, t, *values in rows:
        for column, value in zip(wanted, values, strict=True):
            out[model][column].append((t, value))
    return {m: dict(cols) for m, cols in out.items()}


def _error_sums(
    con, views: set[str], table: str, since: dt.datetime | None, key: str, where: str, order: str
) -> tuple[list, dict[str, list[int]]]:
    """Calls per error class, grouped by ``key`` (over app_id '*' and the rows ``where``)."""
    if table not in views:
        return [], {}
    present = set(_columns(con, table))
    classes = [(c, label) for c, label in ERROR_CLASSES if c in present]
    rows = con.execute(
        f"SELECT {key} AS k, "
        + ", ".join(f'coalesce(sum("{c}"), 0)' for c, _ in classes)
        + f' FROM "{table}" WHERE {where} AND app_id = ? AND epoch_ms(window_start) >= ? '
        f"GROUP BY k ORDER BY {order}",
        [ALL, ALL, since_ms(since)],
    ).fetchall()
    keys = [r[0] for r in rows]
    return keys, {label: [int(r[i + 1]) for r in rows] for i, (_, label) in enumerate(classes)}


def error_breakdown(
    con, views: set[str], table: str, since: dt.datetime | None
) -> tuple[list[int], dict[str, list[int]]]:
    """Window starts (ms) and, per error class, the calls of each window over all models."""
    return _error_sums(con, views, table, since, "epoch_ms(window_start)", "model_id = ?", "k")


def error_breakdown_by_model(
    con, views: set[str], table: str, since: dt.datetime | None
) -> tuple[list[str], dict[str, list[int]]]:
    """Models (busiest first) and, per error class, their calls over the whole period."""
    return _error_sums(
        con, views, table, since, "model_id", "model_id <> ?", "sum(requests) DESC, k"
    )


@dataclass(frozen=True)
class Spend:
    key: str
    requests: int
    input_tokens: int
    output_tokens: int
    cost_usd: float


def spend(
    con, views: set[str], table: str, dimension: str, since: dt.datetime | None, top: int = 12
) -> list[Spend]:
    """The ``top`` keys of one cost dimension (app, user, model, ...) by spend."""
    if table not in views:
        return []
    rows = con.execute(
        "SELECT key, sum(requests), sum(input_tokens), sum(output_tokens), "
        f'coalesce(sum(cost_usd), 0) AS usd FROM "{table}" '
        "WHERE dimension = ? AND epoch_ms(window_start) >= ? "
        "GROUP BY key ORDER BY usd DESC, key LIMIT ?",
        [dimension, since_ms(since), top],
    ).fetchall()
    return [Spend(k, int(r or 0), int(i or 0), int(o or 0), float(c)) for k, r, i, o, c in rows]


def _dicts(cursor) -> list[dict]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def anomalies(con, views: set[str], table: str, since: dt.datetime | None) -> list[dict]:
    """Anomaly events (open, close, outlier), oldest first, times as epoch ms."""
    if table not in views:
        return []
    return _dicts(
        con.execute(
            "SELECT epoch_ms(alert_time) AS alert_ms, epoch_ms(window_start) AS start_ms, "
            "epoch_ms(window_end) AS end_ms, event, state, dimension, key, metric, metrics, "
            f'observed, baseline, score, severity, explanation, explained_by FROM "{table}" '
            "WHERE epoch_ms(alert_time) >= ? ORDER BY alert_time, dimension, key",
            [since_ms(since)],
        )
    )


def sessions(
    con, views: set[str], table: str, since: dt.datetime | None, limit: int = 50
) -> tuple[int, list[dict]]:
    """(sessions in the period, the ``limit`` most recent of them)."""
    if table not in views:
        return 0, []
    where = "WHERE epoch_ms(session_start) >= ?"
    (total,) = con.execute(f'SELECT count(*) FROM "{table}" {where}', [since_ms(since)]).fetchone()
    rows = _dicts(
        con.execute(
            "SELECT session_start, conversation_id, agent_name, duration_ms, turns, llm_calls, "
            "tool_calls, llm_errors + tool_errors AS errors, input_tokens + output_tokens AS "
            f'tokens, cost_usd, final_status FROM "{table}" {where} '
            "ORDER BY session_start DESC, conversation_id LIMIT ?",
            [since_ms(since), limit],
        )
    )
    return total, rows


def _ms(value) -> int | None:
    if value in (None, ""):
        return None
    if isinstance(value, int | float):
        return int(value)
    return int(dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp() * 1000)


def alert_rows(folder: Path) -> list[dict]:
    """Alert transitions a bounded run wrote as JSON lines under ``<tables>/alerts`` (streaming
    jobs send them to the alerts topic instead: the demo passes what it read there)."""
    rows = []
    for f in sorted((folder / "alerts").glob("**/*")):
        if f.is_file() and query._committed(f.name):
            rows += [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    return rows


def alert_lanes(
    alerts: list[dict], since: dt.datetime | None, period_end_ms: int | None
) -> list[tuple[str, list[tuple[int, int, str]]]]:
    """Per rule and key, its ALARM spans: from a transition to ALARM until the next to OK (or
    the end of the period, if it never came back)."""
    by_lane: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for a in alerts:
        at = _ms(a.get("alert_time"))
        if at is None:
            continue
        by_lane[f"{a['rule']} {a['key']}"].append((at, a["state"]))
    end = period_end_ms or max((t for events in by_lane.values() for t, _ in events), default=0)
    lanes = []
    for label in sorted(by_lane):
        spans, opened = [], None
        for at, state in sorted(by_lane[label]):
            if state == "ALARM" and opened is None:
                opened = at
            elif state != "ALARM" and opened is not None:
                spans.append((opened, at, "ALARM"))
                opened = None
        if opened is not None:
            spans.append((opened, max(end, opened), "ALARM"))
        spans = [s for s in spans if s[1] >= since_ms(since)]
        if spans:
            lanes.append((label, spans))
    return lanes


def _series_and_latest(
    con,
    views: set[str],
    table: str,
    since: dt.datetime | None,
    *,
    series_keys: str,
    value: str,
    latest: str,
    partition: str,
    order: str,
) -> tuple[dict[str, list[tuple[int, float | None]]], list[dict]]:
    """A panel of per-minute rows: ("key values" -> [(minute ms, value)], grouped by
    ``series_keys``) and the latest row per ``partition`` (its ``latest`` columns)."""
    if table not in views:
        return {}, []
    rows = con.execute(
        f"SELECT {series_keys}, epoch_ms(window_start) AS t, {value} "
        f'FROM "{table}" WHERE epoch_ms(window_start) >= ? GROUP BY {series_keys}, t '
        f"ORDER BY {series_keys}, t",
        [since_ms(since)],
    ).fetchall()
    series: dict[str, list] = defaultdict(list)
    for *key, t, v in rows:
        series[" ".join(str(k) for k in key)].append((t, v))
    newest = _dicts(
        con.execute(
            f"SELECT {latest} FROM (SELECT *, row_number() OVER (PARTITION BY {partition} "
            f'ORDER BY window_end DESC) AS r FROM "{table}" WHERE epoch_ms(window_start) >= ?) '
            f"WHERE r = 1 ORDER BY {order}",
            [since_ms(since)],
        )
    )
    return dict(series), newest


def slo_budgets(
    con, views: set[str], table: str, since: dt.datetime | None
) -> tuple[dict[str, list[tuple[int, float | None]]], list[dict]]:
    """("slo key" -> [(minute ms, budget remaining %)], the latest row per SLO and key with its
    burn rates), from the jobs/slo.py rows."""
    return _series_and_latest(
        con,
        views,
        table,
        since,
        series_keys="slo, key",
        value="avg(budget_remaining_pct)",
        latest="slo, key, sli, objective_pct, period, epoch_ms(window_end) AS end_ms, "
        "period_sli_pct, budget_remaining_pct, burn_rate_5m, burn_rate_1h, burn_rate_6h, "
        "burn_rate_3d",
        partition="slo, key",
        order="budget_remaining_pct, slo, key",
    )


def quota_use(
    con, views: set[str], table: str, since: dt.datetime | None
) -> tuple[dict[str, list[tuple[int, float | None]]], list[dict]]:
    """("model region" -> [(minute ms, use %)], the latest row per provider, model and region
    with its forecast and top app)."""
    return _series_and_latest(
        con,
        views,
        table,
        since,
        series_keys="model_id, region",
        value="max(use_pct)",
        latest="provider, model_id, region, epoch_ms(window_end) AS end_ms, use_pct, "
        "tpm_limit, rpm_limit, top_app, top_app_share_pct, minutes_to_exhaustion, throttles",
        partition="provider, model_id, region",
        order="use_pct DESC, model_id, region",
    )
