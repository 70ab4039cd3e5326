"""`genai-apm report`: what the charts draw equals what DuckDB computes from the Parquet files."""

from __future__ import annotations

import datetime as dt
import os
import re
import xml.etree.ElementTree as ET

import duckdb
import pytest

from genai_apm.errors import GenaiApmError
from genai_apm.serve import report, report_data, report_svg
from genai_apm.settings import config
from tests import report_fixture as fx

SVG = "{http://www.w3.org/2000/svg}"


def charts(page: str) -> list[ET.Element]:
    """Every inline <svg> of the page, parsed (each is well-formed XML on its own)."""
    return [ET.fromstring(m) for m in re.findall(r"<svg .*?</svg>", page, flags=re.S)]


def chart(page: str, title: str) -> ET.Element:
    found = [c for c in charts(page) if c.get("aria-label") == title]
    assert len(found) == 1, [c.get("aria-label") for c in charts(page)]
    return found[0]


def scale(svg: ET.Element, axis: str) -> report_svg.Scale:
    d0, d1 = map(float, svg.get(f"data-{axis}-domain").split(","))
    r0, r1 = map(float, svg.get(f"data-{axis}-range").split(","))
    return report_svg.Scale(d0, d1, r0, r1)


def line_values(svg: ET.Element, series: str) -> list[tuple[float, float]]:
    """The data points a line's pixels stand for, read back through the chart's scales."""
    x, y = scale(svg, "x"), scale(svg, "y")
    points = []
    for line in svg.iter(f"{SVG}polyline"):
        if line.get("data-series") == series:
            for pair in line.get("points").split():
                px, py = map(float, pair.split(","))
                points.append((x.invert(px), y.invert(py)))
    return points


def parquet(root, table: str) -> str:
    return f"read_parquet('{root}/{table}/*/*/part-*', hive_partitioning = true)"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = fx.write_tables(tmp_path_factory.mktemp("tables"))
    out = root / "report.html"
    result = report.build(config.load(None), out, tables_path=str(root), alerts=fx.alerts())
    return root, out.read_text(), result


def test_latency_lines_are_the_percentiles_duckdb_reads_per_model(built):
    root, page, _ = built
    con = duckdb.connect()
    for model in ("model-a", "model-b", "*"):
        title = "all models" if model == "*" else model
        for metric, label in (("latency", "latency"), ("ttft", "time to first token")):
            svg = chart(page, f"{title}: {label}")
            x, y = scale(svg, "x"), scale(svg, "y")
            # pixel coordinates are written with 2 decimals
            tol_x, tol_y = (
                0.006 * abs(x.d1 - x.d0) / abs(x.r1 - x.r0),
                0.006 * abs(y.d1 - y.d0) / abs(y.r1 - y.r0),
            )
            for p in ("p50", "p90", "p99"):
                expected = con.execute(
                    f"SELECT epoch_ms(window_start), {metric}_{p}_ms "
                    f"FROM {parquet(root, 'latency_1m')} "
                    "WHERE model_id = ? AND app_id = '*' AND "
                    f"{metric}_{p}_ms IS NOT NULL ORDER BY 1",
                    [model],
                ).fetchall()
                drawn = line_values(svg, p)
                assert len(drawn) == len(expected) > 0
                for (dx, dy), (ex, ey) in zip(drawn, expected, strict=True):
                    assert dx == pytest.approx(ex, abs=tol_x)
                    assert dy == pytest.approx(ey, abs=tol_y)


def test_a_missing_window_breaks_the_line_instead_of_bridging_it(built):
    _, page, _ = built
    svg = chart(page, "model-b: time to first token")
    p50_runs = [pl for pl in svg.iter(f"{SVG}polyline") if pl.get("data-series") == "p50"]
    assert len(p50_runs) == 2  # model-b has no TTFT in window 10
    assert len(p50_runs[0].get("points").split()) == 10


def test_error_bars_stack_the_class_counts_of_each_window(built):
    root, page, _ = built
    svg = chart(page, "calls by error class per window, all models")
    y = scale(svg, "y")
    rects = [r for r in svg.iter(f"{SVG}rect") if r.get("data-category")]
    expected = duckdb.execute(
        f"SELECT strftime(window_start, '%H:%M'), throttles, client_errors + server_errors + "
        f"throttles + timeouts + content_filtered FROM {parquet(root, 'errors_1m')} "
        "WHERE model_id = '*' AND app_id = '*' ORDER BY window_start"
    ).fetchall()
    for category, throttles, total in expected:
        parts = [r for r in rects if r.get("data-category") == category]
        drawn = {r.get("data-series"): float(r.get("data-value")) for r in parts}
        assert drawn.get("throttled", 0) == throttles
        assert sum(drawn.values()) == total
        # the bar's pixels stack to the total: its top sits at y(total)
        if parts:
            assert min(float(r.get("y")) for r in parts) == pytest.approx(y(total), abs=0.01)
            heights = sum(float(r.get("height")) for r in parts)
            assert heights == pytest.approx(y(0) - y(total), abs=0.05)


def test_spend_bars_are_the_top_keys_by_cost(built):
    root, page, _ = built
    for dimension, top in (("app", 3), ("user", 12)):
        svg = chart(page, f"spend by {dimension} (top {top})")
        drawn = [
            (r.get("data-category"), float(r.get("data-value")))
            for r in svg.iter(f"{SVG}rect")
            if r.get("data-category")
        ]
        expected = duckdb.execute(
            f"SELECT key, sum(cost_usd) c FROM {parquet(root, 'cost_1h')} WHERE dimension = ? "
            "GROUP BY key ORDER BY c DESC LIMIT 12",
            [dimension],
        ).fetchall()
        assert [k for k, _ in drawn] == [k for k, _ in expected]
        assert [v for _, v in drawn] == pytest.approx([v for _, v in expected])


def test_an_anomaly_is_shaded_on_its_models_latency_chart_from_open_to_close(built):
    _, page, _ = built
    svg = chart(page, "model-b: latency")
    x = scale(svg, "x")
    (marker,) = [r for r in svg.iter(f"{SVG}rect") if r.get("data-marker") == "anomaly"]
    start = x.invert(float(marker.get("x")))
    end = x.invert(float(marker.get("x")) + float(marker.get("width")))
    assert start == pytest.approx(fx.minute(40).timestamp() * 1000, abs=1000)
    assert end == pytest.approx(fx.minute(47).timestamp() * 1000, abs=1000)
    assert "latency_p99_ms" in marker.find(f"{SVG}title").text
    other = chart(page, "model-a: latency")
    assert not [r for r in other.iter(f"{SVG}rect") if r.get("data-marker")]


def test_alert_timeline_spans_alarm_until_ok_or_the_end_of_the_data(built):
    _, page, _ = built
    svg = chart(page, "time in ALARM per rule and key")
    x = scale(svg, "x")
    spans = {
        r.get("data-series"): (
            x.invert(float(r.get("x"))),
            x.invert(float(r.get("x")) + float(r.get("width"))),
        )
        for r in svg.iter(f"{SVG}rect")
        if r.get("data-state") == "ALARM"
    }
    ms = lambda t: t.timestamp() * 1000  # noqa: E731
    assert spans["throttle-storm model-a"] == pytest.approx((ms(fx.minute(22)), ms(fx.minute(31))))
    # never cleared: it lasts until the end of the newest window
    assert spans["error-rate *"] == pytest.approx((ms(fx.minute(85)), ms(fx.minute(90))))


def test_sessions_table_lists_the_most_recent_sessions(built):
    root, page, _ = built
    newest = duckdb.execute(
        f"SELECT conversation_id FROM {parquet(root, 'sessions')} "
        "ORDER BY session_start DESC, conversation_id"
    ).fetchall()
    section = page[page.index("<h2>Agent sessions</h2>") :]
    shown = re.findall(r"<td>(conv-\d+)</td>", section)
    assert shown == [c for (c,) in newest]
    assert "12 sessions" in section


def test_the_page_is_self_contained(built):
    _, page, result = built
    # the only URL is the SVG namespace: no CDN, font, stylesheet or script to fetch offline
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", page))
    assert urls == {"http://www.w3.org/2000/svg"}
    assert "<script" not in page and "<link" not in page
    assert result.empty_panels == 0
    assert result.charts == len([c for c in charts(page) if c.get("data-chart") != "empty"])


def test_missing_tables_become_no_data_panels(tmp_path):
    fx.write_tables(tmp_path, tables=("latency_1m",))
    out = tmp_path / "r.html"
    result = report.build(config.load(None), out, tables_path=str(tmp_path))
    page = out.read_text()
    assert result.empty_panels == 7  # errors, cost, SLOs, quota, alerts, anomalies, sessions
    assert page.count('class="nodata"') == 7
    assert "No data: no errors_1m table" in page


def test_no_tables_at_all_is_one_clear_error(tmp_path):
    with pytest.raises(GenaiApmError, match="no Parquet tables under"):
        report.build(config.load(None), tmp_path / "r.html", tables_path=str(tmp_path))
    with pytest.raises(GenaiApmError, match="no tables under"):
        report.build(config.load(None), tmp_path / "r.html", tables_path=str(tmp_path / "nope"))


def test_since_a_duration_counts_back_from_the_newest_window(built):
    root, _, _ = built
    out = root / "since.html"
    report.build(config.load(None), out, tables_path=str(root), since="15m")
    svg = chart(out.read_text(), "model-a: latency")
    starts = [t for t, _ in line_values(svg, "p50")]
    # newest window ends at minute 90, so 15 minutes back keeps windows starting at 75..89
    assert starts[0] == pytest.approx(fx.minute(75).timestamp() * 1000, abs=1000)
    assert len(starts) == 15


def test_parse_since():
    latest = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    assert report_data.parse_since("2h", latest) == latest - dt.timedelta(hours=2)
    assert report_data.parse_since("2026-01-01T06:00", latest) == dt.datetime(
        2026, 1, 1, 6, tzinfo=dt.UTC
    )
    assert report_data.parse_since("2026-01-01T06:00+02:00", latest) == dt.datetime(
        2026, 1, 1, 4, tzinfo=dt.UTC
    )
    assert report_data.parse_since(None, latest) is None
    with pytest.raises(GenaiApmError, match="--since 'yesterday'"):
        report_data.parse_since("yesterday", latest)


def test_written_after_leaves_out_earlier_runs(tmp_path):
    fx.write_tables(tmp_path, tables=("latency_1m",), seed=1)
    for f in tmp_path.glob("latency_1m/*/*/part-*"):
        os.utime(f, (1_000_000, 1_000_000))  # an old run
        f.rename(f.with_name("part-old"))
    fx.write_tables(tmp_path, tables=("latency_1m",), seed=2)
    settings, out = config.load(None), tmp_path / "r.html"
    report.build(settings, out, tables_path=str(tmp_path))
    assert "Repeated windows" in out.read_text()  # both runs, and it says so
    report.build(settings, out, tables_path=str(tmp_path), written_after=2_000_000)
    page = out.read_text()
    assert "Repeated windows" not in page
    expected = duckdb.execute(
        f"SELECT latency_p50_ms FROM read_parquet('{tmp_path}/latency_1m/*/*/part-0') "
        "WHERE model_id = 'model-a' AND app_id = '*' ORDER BY window_start"
    ).fetchall()
    drawn = [v for _, v in line_values(chart(page, "model-a: latency"), "p50")]
    assert drawn == pytest.approx([v for (v,) in expected], rel=1e-3)


def test_nice_ticks_cover_the_range_with_round_steps():
    for lo, hi in ((0, 7.3), (0, 1234), (0, 0.042), (0, 98_000_000)):
        ticks = report_svg.nice_ticks(lo, hi)
        assert ticks[0] <= lo and ticks[-1] >= hi
        step = ticks[1] - ticks[0]
        mantissa = step / 10 ** int(f"{step:e}".split("e")[1])
        assert round(mantissa, 6) in (1, 2, 5)
        assert 3 <= len(ticks) <= 12


def test_slo_and_quota_panels_draw_the_budget_and_use_duckdb_reads(tmp_path):
    fx.write_tables(tmp_path, tables=("latency_1m", "slo_1m", "quota_1m"))
    alert = {
        "alert_time": "2026-01-01T00:20:00Z",
        "rule": "slo-avail-page-1h-5m",
        "key": "m1",
        "kind": "slo",
        "state": "ALARM",
        "previous_state": None,
        "metric": "burn_rate",
        "observed": 15.0,
        "op": ">",
        "threshold": 14.4,
        "message": "burn_rate 15.0 > 14.4",
    }
    out = tmp_path / "r.html"
    report.build(config.load(None), out, tables_path=str(tmp_path), alerts=[alert])
    page = out.read_text()
    budget = chart(page, "error budget remaining per SLO and key")
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    want = con.execute(
        f"SELECT epoch_ms(window_start), GREATEST(budget_remaining_pct, 0) "
        f"FROM {parquet(tmp_path, 'slo_1m')} WHERE key = 'm1' ORDER BY 1"
    ).fetchall()
    got = line_values(budget, "avail m1")
    assert [x for x, _ in got] == pytest.approx([x for x, _ in want])
    assert [y for _, y in got] == pytest.approx([y for _, y in want], abs=0.05)
    use = line_values(chart(page, "quota use per model and region"), "m1 us-east-1")
    assert [y for _, y in use] == pytest.approx([2.5 * i for i in range(30)], abs=0.05)
    assert "SLOs: error budget and burn rates" in page and "Quota headroom" in page
    assert "burn_rate 15.0 &gt; 14.4" in page  # the alert's message in the timeline
