"""A bench result as a Markdown section (written into README.md between the bench markers)
and as a PNG chart."""

from __future__ import annotations

import re
from pathlib import Path

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"

TARGETS = {"of_flink_json_source": 0.6, "checked_table_of_spark": 1.0, "freshness_p99_s": 15.0}


def _rate(row: dict | None) -> str:
    if not row:
        return "not run"
    if row.get("error"):
        return "failed (see JSON)"
    return f"{row['events_per_s']:,.0f}" if row.get("events_per_s") else "n/a"


def _mb(row: dict | None, key: str) -> str:
    return f"{row[key]:,.0f}" if row and row.get(key) else ""


def _share(value: float | None) -> str:
    return f"{value:.0%}" if value is not None else ""


def _x(value: float | None) -> str:
    return f"{value:.2f}x" if value is not None else ""


def _spread(row: dict) -> str:
    if row.get("events_per_s_min") is None:
        return ""
    return (
        f"{row['events_per_s_min']:,.0f}-{row['events_per_s_max']:,.0f} "
        f"(±{row['spread'] / 2:.0%}, n={row['succeeded']})"
    )


def _cpu(row: dict) -> str:
    return f"{row['cpu_us_per_event']:,.1f}" if row.get("cpu_us_per_event") is not None else ""


def throughput_table(result: dict) -> list[str]:
    ceilings = result.get("ceilings", {})
    rows = result.get("throughput", {})
    ratios = result.get("ratios", {})
    lines = [
        "| what | events/s (median) | min-max | CPU µs/event | of Flink JSON source "
        "| vs Spark (faster form) | other load (cores busy) | JVM peak RSS (MiB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    names = {
        "kafka_consumer_perf": "ceiling: Kafka ConsumerPerformance (fetch rate, one run)",
        "kafka_python": "ceiling: kafka-python consumer, values not decoded (one run)",
    }
    for key, name in names.items():
        if key in ceilings:
            lines.append(f"| {name} | {_rate(ceilings[key])} | | | | | | |")
    for label, row in rows.items():
        if label == "agreement" or not isinstance(row, dict):
            continue
        r = ratios.get(label, {})
        other = row.get("other_cores_busy_median")
        peaks = [x.get("jvm_peak_rss_mb") for x in row.get("runs", []) if x.get("jvm_peak_rss_mb")]
        lines.append(
            f"| {row.get('what', label)} | {_rate(row)} | {_spread(row)} | {_cpu(row)} "
            f"| {_share(r.get('of_flink_json_source'))} | {_x(r.get('of_spark'))} "
            f"| {'' if other is None else f'{other:.2f}'} "
            f"| {f'{max(peaks):,.0f}' if peaks else ''} |"
        )
    return lines


def agreement_line(result: dict) -> list[str]:
    agreement = (result.get("throughput") or {}).get("agreement")
    if not agreement:
        return []
    if agreement.get("error"):
        return [f"Row-for-row check: {agreement['error']}."]
    parts = []
    for key, v in agreement.items():
        if not isinstance(v, dict):
            continue
        held = v.get("held_back_last_minute", 0)
        diffs = v["count_mismatches"] + v["only_in_second"] + max(v["only_in_first"] - held, 0)
        parts.append(
            f"{key}: {v['groups']} groups, "
            + ("equal" if not diffs and not v["max_percentile_diff_ms"] else f"{diffs} differ")
            + f", max percentile difference {v['max_percentile_diff_ms']} ms"
            + (f", {held} held back by the watermark (last minute)" if held else "")
        )
    return [
        f"Row-for-row check against {agreement.get('reference', 'polars')} (key: minute, "
        "model; requests, errors, p50/p90/p99): " + "; ".join(parts) + "."
    ]


def table_freshness_line(result: dict) -> list[str]:
    fresh = result.get("table_freshness")
    if not fresh:
        return []
    if fresh.get("error"):
        return [f"Table freshness: failed ({fresh['error']})."]

    def one(name: str) -> str:
        f = fresh.get(name) or {}
        if f.get("error"):
            return f"{name}: failed ({f['error']})"
        return (
            f"{name}: p50 {f.get('p50_s')} s, p99 {f.get('p99_s')} s over {f.get('rows')} rows "
            f"of {f.get('windows')} windows"
        )

    return [
        f"Table freshness (the Flink checked table and Spark's streaming form, unbounded, side "
        f"by side on the same traffic paced at {fresh['rate_per_s']:,}/s (sent "
        f"{fresh.get('achieved_rate_per_s')}/s) for {fresh['seconds']} s, event_time = send "
        f"time, watermark {fresh['watermark_delay_s']:g} s, {fresh['delivery_guarantee']} "
        f"to Kafka; Spark trigger: {fresh['spark_trigger']}): readable_at - window_end, "
        + "; ".join(one(n) for n in ("flink_table_checked", "spark_stream"))
        + "."
    ]


def scaling_table(result: dict) -> list[str]:
    scaling = result.get("scaling", {})
    if not scaling:
        return []
    lines = [
        "| all analyses, p1: traffic | events | distinct model x app x user | mean event bytes "
        "| events/s | CPU µs/event | JVM peak RSS (MiB) | dead letters |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, row in scaling.items():
        lines.append(
            f"| {label} | {row.get('events', 0):,} | {row.get('distinct_keys', 0):,} "
            f"| {row.get('mean_event_bytes', 0):,.0f} | {_rate(row)} | {_cpu(row)} "
            f"| {_mb(row, 'jvm_peak_rss_mb')} | {row.get('deadletters', '')} |"
        )
    return lines


def freshness_lines(result: dict) -> list[str]:
    fresh = result.get("freshness")
    if not fresh:
        return []
    if fresh.get("error"):
        return [f"Freshness and soak: failed ({fresh['error']})."]
    f, lag = fresh["freshness"], fresh.get("lag", {})
    w = fresh.get("freshness_written") or {}
    m = fresh["memory"]
    rss = (
        f"{m.get('first_mb')} MiB at the first sample, peak {m.get('peak_mb')}, last "
        f"{m.get('last_mb')}, slope over the second half "
        f"{m.get('slope_mb_per_min_second_half')} MiB/min"
    )
    achieved = fresh.get("achieved_rate_per_s")
    cap = fresh.get("capacity") or {}
    if cap.get("events_per_s"):
        capacity = (
            f"; capacity: the `{cap['job']}` job over a backlog of the same traffic with the same "
            f"checkpoint interval, {cap['events_per_s_min']:,.0f}-{cap['events_per_s_max']:,.0f}/s "
            f"in {cap['succeeded']} runs, {cap.get('cpu_us_per_event')} CPU µs/event"
        )
    else:
        capacity = ""
    return [
        f"Freshness and soak (streaming `{fresh['job']}` job, p1, {fresh['rate_per_s']:,} events/s "
        f"({fresh.get('rate_from', '--fresh-rate')}{capacity}; the producer sent "
        f"{achieved if achieved is None else f'{achieved:,}'}/s) for {fresh['seconds']} s, "
        f"event_time = send time, {fresh['traffic']}; watermark delay "
        f"{fresh['watermark_delay_s']} s, idle timeout {fresh['idle_timeout_s']} s, "
        f"{fresh.get('delivery_guarantee', 'exactly-once')} with a checkpoint every "
        f"{fresh.get('checkpoint_interval_s', '?')} s): readable_at - window_end for a "
        f"read_committed consumer over {f['rows']} rows of {f['windows']} closed 1-minute "
        f"windows: p50 {f['p50_s']} s, p99 {f['p99_s']} s (target p99 <= 15 s; the watermark "
        f"delay alone is {fresh['watermark_delay_s']} s, and a result waits for the checkpoint "
        f"that commits it); as written by the job (read_uncommitted, what at-least-once "
        f"delivery shows): p50 {w.get('p50_s')} s, p99 {w.get('p99_s')} s. Lag over the run: "
        f"{lag.get('first_third_p50_s')} s in the first third of the windows, "
        f"{lag.get('last_third_p50_s')} s in the last, slope {lag.get('slope_s_per_min')} s/min "
        f"(growing lag shows as a positive slope). JVM RSS: {rss}.",
    ]


def targets_line(result: dict) -> list[str]:
    t = result.get("targets")
    if not t:
        return []

    def verdict(value) -> str:
        return "not measured" if value is None else ("met" if value else "missed")

    return [
        "Targets (reported, not asserted): all analyses at p1 >= 60% of the Flink JSON source "
        f"({_share(t.get('all_analyses_of_flink_json_source')) or 'n/a'}): "
        f"{verdict(t.get('all_analyses_ge_60pct_of_ceiling'))}; the checked table >= 1.0x "
        f"the faster Spark form ({_x(t.get('checked_table_of_spark')) or 'n/a'}): "
        f"{verdict(t.get('checked_table_ge_spark'))}; soak freshness p99 (read_committed) "
        f"<= window end + 15 s ({t.get('freshness_p99_s')} s): "
        f"{verdict(t.get('freshness_p99_le_15s'))}; soak lag slope <= 0.1 s/min "
        f"({t.get('lag_slope_s_per_min')}): {verdict(t.get('lag_slope_le_0_1'))}; soak JVM RSS "
        f"under 2 GB (peak {t.get('memory_peak_mb')} MiB, slope "
        f"{t.get('memory_slope_mb_per_min')} MiB/min): {verdict(t.get('memory_peak_le_2gb'))}."
    ]


def section(result: dict) -> str:
    """The README text of one run."""
    m = result["machine"]
    head = (
        f"Latest run: {result['date'][:10]}, `{result['command']}`, {result['bench_s'] / 60:.1f} "
        f"min; {m['cores']} cores ({m['cpu']}), {m['memory_gb']} GB, {m['java']}, Flink "
        f"{m['apache_flink']}, Python {m['python']}; {result['events']:,} events "
        f"(mean {result['topic']['mean_value_bytes']} B, "
        f"{result['topic'].get('event_time_density_per_s', 50):,.0f} calls per second of event "
        "time) in one topic with "
        f"{result['topic']['partitions']} partitions, {result.get('repeats', 1)} interleaved "
        f"runs per row (median, min-max); load average at start "
        f"{m.get('load_average_at_start', 0):.1f}; `bench/results/{result['date'][:10]}.json`."
    )
    parts = [head, "", *throughput_table(result)]
    if check := agreement_line(result):
        parts += ["", *check]
    if result.get("notes"):
        parts += ["", *(f"- {n}" for n in result["notes"])]
    if scaling := scaling_table(result):
        parts += ["", *scaling]
    if table_fresh := table_freshness_line(result):
        parts += ["", *table_fresh]
    if fresh := freshness_lines(result):
        parts += ["", *fresh]
    if verdicts := targets_line(result):
        parts += ["", *verdicts]
    return "\n".join(parts)


def rewrite_readme(readme: Path, text: str) -> bool:
    """Replace what lies between the bench markers; False when the markers are missing."""
    content = readme.read_text()
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.DOTALL)
    if not pattern.search(content):
        return False
    readme.write_text(pattern.sub(lambda _: f"{BEGIN}\n{text}\n{END}", content, count=1))
    return True


def _bars(ax, rows: list[tuple[str, float | None, str]]) -> None:
    """Horizontal bars on a log axis; a missing rate is a label, not a bar."""
    labels = [label for label, _, _ in reversed(rows)]
    values = [value for _, value, _ in reversed(rows)]
    colours = [colour for _, _, colour in reversed(rows)]
    floor = min((v for v in values if v), default=1) / 2
    ax.barh(labels, [v or 0 for v in values], color=colours, left=0)
    ax.set_xscale("log")
    ax.set_xlim(left=floor)
    for i, v in enumerate(values):
        ax.text(v or floor, i, f" {v:,.0f}" if v else " n/a", va="center", fontsize=8)
    ax.margins(x=0.25)


def chart(result: dict, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("bench: matplotlib is not installed; no chart (pip install '.[bench]')")
        return False

    def colour(label: str) -> str:
        if label.startswith(("kafka", "flink_raw", "flink_json")):
            return "tab:gray"
        return "tab:orange" if label.startswith(("polars", "spark")) else "tab:blue"

    rows = [
        (k, v, colour(k))
        for k, v in (result.get("ceilings", {}) | result.get("throughput", {})).items()
        if isinstance(v, dict) and k != "agreement"
    ]
    rows = [(label, row.get("events_per_s"), colour) for label, row, colour in rows]
    scaling = [
        (
            f"{label} ({row.get('jvm_peak_rss_mb') or 0:,.0f} MiB)",
            row.get("events_per_s"),
            "tab:green",
        )
        for label, row in result.get("scaling", {}).items()
        if isinstance(row, dict)
    ]
    if not rows and not scaling:
        return False
    panels = [p for p in (rows, scaling) if p]
    fig, axes = plt.subplots(
        len(panels),
        1,
        figsize=(9, 0.35 * sum(len(p) for p in panels) + 1.5 * len(panels)),
        squeeze=False,
        height_ratios=[len(p) for p in panels],
    )
    for ax, panel in zip(axes[:, 0], panels, strict=True):
        _bars(ax, panel)
    m = result["machine"]
    axes[-1, 0].set_xlabel("events/s (log scale); scaling rows: all analyses, p1, JVM peak RSS")
    axes[0, 0].set_title(
        f"genai-apm bench, {result['events']:,} events, medians of {result.get('repeats', 1)} "
        f"runs, {m['cores']} cores, "
        f"{m['memory_gb']} GB, {result['date'][:10]}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
