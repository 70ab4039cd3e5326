"""A bench result as a Markdown section (written into README.md between the bench markers)
and as a PNG chart."""

from __future__ import annotations

import re
from pathlib import Path

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"

# (ratio key, column title) of the pipeline ratios, in table order
RATIO_COLUMNS = (
    ("of_flink_source", "of Flink JSON source"),
    ("of_polars", "vs polars"),
    ("of_spark", "vs Spark"),
)
TARGETS = {"of_flink_source": 0.6, "freshness_p99_s": 5.0}


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


def throughput_table(result: dict) -> list[str]:
    ceilings = result.get("ceilings", {})
    pipeline = result.get("pipeline", {})
    alternatives = result.get("alternatives", {})
    ratios = result.get("ratios", {})
    lines = [
        "| what | events/s | JVM peak RSS (MiB) | Python peak RSS (MiB) | "
        + " | ".join(title for _, title in RATIO_COLUMNS)
        + " |",
        "|---|---:|---:|---:|" + "---:|" * len(RATIO_COLUMNS),
    ]
    blank = " |" * len(RATIO_COLUMNS)
    names = {
        "kafka_consumer_perf": "ceiling: Kafka ConsumerPerformance (fetch rate)",
        "kafka_python": "ceiling: kafka-python consumer, values not decoded",
        "flink_raw_source_p1": "ceiling: Flink Kafka source, raw bytes -> blackhole, p1",
        "flink_json_source_p1": "ceiling: Flink Kafka source, JSON format -> blackhole, p1",
    }
    for key, name in names.items():
        if key in ceilings:
            row = ceilings[key]
            lines.append(
                f"| {name} | {_rate(row)} | {_mb(row, 'jvm_peak_rss_mb')} "
                f"| {_mb(row, 'python_peak_rss_mb')} |{blank}"
            )
    for label, row in pipeline.items():
        cells = " | ".join(
            _share(ratios.get(label, {}).get(k))
            if k == "of_flink_source"
            else _x(ratios.get(label, {}).get(k))
            for k, _ in RATIO_COLUMNS
        )
        lines.append(
            f"| pipeline: {row.get('what', label)} | {_rate(row)} "
            f"| {_mb(row, 'jvm_peak_rss_mb')} | {_mb(row, 'python_peak_rss_mb')} | {cells} |"
        )
    alt_names = {
        "polars": "alternative: kafka-python + polars micro-batches",
        "spark": "alternative: Spark Structured Streaming, local[2]",
    }
    for key, name in alt_names.items():
        if key in alternatives:
            row = alternatives[key]
            lines.append(
                f"| {name} | {_rate(row)} | {_mb(row, 'jvm_peak_rss_mb')} "
                f"| {_mb(row, 'python_peak_rss_mb')} |{blank}"
            )
    return lines


def scaling_table(result: dict) -> list[str]:
    scaling = result.get("scaling", {})
    if not scaling:
        return []
    lines = [
        "| traffic | events | distinct model x app x user | mean event bytes | events/s "
        "| JVM peak RSS (MiB) | dead letters |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, row in scaling.items():
        lines.append(
            f"| {label} | {row.get('events', 0):,} | {row.get('distinct_keys', 0):,} "
            f"| {row.get('mean_event_bytes', 0):,.0f} | {_rate(row)} "
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
    return [
        f"Freshness and soak (streaming `{fresh['job']}` job, p1, {fresh['rate_per_s']:,} events/s "
        f"({fresh.get('rate_from', '--fresh-rate')}; the producer sent "
        f"{achieved if achieved is None else f'{achieved:,}'}/s) for {fresh['seconds']} s, "
        f"event_time = send time, {fresh['traffic']}; watermark delay "
        f"{fresh['watermark_delay_s']} s, idle timeout {fresh['idle_timeout_s']} s, "
        f"{fresh.get('delivery_guarantee', 'exactly-once')} with a checkpoint every "
        f"{fresh.get('checkpoint_interval_s', '?')} s): readable_at - window_end for a "
        f"read_committed consumer over {f['rows']} rows of {f['windows']} closed 1-minute "
        f"windows: p50 {f['p50_s']} s, p99 {f['p99_s']} s (target p99 <= 5 s; the watermark "
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
        "Targets (reported, not asserted): all analyses at p1 >= 60% of the Flink JSON source: "
        f"{verdict(t['all_analyses_of_flink_ceiling_ge_60pct'])}; faster than polars: "
        f"{verdict(t['faster_than_polars'])}; faster than Spark: "
        f"{verdict(t['faster_than_spark'])}; freshness p99 <= 5 s: "
        f"{verdict(t['freshness_p99_le_5s'])}; soak lag slope: "
        f"{t.get('lag_slope_s_per_min')} s/min; JVM memory slope over the second half of the "
        f"soak: {t['memory_slope_mb_per_min']} MiB/min."
    ]


def section(result: dict) -> str:
    """The README text of one run."""
    m = result["machine"]
    head = (
        f"Latest run: {result['date'][:10]}, `{result['command']}`, {result['bench_s'] / 60:.1f} "
        f"min; {m['cores']} cores ({m['cpu']}), {m['memory_gb']} GB, {m['java']}, Flink "
        f"{m['apache_flink']}, Python {m['python']}; {result['events']:,} events "
        f"(mean {result['topic']['mean_value_bytes']} B) in one topic with "
        f"{result['topic']['partitions']} partitions; `bench/results/{result['date'][:10]}.json`."
    )
    parts = [head, "", *throughput_table(result)]
    if result.get("notes"):
        parts += ["", *(f"- {n}" for n in result["notes"])]
    if scaling := scaling_table(result):
        parts += ["", *scaling]
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
    rows = (
        [(f"ceiling: {k}", v, "tab:gray") for k, v in result.get("ceilings", {}).items()]
        + [
            (f"alternative: {k}", v, "tab:orange")
            for k, v in result.get("alternatives", {}).items()
            if "events_per_s" in v or "error" in v
        ]
        + [(f"pipeline: {k}", v, "tab:blue") for k, v in result.get("pipeline", {}).items()]
    )
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
        f"genai-apm bench, {result['events']:,} events, {m['cores']} cores, "
        f"{m['memory_gb']} GB, {result['date'][:10]}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
