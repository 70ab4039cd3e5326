"""`genai-apm report`: one self-contained HTML dashboard from the jobs' Parquet tables.

The file has no external reference (no CDN, no fonts, no script): charts are inline SVG from
genai_apm/serve/report_svg.py and the numbers come from DuckDB (genai_apm/serve/report_data.py), so
it opens offline, can be mailed, and shows what the tables held when it was written.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from html import escape
from pathlib import Path

from genai_apm.errors import GenaiApmError
from genai_apm.schemas.outputs import describe
from genai_apm.serve import report_data as data
from genai_apm.serve import report_svg as svg
from genai_apm.settings.config import Settings

STYLE = """
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0;
  color: #222; background: #f6f7f9; }
header { background: #1f2937; color: #fff; padding: 16px 24px; }
header h1 { margin: 0 0 4px; font-size: 20px; }
header p { margin: 0; color: #cbd5e1; }
main { padding: 8px 24px 32px; max-width: 1200px; }
section { background: #fff; border: 1px solid #e5e7eb; border-radius: 6px; margin: 16px 0;
  padding: 12px 16px; }
section h2 { font-size: 16px; margin: 0 0 8px; }
.note { color: #555; margin: 4px 0 8px; }
.warn { background: #fff7e6; border-color: #f0c36d; }
.grid { display: flex; flex-wrap: wrap; gap: 8px 16px; }
.card h3 { font-size: 14px; margin: 8px 0 0; font-family: ui-monospace, monospace; }
.kpis { display: flex; gap: 32px; }
.kpi b { display: block; font-size: 22px; }
.nodata { color: #777; font-style: italic; }
table { border-collapse: collapse; font-size: 13px; }
th, td { padding: 3px 8px; border-bottom: 1px solid #eee; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
svg.chart text { font: 11px system-ui, sans-serif; fill: #333; }
svg.chart text.title { font-weight: 600; font-size: 12px; }
svg.chart text.unit { fill: #666; }
svg.chart text.nodata { font-style: italic; fill: #777; font-size: 13px; }
svg.chart .grid { stroke: #eee; }
svg.chart .axis { stroke: #999; }
"""


@dataclass(frozen=True)
class Report:
    """What was written: the file and how much it shows (for the CLI's one-line summary)."""

    path: Path
    charts: int
    empty_panels: int


def _ms_text(ms: int | None) -> str:
    if ms is None:
        return "-"
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _cell(value) -> str:
    if value is None:
        return "<td>-</td>"
    if isinstance(value, float):
        return f'<td class="n">{value:,.2f}</td>'
    if isinstance(value, int):
        return f'<td class="n">{value:,}</td>'
    if isinstance(value, dt.datetime):
        return f"<td>{value.strftime('%Y-%m-%d %H:%M:%S')}</td>"
    return f"<td>{escape(str(value))}</td>"


def html_table(columns: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def section(title: str, body: str, note: str = "", cls: str = "") -> str:
    note_html = f'<p class="note">{note}</p>' if note else ""
    return f'<section class="{cls}"><h2>{escape(title)}</h2>{note_html}{body}</section>'


def no_data(title: str, why: str) -> str:
    return section(title, f'<p class="nodata">No data: {escape(why)}.</p>', cls="empty")


def incident_markers(events: list[dict]) -> dict[tuple[str, str], list[svg.Marker]]:
    """(dimension, key) -> shaded spans: from an incident's open window to its close event
    (or the end of its open window, if it had not closed)."""
    out: dict[tuple[str, str], list[svg.Marker]] = defaultdict(list)
    open_at: dict[tuple[str, str], dict] = {}
    for e in events:
        k = (e["dimension"], e["key"])
        if e["event"] == "open":
            open_at[k] = e
        elif e["event"] == "close" and k in open_at:
            o = open_at.pop(k)
            out[k].append(svg.Marker(o["start_ms"], e["alert_ms"], _marker_label(o)))
    for k, o in open_at.items():
        out[k].append(svg.Marker(o["start_ms"], o["end_ms"], _marker_label(o)))
    return out


def _marker_label(o: dict) -> str:
    return (
        f"anomaly on {o['dimension']} {o['key']}: {o['metrics'] or o['metric']} "
        f"(score {o['score'] or 0:.1f}, {o['severity']}) from {_ms_text(o['start_ms'])}"
    )


def _model_cards(latency: dict, markers: dict) -> tuple[str, int]:
    cards, charts = [], 0
    # all models first, then by name
    for model in sorted(latency, key=lambda m: (m != data.ALL, m)):
        columns = latency[model]
        title = "all models" if model == data.ALL else model
        parts = []
        for metric, label in (("latency", "latency"), ("ttft", "time to first token")):
            series = [
                svg.Series(p, columns[f"{metric}_{p}_ms"])
                for p in data.PERCENTILES
                if f"{metric}_{p}_ms" in columns
            ]
            marks = markers.get(("model", model), []) if metric == "latency" else []
            parts.append(
                svg.line_chart(f"{title}: {label}", series, unit="ms", markers=marks, width=560)
            )
            charts += 1
        cards.append(
            f'<div class="card" data-model="{escape(model)}"><h3>{escape(title)}</h3>'
            + "".join(parts)
            + "</div>"
        )
    return '<div class="grid">' + "".join(cards) + "</div>", charts


def render(
    *,
    tables_path: str,
    names: data.TableNames,
    period: tuple[int | None, int | None],
    latency: dict,
    repeated: int,
    errors_over_time: tuple[list[int], dict[str, list[int]]],
    errors_by_model: tuple[list[str], dict[str, list[int]]],
    spend_by: dict[str, list[data.Spend]],
    anomalies: list[dict],
    alerts: list[dict],
    alert_lanes: list,
    sessions: tuple[int, list[dict]],
    generated_at: dt.datetime,
    slo: tuple[dict, list[dict]] = ({}, []),
    quota: tuple[dict, list[dict]] = ({}, []),
) -> tuple[str, int, int]:
    """The page, the number of charts with data and the number of "no data" panels."""
    panels: list[str] = []
    charts = empty = 0

    if repeated:
        panels.append(
            section(
                "Repeated windows",
                "",
                note=f"{repeated} (window, model) pairs of {names.latency} appear more than once: "
                "several runs wrote the same event time into these tables. Lines show their "
                "mean and sums count every run; point --tables-path at one run's tables "
                "for exact figures.",
                cls="warn",
            )
        )

    markers = incident_markers(anomalies)
    if latency:
        body, n = _model_cards(latency, markers)
        charts += n
        panels.append(
            section(
                "Latency and time to first token per model",
                body,
                note=f"p50 / p90 / p99 of successful calls per window ({escape(names.latency)}, "
                "app_id = '*'). Shaded: anomaly incidents on the model, hover for the metric.",
            )
        )
    else:
        empty += 1
        panels.append(no_data("Latency and time to first token", f"no {names.latency} table"))

    times, classes = errors_over_time
    if times:
        span = (times[-1] - times[0]) if len(times) > 1 else 0
        labels = [svg.format_time(t, span) for t in times]
        over_time = svg.stacked_bars(
            "calls by error class per window, all models",
            labels,
            list(classes.items()),
            unit="calls",
            width=1140,
        )
        models, per_model = errors_by_model
        by_model = svg.stacked_bars(
            "calls by error class per model, whole period",
            models,
            list(per_model.items()),
            unit="calls",
            width=1140,
            height=300,
        )
        charts += 2
        panels.append(
            section(
                "Error breakdown",
                over_time + by_model,
                note=f"From {escape(names.errors)}. Content-filtered calls are successes "
                "(providers answer them), shown for their share.",
            )
        )
    else:
        empty += 1
        panels.append(no_data("Error breakdown", f"no {names.errors} table"))

    if any(spend_by.values()):
        parts = []
        for dimension, rows in spend_by.items():
            if rows:
                parts.append(
                    svg.bar_chart(
                        f"spend by {dimension} (top {len(rows)})",
                        [(r.key, r.cost_usd) for r in rows],
                        unit="USD",
                        value_format="${:,.2f}",
                    )
                )
                parts.append(
                    svg.stacked_bars(
                        f"tokens by {dimension}",
                        [r.key for r in rows],
                        [
                            ("input tokens", [r.input_tokens for r in rows]),
                            ("output tokens", [r.output_tokens for r in rows]),
                        ],
                        unit="tokens",
                    )
                )
                charts += 2
        panels.append(
            section(
                "Tokens and cost by app and user",
                '<div class="grid">' + "".join(parts) + "</div>",
                note=f"From {escape(names.cost)}, list prices of genai_apm/data/pricing.toml.",
            )
        )
    else:
        empty += 1
        panels.append(no_data("Tokens and cost", f"no {names.cost} table"))

    budget_series, budget_latest = slo
    if budget_series:
        # an overspent budget is drawn at 0 (the chart's floor); the table has the value
        series = [
            svg.Series(name, [(t, None if v is None else max(v, 0.0)) for t, v in points])
            for name, points in sorted(budget_series.items())
        ]
        chart = svg.line_chart(
            "error budget remaining per SLO and key", series, unit="%", width=1140
        )
        slo_alerts = [a for a in alerts if a.get("kind") == "slo"]
        rows = [
            [
                r["slo"],
                r["key"],
                f"{r['objective_pct']:g}% over {r['period']}",
                r["period_sli_pct"],
                r["budget_remaining_pct"],
                r["burn_rate_5m"],
                r["burn_rate_1h"],
                r["burn_rate_6h"],
                r["burn_rate_3d"],
                sum(
                    a["rule"].startswith(f"slo-{r['slo']}-")
                    and a["key"] == r["key"]
                    and a["state"] == "ALARM"
                    for a in slo_alerts
                ),
            ]
            for r in budget_latest
        ]
        charts += 1
        panels.append(
            section(
                "SLOs: error budget and burn rates",
                chart
                + html_table(
                    [
                        "SLO",
                        "key",
                        "objective",
                        "SLI over the period %",
                        "budget left %",
                        "burn 5m",
                        "burn 1h",
                        "burn 6h",
                        "burn 3d",
                        "burn alerts raised",
                    ],
                    rows,
                ),
                note=f"From {escape(names.slo)} (jobs/slo.py): the share of the error budget "
                "left over each SLO's compliance period, and its latest burn rates (1 spends "
                "the budget exactly over the period). Burn alerts are in the alert timeline.",
            )
        )
    else:
        empty += 1
        panels.append(no_data("SLOs", f"no {names.slo} table (no SLO configured, or no run)"))

    use_series, use_latest = quota
    if use_series:
        series = [svg.Series(name, points) for name, points in sorted(use_series.items())]
        chart = svg.line_chart("quota use per model and region", series, unit="%", width=1140)
        rows = [
            [
                r["model_id"],
                r["region"],
                r["use_pct"],
                r["tpm_limit"],
                r["rpm_limit"],
                r["minutes_to_exhaustion"],
                r["top_app"],
                r["top_app_share_pct"],
                r["throttles"],
            ]
            for r in use_latest
        ]
        charts += 1
        panels.append(
            section(
                "Quota headroom",
                chart
                + html_table(
                    [
                        "model",
                        "region",
                        "use %",
                        "TPM limit",
                        "RPM limit",
                        "minutes to exhaustion",
                        "top app",
                        "top app share %",
                        "throttles",
                    ],
                    rows,
                ),
                note=f"From {escape(names.quota)}: use of tokens or requests per minute "
                "(whichever is closer to its limit) against the quota table, the forecast from "
                "the recent trend, and the app using most, as of each key's latest minute.",
            )
        )
    else:
        empty += 1
        panels.append(no_data("Quota headroom", f"no {names.quota} table"))

    if alert_lanes:
        lanes = [svg.Lane(label, spans) for label, spans in alert_lanes]
        lo = min(s[0] for lane in lanes for s in lane.spans)
        hi = max(s[1] for lane in lanes for s in lane.spans)
        lo, hi = min(lo, period[0] or lo), max(hi, period[1] or hi)
        rows = [
            [
                _ms_text(data._ms(a["alert_time"])),
                a["rule"],
                a["key"],
                f"{a.get('previous_state') or 'OK'} -> {a['state']}",
                a.get("metric"),
                a.get("observed"),
                f"{a.get('op', '')} {a.get('threshold', '')}",
                describe(a).split(": ", 1)[-1],
            ]
            for a in sorted(alerts, key=lambda a: data._ms(a["alert_time"]) or 0)
        ]
        panels.append(
            section(
                "Alert timeline",
                svg.timeline("time in ALARM per rule and key", lanes, lo, hi)
                + html_table(
                    [
                        "time (UTC)",
                        "rule",
                        "key",
                        "transition",
                        "metric",
                        "observed",
                        "threshold",
                        "message",
                    ],
                    rows,
                ),
            )
        )
        charts += 1
    else:
        empty += 1
        panels.append(
            no_data(
                "Alert timeline",
                "no alert went to ALARM in this period (streaming jobs send alerts to the "
                "alerts topic: `genai-apm report --alerts-from-kafka` reads it)",
            )
        )

    if anomalies:
        rows = [
            [
                _ms_text(a["alert_ms"]),
                a["event"],
                a["dimension"],
                a["key"],
                a["metrics"] or a["metric"],
                a["observed"],
                a["baseline"],
                a["score"],
                a["severity"],
                a["explained_by"] or a["explanation"],
            ]
            for a in anomalies[-200:]
        ]
        panels.append(
            section(
                "Anomalies",
                html_table(
                    [
                        "time (UTC)",
                        "event",
                        "dimension",
                        "key",
                        "metrics",
                        "observed",
                        "baseline",
                        "score",
                        "severity",
                        "explained by",
                    ],
                    rows,
                ),
                note=f"{len(anomalies)} events from the anomalies table"
                + ("; the latest 200 shown" if len(anomalies) > 200 else ""),
            )
        )
    else:
        empty += 1
        panels.append(no_data("Anomalies", "no anomalies table (the anomalies job has not run)"))

    total, recent = sessions
    if recent:
        columns = list(recent[0])
        panels.append(
            section(
                "Agent sessions",
                html_table(columns, [[r[c] for c in columns] for r in recent]),
                note=f"{total:,} sessions; the {len(recent)} most recent.",
            )
        )
    else:
        empty += 1
        panels.append(no_data("Agent sessions", "no sessions table (the agents job has not run)"))

    period_text = f"{_ms_text(period[0])} to {_ms_text(period[1])} UTC"
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>genai-apm report</title>
<style>{STYLE}</style></head>
<body><header><h1>genai-apm report</h1>
<p>{escape(period_text)} &middot; tables under <code>{escape(tables_path)}</code>
&middot; written {generated_at.strftime("%Y-%m-%d %H:%M UTC")}</p></header>
<main>
{"".join(panels)}
</main></body></html>
"""
    return page, charts, empty


def build(
    settings: Settings,
    out: str | Path,
    *,
    tables_path: str | None = None,
    since: str | None = None,
    alerts: list[dict] | None = None,
    written_after: float | None = None,
    now: dt.datetime | None = None,
) -> Report:
    """Query the tables and write the dashboard to ``out``. ``alerts`` (transition records, as
    on the alerts topic) adds to those a bounded run wrote under ``<tables>/alerts``."""
    names = data.TableNames.from_settings(settings)
    root = tables_path or settings.output.tables_path
    with data.open_tables(settings, names, root, written_after) as (con, folder, views):
        if not views:
            raise GenaiApmError(f"no Parquet tables under {root} (run `make run` or a job first)")
        latest = data.latest_time(con, views, names)
        start = data.parse_since(since, latest)
        latency = data.latency_series(con, views, names.latency, start)
        period_lo = min(
            (t for cols in latency.values() for s in cols.values() for t, _ in s), default=None
        )
        all_alerts = [*data.alert_rows(folder), *(alerts or [])]
        end_ms = int(latest.timestamp() * 1000) if latest else None
        page, charts, empty = render(
            tables_path=root,
            names=names,
            period=(period_lo, end_ms),
            latency=latency,
            repeated=data.repeated_windows(con, views, names.latency),
            errors_over_time=data.error_breakdown(con, views, names.errors, start),
            errors_by_model=data.error_breakdown_by_model(con, views, names.errors, start),
            spend_by={d: data.spend(con, views, names.cost, d, start) for d in ("app", "user")},
            anomalies=data.anomalies(con, views, names.anomalies, start),
            alerts=[
                a
                for a in all_alerts
                if (data._ms(a.get("alert_time")) or 0) >= data.since_ms(start)
            ],
            alert_lanes=data.alert_lanes(all_alerts, start, end_ms),
            sessions=data.sessions(con, views, names.sessions, start),
            generated_at=now or dt.datetime.now(dt.UTC),
            slo=data.slo_budgets(con, views, names.slo, start),
            quota=data.quota_use(con, views, names.quota, start),
        )
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return Report(path.resolve(), charts, empty)
