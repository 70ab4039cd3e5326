"""What a user would run instead of genai-apm, on the same topic: the same per-minute, per-model
latency percentiles (p50, p90, p99 over successful calls, exact, linear interpolation, as
Flink's PERCENTILE) with request and error counts.

- ``polars_microbatch``: kafka-python polls micro-batches, polars decodes them
  (``read_ndjson``) and aggregates each minute once an event-time watermark (the latest
  event time minus ``WATERMARK_DELAY_MS``) has passed its end; the rest is flushed at the end.
- ``spark_streaming``: Spark Structured Streaming in local mode, Kafka source, bounded
  (``trigger(availableNow=True)``), in two forms: ``spark_complete`` (no watermark, complete
  output mode, one micro-batch) and ``spark_stream`` (5 s event-time watermark, append output
  mode, 50k records per micro-batch). Both write JSON rows to a Kafka topic with Spark's Kafka
  sink, which is at-least-once; the Flink table rows in bench/run.py write the same rows to
  the same kind of sink with the same guarantee.

polars returns its result rows (minute_ms, model_id, requests, errors, p50, p90, p99);
``read_table`` reads the same rows back from an output topic, so every table can be checked
against polars group by group (``compare``).
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

    from genai_apm.kafka.io import client_args, kafka_errors

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
            first, first_epoch = time.perf_counter(), time.time()
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
        "processing_s": seconds,
        "phase_start": first_epoch,
        "phase_end": first_epoch + seconds,
        "micro_batches": batches,
        "late_rows": late_rows,
        "measured": "first poll (connected, offsets known) to the last minute aggregated",
        "rows": [list(r) for r in rows.iter_rows()],
    }


# -- Spark -----------------------------------------------------------------------------------

SPARK_FORMS = {
    # label -> (output mode, watermark, records per micro-batch or None for one batch)
    "spark_complete": ("complete", False, None),
    "spark_stream": ("append", True, BATCH_RECORDS),
}


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


def spark_table(spark, bootstrap: str, topic: str, *, watermark: bool, max_offsets: int | None):
    """The per-minute per-model table over ``topic`` as a streaming DataFrame of JSON values
    (the same columns as the Flink rows write: window, window_start, window_end, model_id,
    requests, errors, p50, p90, p99)."""
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
    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
    )
    if max_offsets:
        reader = reader.option("maxOffsetsPerTrigger", str(max_offsets))
    events = (
        reader.load()
        .select(F.from_json(F.col("value").cast("string"), schema).alias("e"))
        .select("e.*")
        .withColumn("event_ts", F.timestamp_millis("event_time"))
    )
    if watermark:
        events = events.withWatermark("event_ts", f"{WATERMARK_DELAY_MS // 1000} seconds")
    ok_latency = F.when(F.col("status") == "success", F.col("latency_ms"))
    iso = "yyyy-MM-dd'T'HH:mm:ss'Z'"
    return (
        events.groupBy(F.window("event_ts", "1 minute").alias("w"), "model_id")
        .agg(
            F.count(F.lit(1)).alias("requests"),
            F.sum(F.when(F.col("status") == "error", 1).otherwise(0)).alias("errors"),
            F.percentile(ok_latency, list(QUANTILES)).alias("p"),
        )
        .select(
            F.lit("1m").alias("window"),
            F.date_format("w.start", iso).alias("window_start"),
            F.date_format("w.end", iso).alias("window_end"),
            "model_id",
            "requests",
            "errors",
            *(F.col("p")[i].alias(f"p{round(q * 100)}") for i, q in enumerate(QUANTILES)),
        )
    )


def spark_query(
    spark,
    bootstrap: str,
    topic: str,
    out_topic: str,
    checkpoint: Path,
    form: str,
    trigger: dict | None = None,
):
    """Start the per-minute table query of ``form`` (SPARK_FORMS) writing JSON rows to
    ``out_topic`` with Spark's Kafka sink (at-least-once, the only guarantee it has)."""
    mode, watermark, max_offsets = SPARK_FORMS[form]
    table = spark_table(spark, bootstrap, topic, watermark=watermark, max_offsets=max_offsets)
    from pyspark.sql import functions as F

    writer = (
        table.select(F.to_json(F.struct("*")).alias("value"))
        .writeStream.outputMode(mode)
        .format("kafka")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("topic", out_topic)
        .option("checkpointLocation", str(checkpoint))
        .trigger(**(trigger or {"availableNow": True}))
    )
    return writer.start()


def query_phases(query) -> dict:
    """Processing time from the query's own progress reports: the sum of its micro-batches'
    triggerExecution, and the span from the first batch's start to the last one's end."""
    batches = [p for p in query.recentProgress if p.get("numInputRows") is not None]
    if not batches:
        raise AlternativeError("spark: the query reported no progress")
    starts = [_iso_epoch(p["timestamp"]) for p in batches]
    durations = [p["durationMs"].get("triggerExecution", 0) / 1000 for p in batches]
    return {
        "processing_s": sum(durations),
        "phase_start": min(starts),
        "phase_end": max(s + d for s, d in zip(starts, durations, strict=True)),
        "micro_batches": len(batches),
        "input_rows": sum(p["numInputRows"] for p in batches),
    }


def _iso_epoch(text: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def spark_streaming(bootstrap: str, topics: dict[str, str], events: int, tmp: Path) -> dict:
    """In one session: a warm-up query on the small topic (not measured), then one bounded
    (availableNow) query per form over the big topic, each to its own output topic. Rates
    come from the queries' progress reports: processing time, not session or query start."""
    from genai_apm.home import jars

    spark = spark_session(jars("spark"), tmp)
    spark.sparkContext.setLogLevel("ERROR")
    out = {}
    try:
        spark_query(
            spark,
            bootstrap,
            topics["small"],
            topics["warmup_out"],
            tmp / "ckpt-warmup",
            "spark_complete",
        ).awaitTermination()
        for form in SPARK_FORMS:
            started = time.perf_counter()
            query = spark_query(
                spark, bootstrap, topics["big"], topics[form], tmp / f"ckpt-{form}", form
            )
            query.awaitTermination()
            wall = time.perf_counter() - started
            phases = query_phases(query)
            if phases["input_rows"] != events:
                raise AlternativeError(f"{form}: read {phases['input_rows']} of {events} records")
            mode, watermark, max_offsets = SPARK_FORMS[form]
            out[form] = phases | {
                "events": events,
                "events_per_s": events / phases["processing_s"],
                "wall_s": wall,
                "output_mode": mode,
                "watermark": f"{WATERMARK_DELAY_MS // 1000} s" if watermark else None,
                "max_offsets_per_trigger": max_offsets,
            }
    finally:
        spark.stop()
    return out


def spark_paced(bootstrap: str, topic: str, out_topic: str, tmp: Path, stop_file: Path) -> None:
    """The streaming form on live traffic (default trigger: the next micro-batch as soon as the
    last ends) until ``stop_file`` exists: its output rows' freshness is measured outside."""
    from genai_apm.home import jars

    spark = spark_session(jars("spark"), tmp)
    spark.sparkContext.setLogLevel("ERROR")
    try:
        query = spark_query(
            spark,
            bootstrap,
            topic,
            out_topic,
            tmp / "ckpt-paced",
            "spark_stream",
            trigger={"processingTime": "0 seconds"},
        )
        print("submitted spark paced query", flush=True)
        while not stop_file.exists() and query.isActive:
            time.sleep(0.5)
        if query.exception():
            raise AlternativeError(f"spark paced query: {query.exception()}")
        query.stop()
    finally:
        spark.stop()


def read_table(kafka_settings, topic: str) -> list:
    """Every row of a per-minute table topic, as [minute_ms, model_id, requests, errors,
    p50, p90, p99] sorted by minute and model (the form ``compare`` takes)."""
    import json

    from kafka import KafkaConsumer, TopicPartition

    from genai_apm.kafka.io import client_args, end_offsets, kafka_errors

    ends = end_offsets(kafka_settings, topic)
    rows = []
    with kafka_errors(kafka_settings):
        consumer = KafkaConsumer(**client_args(kafka_settings), enable_auto_commit=False)
        try:
            tps = [TopicPartition(topic, p) for p in sorted(ends)]
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            deadline = time.monotonic() + 60
            while any(consumer.position(tp) < ends[tp.partition] for tp in tps):
                if time.monotonic() > deadline:
                    raise AlternativeError(f"reading {topic}: not at its end in 60 s")
                for records in consumer.poll(timeout_ms=500).values():
                    rows.extend(json.loads(r.value) for r in records)
        finally:
            consumer.close()
    table = [
        [
            round(_iso_epoch(r["window_start"]) * 1000),
            r["model_id"],
            r["requests"],
            r["errors"],
            *(r[f"p{round(q * 100)}"] for q in QUANTILES),
        ]
        for r in rows
    ]
    return sorted(table, key=lambda r: (r[0], r[1]))


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
