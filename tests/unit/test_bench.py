"""The pure parts of bench/: freshness and memory arithmetic, the polars aggregation the
alternatives are checked with, and the README rewrite. The measurements themselves run only
in `make bench`."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import polars as pl
import pytest

from bench import alternatives, freshness, report

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp()


def _iso(epoch_s: float) -> str:
    return dt.datetime.fromtimestamp(epoch_s, dt.UTC).isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize("q", [0.0, 0.5, 0.9, 0.99, 1.0])
def test_percentile_interpolates_as_numpy(q):
    values = list(np.random.default_rng(3).exponential(2.0, 101))
    assert freshness.percentile(values, q) == pytest.approx(np.percentile(values, q * 100))
    assert freshness.percentile([], q) is None


def test_freshness_skips_partial_and_unclosed_windows():
    produce_start, produce_end = T0 + 30, T0 + 30 + 4 * 60
    rows, expected = [], []
    for minute in range(6):
        start, end = T0 + minute * 60, T0 + (minute + 1) * 60
        for model, lag in (("a", 5.5 + minute), ("b", 6.0 + minute)):
            row = {"window_start": _iso(start), "window_end": _iso(end), "model_id": model}
            rows.append((end + lag, row))
            # minute 0 began before the first event; minutes 4 and 5 end after the last one
            if 1 <= minute <= 3:
                expected.append(lag)
    result = freshness.freshness(rows, produce_start, produce_end)
    assert result["windows"] == 3 and result["rows"] == 6
    assert result["p50_s"] == pytest.approx(np.percentile(expected, 50), abs=0.01)
    assert result["p99_s"] == pytest.approx(np.percentile(expected, 99), abs=0.01)
    assert result["max_s"] == pytest.approx(max(expected), abs=0.01)
    # a window is complete when its last row (model b's, 6 s + minute) is readable
    assert result["window_complete_p50_s"] == pytest.approx(np.median([7.0, 8.0, 9.0]), abs=0.01)


@pytest.mark.parametrize("growth", [0.0, 0.5])
def test_lag_trend_is_the_least_squares_slope_of_window_freshness(growth):
    produce_start, produce_end = T0 + 30, T0 + 30 + 10 * 60
    rows, points = [], []
    for minute in range(12):
        start, end = T0 + minute * 60, T0 + (minute + 1) * 60
        lag = 5.5 + growth * minute  # a job falling behind reads each window later
        rows.append((end + lag - 0.3, {"window_start": _iso(start), "window_end": _iso(end)}))
        rows.append((end + lag, {"window_start": _iso(start), "window_end": _iso(end)}))
        if 1 <= minute <= 9:  # whole windows inside the produce span
            points.append((end, lag))
    trend = freshness.lag_trend(rows, produce_start, produce_end)
    slope = np.polyfit([t for t, _ in points], [lag for _, lag in points], 1)[0]
    assert trend["windows"] == len(points)
    assert trend["slope_s_per_min"] == pytest.approx(slope * 60, abs=1e-3)
    assert trend["first_third_p50_s"] == pytest.approx(np.median([p[1] for p in points[:3]]))
    assert trend["last_third_p50_s"] == pytest.approx(np.median([p[1] for p in points[-3:]]))


def test_until_stops_a_stream_at_the_deadline(monkeypatch):
    clock = iter([100.0, 100.5, 101.0, 102.0])
    monkeypatch.setattr(freshness.time, "time", lambda: next(clock))
    assert list(freshness.until(iter(range(10)), 101.0)) == [0, 1]


def test_soak_rate_is_80_percent_of_all_p1_unless_given():
    from types import SimpleNamespace

    from bench import run

    measured = {"pipeline": {"all_p1": {"events_per_s": 12_500.0}}}
    b = SimpleNamespace(args=SimpleNamespace(fresh_rate=None))
    assert run.soak_rate(b, measured)[0] == 10_000
    assert run.soak_rate(b, {})[0] == 1_000  # nothing measured: the fixed default
    b.args.fresh_rate = 3_000
    assert run.soak_rate(b, measured) == (3_000, "--fresh-rate")


def test_memory_trend_slope_is_the_second_half_least_squares_fit():
    times = np.arange(0, 600, 5.0)
    rss = np.where(times < 300, 200 + times, 500 + 0.1 * times)  # warm-up, then a slow creep
    samples = list(zip(times.tolist(), rss.tolist(), strict=True))
    trend = freshness.memory_trend(samples)
    half = samples[len(samples) // 2 :]
    slope_per_s = np.polyfit([t for t, _ in half], [m for _, m in half], 1)[0]
    assert trend["slope_mb_per_min_second_half"] == pytest.approx(slope_per_s * 60, abs=0.01)
    assert trend["peak_mb"] == max(rss) and trend["first_mb"] == rss[0]


def test_polars_aggregate_matches_numpy_per_minute_and_model():
    rng = np.random.default_rng(5)
    n = 2_000
    frame = pl.DataFrame(
        {
            "minute_ms": (rng.integers(0, 3, n) * 60_000).tolist(),
            "model_id": rng.choice(["m1", "m2"], n).tolist(),
            "status": rng.choice(["success", "error"], n, p=[0.9, 0.1]).tolist(),
            "latency_ms": rng.lognormal(6, 0.5, n).round(3).tolist(),
        }
    )
    out = {(r[0], r[1]): r for r in alternatives._polars_aggregate(frame).iter_rows()}
    assert len(out) == 6
    for (minute, model), row in out.items():
        rows = frame.filter((pl.col("minute_ms") == minute) & (pl.col("model_id") == model))
        ok = rows.filter(pl.col("status") == "success")["latency_ms"].to_numpy()
        assert row[2] == rows.height
        assert row[3] == (rows["status"] == "error").sum()
        assert list(row[4:]) == pytest.approx([np.percentile(ok, q) for q in (50, 90, 99)])


def test_compare_reports_missing_groups_count_and_percentile_differences():
    a = [[0, "m1", 10, 1, 100.0, 200.0, 300.0], [0, "m2", 5, 0, 50.0, 60.0, 70.0]]
    b = [[0, "m1", 10, 2, 100.0, 200.5, 300.0], [60_000, "m2", 5, 0, 50.0, 60.0, 70.0]]
    assert alternatives.compare(a, b) == {
        "groups": 1,
        "only_in_first": 1,
        "only_in_second": 1,
        "count_mismatches": 1,
        "max_percentile_diff_ms": 0.5,
    }
    assert alternatives.compare(a, a)["max_percentile_diff_ms"] == 0.0


def test_readme_rewrite_replaces_only_between_the_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\nbefore\n{report.BEGIN}\nold table\n{report.END}\nafter\n")
    assert report.rewrite_readme(readme, "| new |")
    assert readme.read_text() == f"# x\nbefore\n{report.BEGIN}\n| new |\n{report.END}\nafter\n"
    plain = tmp_path / "plain.md"
    plain.write_text("no markers\n")
    assert not report.rewrite_readme(plain, "| new |")
    assert plain.read_text() == "no markers\n"


def test_section_shows_every_measured_row_and_ratio():
    result = {
        "date": "2026-11-27T00:00:00Z",
        "command": "make bench",
        "bench_s": 600.0,
        "events": 1000,
        "topic": {"mean_value_bytes": 650, "partitions": 2},
        "machine": {
            "cores": 2,
            "cpu": "cpu",
            "memory_gb": 8.0,
            "java": "java 17",
            "apache_flink": "2.2.1",
            "python": "3.11",
        },
        "ceilings": {"flink_json_source_p1": {"events_per_s": 100_000.0}},
        "pipeline": {"all_p1": {"events_per_s": 30_000.0, "what": "all analyses, p1"}},
        "alternatives": {"polars": {"events_per_s": 15_000.0}, "spark": {"error": "boom"}},
        "ratios": {"all_p1": {"of_flink_source": 0.3, "of_polars": 2.0, "of_spark": None}},
        "targets": {
            "all_analyses_of_flink_ceiling_ge_60pct": False,
            "faster_than_polars": True,
            "faster_than_spark": None,
            "freshness_p99_le_5s": None,
            "memory_slope_mb_per_min": None,
        },
    }
    text = report.section(result)
    assert "| ceiling: Flink Kafka source, JSON format -> blackhole, p1 | 100,000 |" in text
    assert "| pipeline: all analyses, p1 | 30,000 |" in text
    assert "| 30% | 2.00x |  |" in text
    assert "Spark Structured Streaming, local[2] | failed (see JSON)" in text
    assert "Flink JSON source: missed; faster than polars: met; faster than Spark: not" in text
    json.dumps(result)  # the section reads nothing a JSON round trip would lose


def test_freshness_line_gives_committed_and_written_freshness():
    fresh = {
        "job": "all",
        "rate_per_s": 4000,
        "rate_from": "--fresh-rate",
        "achieved_rate_per_s": 3990,
        "seconds": 600,
        "traffic": "10 models x 10 apps x 1000 users",
        "watermark_delay_s": 5,
        "idle_timeout_s": 10,
        "checkpoint_interval_s": 60,
        "delivery_guarantee": "exactly-once",
        "freshness": {"rows": 900, "windows": 9, "p50_s": 36.5, "p99_s": 66.1},
        "freshness_written": {"rows": 900, "windows": 9, "p50_s": 6.2, "p99_s": 15.2},
        "lag": {"first_third_p50_s": 9.0, "last_third_p50_s": 8.4, "slope_s_per_min": -0.5},
        "memory": {"first_mb": 1000, "peak_mb": 2000, "last_mb": 1900},
    }
    (line,) = report.freshness_lines({"freshness": fresh})
    assert "exactly-once with a checkpoint every 60 s" in line
    assert (
        "read_committed consumer over 900 rows of 9 closed 1-minute windows: p50 36.5 s, p99 66.1 s"
        in line
    )
    assert "what at-least-once delivery shows): p50 6.2 s, p99 15.2 s" in line
