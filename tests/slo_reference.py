"""SLO burn rates, quota use and their alerts computed in plain Python from the calls: the
independent twin of jobs/slo.py that the tests compare the Flink job with."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from genai_apm import quotas
from genai_apm.objectives import BURN_WINDOWS, MEASURES, Objective, burn_alerts, objectives

MINUTE = 60_000
GOOD = ("success", "client", "content_filtered")
TREND_EPOCH_MS = 1_767_225_600_000


def iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def outcome(e: dict) -> str:
    """The call's single outcome, as jobs/minutes.py defines it."""
    if e["status"] == "error":
        c = e.get("error_class")
        return c if c in ("client", "server", "throttle", "timeout") else "unclassified"
    if e.get("error_class") == "content_filtered" or e.get("guardrail_intervened"):
        return "content_filtered"
    return "success"


def measure(e: dict, name: str) -> float | None:
    if e["status"] != "success":
        return None
    if MEASURES[name] == "ttft_ms":
        return e.get("ttft_ms") if e.get("streaming") else None
    return e.get("latency_ms")


def _key(o: Objective, e: dict) -> str:
    model, app = e.get("model_id") or "unknown", e.get("app_id") or "unknown"
    return {"model": model, "app": app, "model_app": f"{model}|{app}", "all": "*"}[o.scope]


def slo_rows(events: list[dict], settings) -> dict[tuple[str, str], list[dict]]:
    """(slo, key) -> its rows in minute order: minute, events, good, burn_<w>, budget."""
    out = {}
    for o in objectives(settings.slo):
        minutes: dict[str, dict[int, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
        for e in events:
            key = _key(o, e)
            if o.key is not None and key != o.key:
                continue
            cell = minutes[key][e["event_time"] // MINUTE]
            if o.sli == "availability":
                cell[0] += 1
                cell[1] += outcome(e) in GOOD
            else:
                value = measure(e, o.measure)
                if value is not None:
                    cell[0] += 1
                    cell[1] += value <= o.threshold_ms
        for key, cells in minutes.items():
            rows = []
            ordered = sorted(cells)
            for m in ordered:
                row = {"minute": m, "events": cells[m][0], "good": cells[m][1]}
                spans = {**BURN_WINDOWS, "period": o.period_minutes}
                for name, size in spans.items():
                    inside = [cells[k] for k in ordered if m - size < k <= m]
                    n = sum(c[0] for c in inside)
                    bad = sum(c[0] - c[1] for c in inside)
                    row[f"events_{name}"], row[f"bad_{name}"] = n, bad
                    row[f"burn_{name}"] = None if n == 0 else bad / n / o.budget
                n, bad = row["events_period"], row["bad_period"]
                row["budget_consumed_pct"] = None if n == 0 else 100 * bad / (o.budget * n)
                rows.append(row)
            out[(o.name, key)] = rows
    return out


def transitions(series: dict[tuple[str, str], list[tuple[int, str, float | None]]]) -> list:
    """(rule, key, state, previous_state, alert_time) per change; a key's first OK is silent.
    ``series``: (rule, key) -> (minute, state, observed) in minute order."""
    out = []
    for (rule, key), values in series.items():
        previous = None
        for minute, state, _ in values:
            if state != (previous or "OK"):
                out.append((rule, key, state, previous, iso((minute + 1) * MINUTE)))
            previous = state
    return sorted(out)


def burn_series(rows: dict[tuple[str, str], list[dict]], settings) -> dict:
    series = {}
    for o in objectives(settings.slo):
        for a in burn_alerts(settings.slo):
            for (name, key), values in rows.items():
                if name != o.name:
                    continue
                out = []
                for r in values:
                    long, short = r[f"burn_{a.long}"], r[f"burn_{a.short}"]
                    observed = None if long is None or short is None else min(long, short)
                    alarm = observed is not None and observed > a.burn
                    out.append((r["minute"], "ALARM" if alarm else "OK", observed))
                series[(f"slo-{o.name}-{a.name}", key)] = out
    return series


def quota_rows(events: list[dict], settings) -> dict[str, list[dict]]:
    """'provider|model|region' -> per-minute quota rows in minute order."""
    table = quotas.load(settings.quota.quota_file)
    q = settings.quota
    cells: dict[str, dict[int, dict]] = defaultdict(dict)
    for e in events:
        region = e.get("region") or "unknown"
        quota = table.quota_for(e["provider"], e["model_id"], region)
        if quota is None:
            continue
        key = f"{e['provider']}|{e['model_id']}|{region}"
        cell = cells[key].setdefault(
            e["event_time"] // MINUTE, {"apps": defaultdict(float), "requests": 0, "quota": quota}
        )
        used = quotas.quota_tokens(
            e.get("input_tokens") or 0,
            e.get("cache_read_input_tokens") or 0,
            e.get("output_tokens") or 0,
            quota.output_burndown,
        )
        cell["apps"][e.get("app_id") or "unknown"] += used
        cell["requests"] += 1
    out = {}
    for key, by_minute in cells.items():
        rows = []
        for m in sorted(by_minute):
            c = by_minute[m]
            quota = c["quota"]
            tokens = sum(c["apps"].values())
            tpm_use = 100 * tokens / quota.tpm
            rpm_use = None if quota.rpm is None else 100 * c["requests"] / quota.rpm
            use = tpm_use if rpm_use is None or tpm_use >= rpm_use else rpm_use
            top_tokens, top_app = max((int(v), app) for app, v in c["apps"].items())
            rows.append(
                {
                    "minute": m,
                    "quota_tokens": tokens,
                    "requests": c["requests"],
                    "use_pct": use,
                    "top_app": top_app,
                    "top_app_share_pct": None if tokens == 0 else 100 * top_tokens / tokens,
                }
            )
        for r in rows:
            points = [
                ((p["minute"] * MINUTE - TREND_EPOCH_MS) / MINUTE, p["use_pct"])
                for p in rows
                if r["minute"] - q.trend_minutes < p["minute"] <= r["minute"]
            ]
            n = len(points)
            sx = sum(x for x, _ in points)
            sy = sum(y for _, y in points)
            sxy = sum(x * y for x, y in points)
            sxx = sum(x * x for x, _ in points)
            denominator = n * sxx - sx * sx
            trend = None
            if n >= q.min_trend_points and denominator != 0:
                trend = (n * sxy - sx * sy) / denominator
            r["trend_pct_per_min"] = trend
            if r["use_pct"] >= 100:
                r["minutes_to_exhaustion"] = 0.0
            elif trend is not None and trend > 0:
                r["minutes_to_exhaustion"] = (100 - r["use_pct"]) / trend
            else:
                r["minutes_to_exhaustion"] = None
        out[key] = rows
    return out


def quota_series(rows: dict[str, list[dict]], settings) -> dict:
    q = settings.quota
    series = {}
    for key, values in rows.items():
        out = []
        for r in values:
            exhausted = r["minutes_to_exhaustion"]
            alarm = r["use_pct"] >= q.alert_use_pct or (
                exhausted is not None and exhausted <= q.forecast_horizon_minutes
            )
            out.append((r["minute"], "ALARM" if alarm else "OK", r["use_pct"]))
        series[("quota-headroom", key)] = out
    return series
