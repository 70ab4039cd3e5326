"""Quantiles recomputed from the mergeable latency histograms, over any span or dimension.

Every latency row carries `latency_hist`: bucket index -> count of successful calls, where
bucket i holds latencies in (gamma^(i-1), gamma^i] and gamma = (1 + a) / (1 - a) for the
configured relative error a (1% by default). Summing buckets merges windows, apps or models
exactly; reading a quantile back gives 2 gamma^i / (gamma + 1) for the bucket holding the
value at rank floor(q (N - 1)), which is within a of that value (DDSketch's guarantee).
The same SQL for Athena is in docs/latency-rollups.md.
"""

from __future__ import annotations

from genai_apm.schemas.outputs import histogram_gamma

# DuckDB over the Parquet table latency_1m: per model and hour, from the rollup-over-apps
# rows (app_id = '*'). $gamma and $q are bound parameters.
HOURLY_MODEL_QUANTILE_DUCKDB = """
WITH buckets AS (
  SELECT model_id, date_trunc('hour', window_start) AS hour,
         CAST(h.key AS INTEGER) AS bucket, SUM(h.value) AS n
  FROM (SELECT model_id, window_start, unnest(map_entries(latency_hist)) AS h
        FROM latency_1m WHERE app_id = '*')
  GROUP BY ALL
), ranked AS (
  SELECT *, SUM(n) OVER (PARTITION BY model_id, hour ORDER BY bucket) AS cumulative,
            SUM(n) OVER (PARTITION BY model_id, hour) AS total
  FROM buckets
)
SELECT model_id, hour, total AS calls,
       2 * pow($gamma, MIN(bucket)) / ($gamma + 1) AS latency_ms
FROM ranked
WHERE cumulative > floor($q * (total - 1))
GROUP BY model_id, hour, total
ORDER BY model_id, hour
"""


def hourly_model_quantile(tables_path: str, q: float, relative_error: float = 0.01) -> list:
    """(model_id, hour, calls, latency_ms) rows, read with DuckDB from the Parquet tables."""
    import duckdb

    con = duckdb.connect()
    files = f"{tables_path}/latency_1m/*/*/[!._]*".replace("'", "''")
    con.execute(
        f"CREATE VIEW latency_1m AS SELECT * FROM read_parquet('{files}', hive_partitioning = true)"
    )
    gamma = histogram_gamma(relative_error)
    return con.execute(HOURLY_MODEL_QUANTILE_DUCKDB, {"gamma": gamma, "q": q}).fetchall()
