"""What a user would run instead of genai-apm, on the same topic: the same per-minute, per-model
latency percentiles (p50, p90, p99 over successful calls, exact, linear interpolation, as
Flink's PERCENTILE) with request and error counts.

- ``polars_microbatch``: kafka-python polls micro-batches, polars decodes them
  (``read_ndjson``) and aggregates each minute once an event-time watermark (the latest
  event time minus ``WATERMARK_DELAY_MS``) has passed its end; the rest is flushed at the end.
- ``spark_streaming``: Spark Structured Streaming in local mode, Kafka source,
  ``trigger(availableNow=True)``, complete output mode into ``foreachBatch``.

Each returns its result rows (minute_ms, model_id, requests, errors, p50, p90, p99) so the two
can be checked against each other.
"""

from __future__ import annotations

import time
from pathlib import Path

QUANTILES = (0.5, 0.9, 0.99)
WATERMARK_DELAY_MS = 5_000  # genai-apm's default flink.watermark_delay_s
MINUTE_MS = 60_000
BATCH_RECORDS = 50_000
READ_TIMEOUT_S = 600


class AlternativeError(Exception):
    pass


# -- polars --------------------------------------------------------------------------------


def _polars_aggregate(frame):
    import polars as pl

    ok = pl.col("status") == "success"
    return frame.group_by("minute_ms", "model_id").agg(
        pl.len().alias("requests"),
        (pl.col("status") == "error").sum().alias("errors"),
        *(
            pl.col("latency_ms").filter(ok).quantile(q, "linear").alias(f"p{round(q * 100)}")
            for q in QUANTILES
        ),
    )


def polars_microbatch(kafka_settings, topic: str, events: int) -> dict:
    """Consume ``events`` records and aggregate them; the clock runs from the first poll (once
    connected, offsets known) to the last minute aggregated."""
    import polars as pl
    from kafka import KafkaConsumer, TopicPartition

    from genai_apm.kafka_io import client_args, kafka_errors

    schema = {
        "event_time": pl.Int64,
        "model_id": pl.Utf8,
        "status": pl.Utf8,
        "latency_ms": pl.Float64,
    }
    results, pending = [], None
    count, batches, first = 0, 0, None
    newest: dict[int, int] = {}  # partition -> latest event time read from it
    with kafka_errors(kafka_settings):
        consumer = KafkaConsumer(
            **client_args(kafka_settings),
            enable_auto_commit=False,
            max_poll_records=BATCH_RECORDS,
            fetch_max_bytes=64 * 1024 * 1024,
            max_partition_fetch_bytes=16 * 1024 * 1024,
        )
        try:
            tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            for tp in tps:
                consumer.position(tp)  # connect and look the offsets up before the clock runs
            first = time.perf_counter()
            deadline = time.monotonic() + READ_TIMEOUT_S
            while count < events:
                if time.monotonic() > deadline:
                    raise AlternativeError(f"polars: read {count} of {events} records in time")
                polled = consumer.poll(timeout_ms=1000, max_records=BATCH_RECORDS)
                frames = []
                for tp, records in polled.items():
                    frame = pl.read_ndjson(b"\n".join(r.value for r in records), schema=schema)
                    newest[tp.partition] = max(
                        newest.get(tp.partition, 0), frame["event_time"].max()
                    )
                    frames.append(frame)
                if not frames:
                    continue
                count += sum(f.height for f in frames)
                batches += 1
                frame = pl.concat(frames).with_columns(
                    (pl.col("event_time") // MINUTE_MS * MINUTE_MS).alias("minute_ms")
                )
                pending = frame if pending is None else pl.concat([pending, frame])
                if len(newest) < len(tps):
                    continue  # a partition not read yet holds the watermark back, as in Flink
                watermark = min(newest.values()) - WATERMARK_DELAY_MS
                closed = pl.col("minute_ms") + MINUTE_MS <= watermark
                results.append(_polars_aggregate(pending.filter(closed)))
                pending = pending.filter(~closed)
            if pending is not None and pending.height:
                results.append(_polars_aggregate(pending))
            seconds = time.perf_counter() - first
        finally:
            consumer.close()
    rows = pl.concat(results).sort("minute_ms", "model_id")
    # an event later than the watermark gives its minute a second, partial row
    late_rows = rows.height - rows.select("minute_ms", "model_id").n_unique()
    return {
        "events": count,
        "events_per_s": count / seconds,
        "seconds": seconds,
        "micro_batches": batches,
        "late_rows": late_rows,
        "measured": "first poll (connected, offsets known) to the last minute aggregated",
        "rows": [list(r) for r in rows.iter_rows()],
    }


# -- Spark -----------------------------------------------------------------------------------


def spark_session(jars: list[Path], tmp: Path):
    from pyspark.sql import SparkSession

    return (
        SparkSession.builder.master("local[2]")
        .appName("genai-apm bench")
        .config("spark.driver.memory", "1g")
        .config("spark.jars", ",".join(str(j) for j in jars))
        # servers only on the loopback interface, and no web UI
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.local.dir", str(tmp / "spark-local"))
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )


def spark_query(spark, bootstrap: str, topic: str, checkpoint: Path) -> tuple[float, list]:
    """One availableNow query over the whole topic: (wall seconds, final result rows)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType

    schema = StructType(
        [
            StructField("event_time", LongType()),
            StructField("model_id", StringType()),
            StructField("status", StringType()),
            StructField("latency_ms", DoubleType()),
        ]
    )
    events = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
        .load()
        .select(F.from_json(F.col("value").cast("string"), schema).alias("e"))
        .select("e.*")
        .withColumn("minute_ms", F.floor(F.col("event_time") / 60_000) * 60_000)
    )
    ok_latency = F.when(F.col("status") == "success", F.col("latency_ms"))
    table = events.groupBy("minute_ms", "model_id").agg(
        F.count(F.lit(1)).alias("requests"),
        F.sum(F.when(F.col("status") == "error", 1).otherwise(0)).alias("errors"),
        F.percentile(ok_latency, list(QUANTILES)).alias("p"),
    )
    final: list = []

    def keep(batch, _batch_id) -> None:
        # complete mode: every batch holds the whole table; the last one is the result
        final[:] = [
            [r.minute_ms, r.model_id, r.requests, r.errors, *(r.p or [None] * len(QUANTILES))]
            for r in batch.collect()
        ]

    started = time.perf_counter()
    query = (
        table.writeStream.outputMode("complete")
        .foreachBatch(keep)
        .option("checkpointLocation", str(checkpoint))
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination()
    return time.perf_counter() - started, sorted(final, key=lambda r: (r[0], r[1]))


def spark_streaming(
    bootstrap: str, topics: dict[str, str], events: int, baseline_events: int, tmp: Path
) -> dict:
    """Warm-up query on the small topic, then timed queries on the small and the big topic in
    the same session: the rate is marginal, as the Flink rates are."""
    from genai_apm.home import jars

    spark = spark_session(jars("spark"), tmp)
    spark.sparkContext.setLogLevel("ERROR")
    try:
        spark_query(spark, bootstrap, topics["small"], tmp / "ckpt-warmup")
        small_s, _ = spark_query(spark, bootstrap, topics["small"], tmp / "ckpt-small")
        big_s, rows = spark_query(spark, bootstrap, topics["big"], tmp / "ckpt-big")
    finally:
        spark.stop()
    delta = big_s - small_s
    return {
        "events": events,
        "events_per_s": (events - baseline_events) / delta if delta > 0 else None,
        "wall_s": big_s,
        "baseline_wall_s": small_s,
        "events_per_s_incl_query_start": events / big_s,
        "measured": (
            "marginal, one session: (events - baseline) / (wall(big) - wall(small)) after a "
            "warm-up query; Structured Streaming, availableNow, complete mode, local[2], "
            "driver 1g"
        ),
        "rows": rows,
    }


def compare(a: list, b: list) -> dict:
    """How far two result row lists are apart: keys missing on either side, counts that
    differ, and the largest percentile difference in ms."""
    left = {(r[0], r[1]): r for r in a}
    right = {(r[0], r[1]): r for r in b}
    common = left.keys() & right.keys()
    count_diffs = sum(1 for k in common if left[k][2:4] != right[k][2:4])
    pct_diff = max(
        (
            abs(x - y)
            for k in common
            for x, y in zip(left[k][4:], right[k][4:], strict=True)
            if x is not None and y is not None
        ),
        default=0.0,
    )
    return {
        "groups": len(common),
        "only_in_first": len(left.keys() - right.keys()),
        "only_in_second": len(right.keys() - left.keys()),
        "count_mismatches": count_diffs,
        "max_percentile_diff_ms": round(pct_diff, 6),
    }
