"""Small Parquet tables in the jobs' layout (``<table>/dt=/hour=/part-*``), for report tests.

Values are seeded random numbers, not results: the tests compute what the report should
show from these files with their own DuckDB queries and compare.
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
MODELS = ("model-a", "model-b", "model-c")
APPS = ("chat", "search", "support")
USERS = tuple(f"u-{i}" for i in range(20))
TS = pa.timestamp("ms")  # as Flink writes them: INT64 millis, UTC, no zone in the type


def _write(root: Path, table: str, rows: list[dict], schema: pa.Schema, part: str = "0") -> Path:
    """One file per (dt, hour) partition of ``rows``' first timestamp column."""
    by_partition: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        t = r[schema.names[0]]
        by_partition.setdefault((t.strftime("%Y-%m-%d"), t.strftime("%H")), []).append(r)
    last = root
    for (day, hour), part_rows in by_partition.items():
        folder = root / table / f"dt={day}" / f"hour={hour}"
        folder.mkdir(parents=True, exist_ok=True)
        columns = {
            name: [
                r[name].replace(tzinfo=None) if name in _times(schema) else r[name]
                for r in part_rows
            ]
            for name in schema.names
        }
        last = folder / f"part-{part}"
        pq.write_table(pa.table(columns, schema=schema), last)
        (folder / "_SUCCESS").touch()
    return last


def _times(schema: pa.Schema) -> set[str]:
    return {f.name for f in schema if pa.types.is_timestamp(f.type)}


LATENCY_SCHEMA = pa.schema(
    [("window_start", TS), ("window_end", TS), ("window", pa.string()), ("model_id", pa.string())]
    + [("app_id", pa.string()), ("requests", pa.int64()), ("errors", pa.int64())]
    + [(f"{m}_{p}_ms", pa.float64()) for m in ("latency", "ttft") for p in ("p50", "p90", "p99")]
)
ERRORS_SCHEMA = pa.schema(
    [("window_start", TS), ("window_end", TS), ("window", pa.string()), ("model_id", pa.string())]
    + [("app_id", pa.string()), ("requests", pa.int64())]
    + [
        (c, pa.int64())
        for c in (
            "client_errors",
            "server_errors",
            "throttles",
            "timeouts",
            "content_filtered",
            "unclassified_errors",
        )
    ]
)
COST_SCHEMA = pa.schema(
    [("window_start", TS), ("window_end", TS), ("window", pa.string()), ("dimension", pa.string())]
    + [("key", pa.string()), ("requests", pa.int64()), ("input_tokens", pa.int64())]
    + [("output_tokens", pa.int64()), ("cost_usd", pa.float64())]
)
ANOMALY_SCHEMA = pa.schema(
    [("alert_time", TS), ("event", pa.string()), ("state", pa.string())]
    + [("previous_state", pa.string()), ("dimension", pa.string()), ("key", pa.string())]
    + [("metrics", pa.string()), ("metric", pa.string()), ("observed", pa.float64())]
    + [("baseline", pa.float64()), ("robust_sd", pa.float64()), ("deviation", pa.float64())]
    + [("score", pa.float64()), ("severity", pa.string()), ("explanation", pa.string())]
    + [("explained_by", pa.string()), ("requests", pa.int64()), ("window", pa.string())]
    + [("window_start", TS), ("window_end", TS)]
)
SESSION_SCHEMA = pa.schema(
    [("session_start", TS), ("session_end", TS), ("conversation_id", pa.string())]
    + [("agent_name", pa.string()), ("service_name", pa.string()), ("duration_ms", pa.float64())]
    + [(c, pa.int64()) for c in ("turns", "failed_turns", "llm_calls", "llm_errors")]
    + [(c, pa.int64()) for c in ("tool_calls", "tool_errors", "agent_cycles", "spans", "traces")]
    + [(c, pa.int64()) for c in ("orphan_spans", "input_tokens", "output_tokens")]
    + [("cost_usd", pa.float64()), ("model_time_ms", pa.float64()), ("tool_time_ms", pa.float64())]
    + [("final_status", pa.string())]
)


def minute(i: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=i)


def write_tables(
    root: Path, *, minutes: int = 90, seed: int = 3, tables: tuple[str, ...] = ()
) -> Path:
    """Write the report's tables under ``root`` (all of them unless ``tables`` names some);
    model-b has no TTFT in window 10 (a gap) and an anomaly incident in windows 40-44."""
    rng = random.Random(seed)
    wanted = set(tables) or {
        "latency_1m",
        "errors_1m",
        "cost_1h",
        "anomalies",
        "sessions",
        "slo_1m",
        "quota_1m",
    }
    _slo_tables(root, wanted)
    latency, errors = [], []
    for i in range(minutes):
        for model in (*MODELS, "*"):
            base = {"model-a": 400, "model-b": 900, "model-c": 1500, "*": 800}[model]
            slow = 3.0 if model == "model-b" and 40 <= i < 45 else 1.0
            p50 = base * slow * rng.uniform(0.9, 1.1)
            ttft = [p50 * f for f in (0.2, 0.4, 0.8)]
            if model == "model-b" and i == 10:
                ttft = [None, None, None]
            requests = rng.randint(50, 80)
            latency.append(
                dict(
                    window_start=minute(i),
                    window_end=minute(i + 1),
                    window="1m",
                    model_id=model,
                    app_id="*",
                    requests=requests,
                    errors=rng.randint(0, 5),
                    latency_p50_ms=p50,
                    latency_p90_ms=p50 * 2.1,
                    latency_p99_ms=p50 * rng.uniform(3, 5),
                    ttft_p50_ms=ttft[0],
                    ttft_p90_ms=ttft[1],
                    ttft_p99_ms=ttft[2],
                )
            )
            errors.append(
                dict(
                    window_start=minute(i),
                    window_end=minute(i + 1),
                    window="1m",
                    model_id=model,
                    app_id="*",
                    requests=requests,
                    client_errors=rng.randint(0, 3),
                    server_errors=rng.randint(0, 2),
                    throttles=rng.randint(0, 9) if 20 <= i < 30 else 0,
                    timeouts=rng.randint(0, 1),
                    content_filtered=rng.randint(0, 2),
                    unclassified_errors=0,
                )
            )
        for app in APPS:  # rows for a single app must not be read as per-model rows
            latency.append({**latency[-1], "model_id": "model-a", "app_id": app})
    cost = []
    for h in range((minutes + 59) // 60):
        for dimension, keys in (("app", APPS), ("user", USERS), ("model", MODELS)):
            for key in keys:
                tokens_in, tokens_out = rng.randint(1_000, 90_000), rng.randint(500, 30_000)
                cost.append(
                    dict(
                        window_start=T0 + dt.timedelta(hours=h),
                        window_end=T0 + dt.timedelta(hours=h + 1),
                        window="1h",
                        dimension=dimension,
                        key=key,
                        requests=rng.randint(10, 500),
                        input_tokens=tokens_in,
                        output_tokens=tokens_out,
                        cost_usd=round(tokens_in * 3e-6 + tokens_out * 15e-6, 6),
                    )
                )
    anomaly_base = dict(
        previous_state=None,
        dimension="model",
        key="model-b",
        metric="latency_p99_ms",
        observed=4000.0,
        baseline=1200.0,
        robust_sd=100.0,
        deviation=28.0,
        explanation="latency_p99_ms 4000 vs 1200",
        explained_by=None,
        requests=60,
        window="1m",
    )
    anomalies = [
        dict(
            anomaly_base,
            alert_time=minute(41),
            event="open",
            state="ALARM",
            metrics="latency_p50_ms,latency_p99_ms",
            score=28.0,
            severity="critical",
            window_start=minute(40),
            window_end=minute(41),
        ),
        dict(
            anomaly_base,
            alert_time=minute(47),
            event="close",
            state="OK",
            previous_state="ALARM",
            metrics="",
            score=0.0,
            severity="none",
            window_start=minute(46),
            window_end=minute(47),
        ),
    ]
    sessions = []
    for s in range(12):
        start = minute(rng.randint(0, minutes - 2))
        sessions.append(
            dict(
                session_start=start,
                session_end=start + dt.timedelta(seconds=rng.randint(5, 90)),
                conversation_id=f"conv-{s:03d}",
                agent_name=rng.choice(("planner", "researcher")),
                service_name="agents",
                duration_ms=float(rng.randint(5_000, 90_000)),
                turns=rng.randint(1, 6),
                failed_turns=0,
                llm_calls=rng.randint(1, 12),
                llm_errors=rng.randint(0, 1),
                tool_calls=rng.randint(0, 8),
                tool_errors=0,
                agent_cycles=rng.randint(1, 4),
                spans=rng.randint(3, 30),
                traces=1,
                orphan_spans=0,
                input_tokens=rng.randint(100, 9_000),
                output_tokens=rng.randint(50, 3_000),
                cost_usd=rng.uniform(0.001, 0.3),
                model_time_ms=1000.0,
                tool_time_ms=500.0,
                final_status=rng.choice(("ok", "ok", "error")),
            )
        )
    for name, rows, schema in (
        ("latency_1m", latency, LATENCY_SCHEMA),
        ("errors_1m", errors, ERRORS_SCHEMA),
        ("cost_1h", cost, COST_SCHEMA),
        ("anomalies", anomalies, ANOMALY_SCHEMA),
        ("sessions", sessions, SESSION_SCHEMA),
    ):
        if name in wanted:
            _write(root, name, rows, schema)
    return root


def alerts(minutes: int = 90) -> list[dict]:
    """Alert transitions as on the alerts topic: a storm alarm that clears, one that stays."""
    iso = lambda t: t.isoformat().replace("+00:00", "Z")  # noqa: E731
    base = dict(kind="threshold", metric="throttle_rate", scope="model", op=">", threshold=0.05)
    return [
        dict(base, alert_time=iso(minute(22)), rule="throttle-storm", key="model-a",
             state="ALARM", previous_state=None, observed=0.12),
        dict(base, alert_time=iso(minute(31)), rule="throttle-storm", key="model-a",
             state="OK", previous_state="ALARM", observed=0.0),
        dict(base, alert_time=iso(minute(minutes - 5)), rule="error-rate", key="*",
             state="ALARM", previous_state=None, observed=0.2),
    ]  # fmt: skip


def _arrow_schema(columns) -> pa.Schema:
    types = {"STRING": pa.string(), "BIGINT": pa.int64(), "DOUBLE": pa.float64()}
    return pa.schema(
        [(n, pa.timestamp("ms") if t.startswith("TIMESTAMP") else types[t]) for n, t in columns]
    )


def _slo_tables(root: Path, wanted: set[str], minutes: int = 30) -> None:
    """slo_1m: SLO avail on m1 (budget falling 2 points a minute) and m2 (0.5); quota_1m: m1 in
    us-east-1 at 2.5% more use each minute."""
    from genai_apm.jobs import slo

    slo_rows, quota_rows = [], []
    for i in range(minutes):
        for key, drop in (("m1", 2.0), ("m2", 0.5)):
            row = {name: 1.0 for name, t in slo.SLO_COLUMNS if t == "DOUBLE"}
            row |= {name: 10 for name, t in slo.SLO_COLUMNS if t == "BIGINT"}
            row |= dict(
                window_start=minute(i),
                window_end=minute(i + 1),
                slo="avail",
                key=key,
                sli="availability",
                scope="model",
                period="30d",
                objective_pct=99.5,
                budget_remaining_pct=100 - drop * i,
                burn_rate_1h=drop,
            )
            slo_rows.append(row)
        row = {name: 2.0 for name, t in slo.QUOTA_COLUMNS if t == "DOUBLE"}
        row |= {name: 3 for name, t in slo.QUOTA_COLUMNS if t == "BIGINT"}
        row |= dict(
            window_start=minute(i),
            window_end=minute(i + 1),
            provider="aws.bedrock",
            model_id="m1",
            region="us-east-1",
            use_pct=2.5 * i,
            top_app="bot",
        )
        quota_rows.append(row)
    if "slo_1m" in wanted:
        _write(root, "slo_1m", slo_rows, _arrow_schema(slo.SLO_COLUMNS))
    if "quota_1m" in wanted:
        _write(root, "quota_1m", quota_rows, _arrow_schema(slo.QUOTA_COLUMNS))
