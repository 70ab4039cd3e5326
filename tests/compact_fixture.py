"""Parquet partitions laid out and encoded as Flink's filesystem sink writes them: one file
per checkpoint, INT64 TIMESTAMP(MILLIS) not adjusted to UTC, a MULTISET<STRING> histogram
as a map of string to int32, dt/hour only in the path, a _SUCCESS marker."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

SCHEMA_FIELDS = (
    ("window_start", "timestamp[ms]"),
    ("model_id", "string"),
    ("requests", "int64"),
    ("latency_p99_ms", "double"),
    ("latency_hist", "map<string,int32>"),
)


def schema(extra: bool = False):
    import pyarrow as pa

    fields = [
        pa.field("window_start", pa.timestamp("ms")),
        pa.field("model_id", pa.string()),
        pa.field("requests", pa.int64()),
        pa.field("latency_p99_ms", pa.float64()),
        pa.field("latency_hist", pa.map_(pa.string(), pa.int32())),
    ]
    if extra:  # a later version's column: its files cannot be merged with the others
        fields.append(pa.field("ttft_p50_ms", pa.float64()))
    return pa.schema(fields)


def minute_rows(hour: datetime, minutes: range, seed: int) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for m in minutes:
        for model in ("model-a", "model-b", "model-c"):
            rows.append(
                {
                    "window_start": hour + timedelta(minutes=m),
                    "model_id": model,
                    "requests": rng.randint(1, 500),
                    "latency_p99_ms": rng.uniform(50, 5000) if rng.random() > 0.1 else None,
                    "latency_hist": [(f"b{rng.randint(0, 9)}", rng.randint(1, 50))],
                }
            )
    return rows


def write_checkpoint_file(folder: Path, rows: list[dict], name: str, extra: bool = False) -> Path:
    """One committed file as the sink names it after compaction (no suffix)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    s = schema(extra)
    if extra:
        rows = [{**r, "ttft_p50_ms": 1.0} for r in rows]
    table = pa.Table.from_pylist(rows, schema=s)
    path = folder / name
    pq.write_table(table, path, compression="snappy", store_schema=False)
    return path


def partition(root: Path, table: str, hour: datetime) -> Path:
    return root / table / f"dt={hour:%Y-%m-%d}" / f"hour={hour:%H}"


def hour_of_minute_files(root: Path, table: str, hour: datetime, files: int, seed: int = 1):
    """``files`` checkpoint files splitting the hour's minutes, a _SUCCESS marker; all rows."""
    folder = partition(root, table, hour)
    rows_all: list[dict] = []
    per = 60 // files
    for i in range(files):
        rows = minute_rows(hour, range(i * per, (i + 1) * per), seed * 1000 + i)
        write_checkpoint_file(folder, rows, f"compacted-part-{seed:04d}-{i:04d}-0")
        rows_all += rows
    (folder / "_SUCCESS").touch()
    return folder, rows_all


HOUR = datetime(2026, 12, 2, 13, tzinfo=UTC)
