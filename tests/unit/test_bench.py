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


def test_soak_rate_is_80_percent_of_the_measured_streaming_capacity_unless_given(monkeypatch):
    from types import SimpleNamespace

    from bench import run

    measured_runs = [{"events_per_s": 4_000.0}, {"events_per_s": 6_000.0}]
    asked = []

    def capacity(b, results):  # the real one runs the soak's job twice (Flink, Kafka)
        asked.append(results)
        return run.summarise(measured_runs)

    monkeypatch.setattr(run, "soak_capacity", capacity)
    b = SimpleNamespace(args=SimpleNamespace(fresh_rate=None))
    # the throughput topic's all_p1 rate is only the capacity runs' first guess, not the rate
    rate, why, cap = run.soak_rate(b, {"throughput": {"all_p1": {"events_per_s": 12_500.0}}})
    assert rate == 4_000  # 80% of the median of 4,000 and 6,000
    assert "5,000/s" in why and cap["events_per_s_min"] == 4_000
    measured_runs[:] = [{"events_per_s": None, "error": "boom"}]
    assert run.soak_rate(b, {})[0] == 1_000  # no capacity measured: the fixed default
    b.args.fresh_rate = 3_000
    calls = len(asked)
    assert run.soak_rate(b, {}) == (3_000, "--fresh-rate", None)
    assert len(asked) == calls  # a given rate measures nothing


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


def _runs(rates, cpu=2.0):
    return [
        {"events_per_s": r, "cpu_us_per_event": cpu * (i + 1), "other_cores_busy": 0.1 * i}
        for i, r in enumerate(rates)
    ]


def test_section_shows_every_labelled_row_with_median_spread_cpu_and_ratios():
    from bench import run

    throughput = {
        "flink_json_source": {
            "what": "ceiling: JSON",
            **run.summarise(_runs([90e3, 100e3, 120e3])),
        },
        "all_p1": {"what": "all analyses, p1", **run.summarise(_runs([30e3, 20e3, 40e3]))},
        "flink_table_checked": {"what": "checked table", **run.summarise(_runs([50e3] * 3))},
        "spark_complete": {"what": "Spark complete", **run.summarise(_runs([40e3, 45e3, 60e3]))},
        "spark_stream": {"what": "Spark stream", "error": "boom", "runs": []},
        "agreement": {
            "reference": "polars, first run",
            "flink_table_checked#1": {
                "groups": 10,
                "only_in_first": 0,
                "only_in_second": 0,
                "count_mismatches": 0,
                "max_percentile_diff_ms": 0.0,
                "held_back_last_minute": 0,
            },
            "spark_stream#1": {
                "groups": 8,
                "only_in_first": 2,
                "only_in_second": 0,
                "count_mismatches": 0,
                "max_percentile_diff_ms": 0.0,
                "held_back_last_minute": 2,
            },
        },
    }
    result = {
        "date": "2026-11-27T00:00:00Z",
        "command": "make bench",
        "bench_s": 600.0,
        "events": 1000,
        "repeats": 3,
        "topic": {"mean_value_bytes": 650, "partitions": 2},
        "machine": {
            "cores": 2,
            "cpu": "cpu",
            "memory_gb": 8.0,
            "java": "java 17",
            "apache_flink": "2.2.1",
            "python": "3.11",
            "load_average_at_start": 1.5,
        },
        "ceilings": {"kafka_python": {"events_per_s": 12_000.0}},
        "throughput": throughput,
    }
    result["ratios"] = run.ratios(result)
    result["targets"] = run.targets(result)
    # medians: JSON 100k, all 30k, checked 50k, Spark (the faster form) 45k
    assert result["ratios"]["all_p1"]["of_flink_json_source"] == 0.3
    assert result["ratios"]["flink_table_checked"]["of_spark"] == round(50 / 45, 3)
    assert result["targets"]["all_analyses_ge_60pct_of_ceiling"] is False
    assert result["targets"]["checked_table_ge_spark"] is True
    text = report.section(result)
    assert "| all analyses, p1 | 30,000 | 20,000-40,000 (±33%, n=3) | 4.0 | 30% |" in text
    assert (
        "| checked table | 50,000 | 50,000-50,000 (±0%, n=3) | 4.0 | 50% | 1.11x | 0.10 |" in text
    )
    assert "| Spark stream | failed (see JSON) |" in text
    assert "flink_table_checked#1: 10 groups, equal" in text
    assert "spark_stream#1: 8 groups, equal, max percentile difference 0.0 ms, 2 held back" in text
    assert "3 interleaved runs per row" in text
    assert "(30%): missed; the checked table >= 1.0x the faster Spark form (1.11x): met" in text
    json.dumps(result)  # the section reads nothing a JSON round trip would lose


def test_summarise_gives_median_min_max_of_the_runs_that_succeeded():
    from bench import run

    runs = _runs([10.0, 40.0, 20.0, 30.0]) + [{"events_per_s": None, "error": "stuck"}]
    out = run.summarise(runs)
    assert out["events_per_s"] == np.median([10, 40, 20, 30])
    assert (out["events_per_s_min"], out["events_per_s_max"]) == (10.0, 40.0)
    assert out["spread"] == pytest.approx(30 / 25, abs=1e-3)
    assert out["cpu_us_per_event"] == np.median([2, 4, 6, 8])
    assert (out["repeats"], out["succeeded"], out["errors"]) == (5, 4, ["stuck"])
    assert "error" not in out  # some runs measured: the row stands, the failure is listed
    assert run.summarise([{"events_per_s": None, "error": "x"}])["error"] == "x"


FLINK_LOG = """\
2026-12-02 13:13:23,090 INFO  org.apache.flink.runtime.dispatcher.StandaloneDispatcher [] - \
Submitting job 'genai-apm bench source' (76ade0dd).
2026-12-02 13:13:28,199 INFO  o.a.f.r.executiongraph.ExecutionGraph [] - Source (1/1) switched \
from INITIALIZING to RUNNING.
2026-12-02 13:13:30,365 INFO  o.a.f.c.b.s.reader.fetcher.SplitFetcher [] - Starting split fetcher 0
2026-12-02 13:13:32,665 INFO  o.a.f.SourceReaderBase [] - Finished reading split(s) [t-0]
2026-12-02 13:13:33,705 INFO  o.a.f.SourceReaderBase [] - Finished reading split(s) [t-1]
  at a stack trace line without a time
2026-12-02 13:13:33,835 INFO  o.a.f.c.b.s.reader.fetcher.SplitFetcher [] - Starting split fetcher 1
2026-12-02 13:13:34,391 INFO  o.a.f.r.executiongraph.ExecutionGraph [] - Job genai-apm bench \
source (76ade0dd) switched from state RUNNING to FINISHED.
"""


def test_flink_phases_run_from_the_first_fetcher_to_the_last_split_read(tmp_path):
    from bench import run

    log = tmp_path / "flink.log"
    log.write_text(FLINK_LOG)

    def t(clock: str) -> float:
        return dt.datetime.strptime(f"2026-12-02 {clock}", "%Y-%m-%d %H:%M:%S,%f").timestamp()

    phases = run.flink_phases(log)
    assert phases["phase_start"] == t("13:13:30,365")  # not the later "fetcher 1"
    assert phases["phase_end"] == t("13:13:33,705")
    assert phases["processing_s"] == pytest.approx(33.705 - 30.365)
    assert phases["startup_s"] == pytest.approx(30.365 - 23.090, abs=0.01)
    assert phases["drain_s"] == pytest.approx(34.391 - 33.705, abs=0.01)
    log.write_text(FLINK_LOG.split("Starting split fetcher 0")[0])
    with pytest.raises(run.BenchError, match="no split fetcher start"):
        run.flink_phases(log)


def test_monitor_gives_cpu_of_the_run_and_of_everyone_else_over_a_span():
    from bench import run

    monitor = run.RunMonitor(root=1)
    # (time, run CPU s, bench tree CPU s, machine busy CPU s)
    monitor.samples = [(100.0, 1.0, 3.0, 10.0), (101.0, 2.0, 4.5, 12.0), (102.0, 3.5, 6.0, 14.0)]
    monitor.load_end = 2.0
    out = monitor.between(100.5, 102.0)
    # run: 1.5 at 100.5 (halfway) -> 3.5; bench: 3.75 -> 6.0; machine: 11 -> 14
    assert out["cpu_s"] == pytest.approx(2.0)
    assert out["other_cpu_s"] == pytest.approx((14 - 11) - (6.0 - 3.75))
    assert out["other_cores_busy"] == pytest.approx(0.75 / 1.5, abs=0.01)
    assert run.interpolate(monitor.samples, 99.0, 1) == 1.0  # before the first sample
    assert run.interpolate(monitor.samples, 200.0, 1) == 3.5  # after the last
    assert monitor.between(102.0, 101.0) == {}


def test_tree_cpu_sums_a_process_and_its_descendants_only():
    from bench import run

    table = {1: (0, 1.0), 10: (1, 2.0), 11: (10, 4.0), 20: (0, 8.0), 21: (20, 16.0)}
    assert run.tree_cpu_s(table, 10) == 6.0
    assert run.tree_cpu_s(table, 1) == 7.0
    assert run.tree_cpu_s(table, 99) == 0.0
    # this process: its own CPU time is part of its tree's
    assert run.tree_cpu_s(run.proc_table(), __import__("os").getpid()) > 0


def test_agreement_compares_every_table_with_the_first_polars_run():
    from bench import run

    polars = [[0, "a", 3, 1, 1.0, 2.0, 3.0], [60_000, "a", 2, 0, 1.0, 1.5, 2.0]]
    tables = {
        "polars#1": polars,
        "polars#2": polars,
        "flink_table#1": polars,
        "spark_stream#1": polars[:1],  # the last minute held back by the watermark
        "spark_complete#1": [[0, "a", 3, 2, 1.0, 2.0, 3.0], *polars[1:]],
    }
    out = run.agreement(tables, 5)
    assert "polars#1" not in out and out["polars#2"]["groups"] == 2
    assert out["flink_table#1"]["count_mismatches"] == 0
    assert out["spark_stream#1"]["only_in_first"] == 1
    assert out["spark_stream#1"]["held_back_last_minute"] == 1
    assert out["spark_complete#1"]["count_mismatches"] == 1
    failed = run.failures({"throughput": {"agreement": out}})
    assert failed == ["agreement.spark_complete#1"]


def test_rounds_run_each_spark_session_once_and_quick_keeps_every_section():
    from bench import run

    assert run._units(["flink_table", "spark_complete", "polars", "spark_stream"]) == [
        "flink_table",
        "spark",
        "polars",
    ]
    args = run.parse_args(["--quick", "--repeats", "3"])
    assert args.events == run.QUICK["events"] and args.repeats == 3
    assert args.only == list(run.SECTIONS) and args.rows == run.DEFAULT_ROWS
    assert run.parse_args(["--quick", "--events", "30000"]).events == 30_000


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
    assert "capacity" not in line  # a rate given with --fresh-rate measured none
    from bench import run

    fresh["capacity"] = {"job": "all"} | run.summarise(
        [{"events_per_s": 4_000.0, "cpu_us_per_event": 300.0}, {"events_per_s": 6_000.0}]
    )
    (line,) = report.freshness_lines({"freshness": fresh})
    assert "same checkpoint interval, 4,000-6,000/s in 2 runs, 300.0 CPU µs/event" in line


@pytest.mark.parametrize(
    ("p99", "slope", "peak", "met"),
    [(14.9, 0.1, 2048.0, True), (15.1, 0.11, 2049.0, False)],
)
def test_targets_check_the_soak_against_the_issue_bounds(p99, slope, peak, met):
    from bench import run

    soak = {
        "freshness": {"p99_s": p99},
        "lag": {"slope_s_per_min": slope},
        "memory": {"peak_mb": peak, "slope_mb_per_min_second_half": 0.5},
    }
    t = run.targets({"freshness": soak})
    assert (t["freshness_p99_le_15s"], t["lag_slope_le_0_1"], t["memory_peak_le_2gb"]) == (
        met,
        met,
        met,
    )
    assert t["all_analyses_ge_60pct_of_ceiling"] is None  # nothing measured is not a miss
    assert run.targets({})["lag_slope_le_0_1"] is None
