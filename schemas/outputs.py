"""Every derived output, declared once: its columns, its key, its window and its table.

The jobs write what is declared here (their sinks take these column lists), and everything
that reads the outputs is generated from it: the Athena/Glue DDL (genai_apm.deploy.athena), the
report's table names (genai_apm.serve.report_data), the CloudWatch exporter's inputs, the rollup
queries. Tools import this module, never a job module.

A Parquet table is written under ``<output.tables_path>/<table>/`` in Hive partitions
``dt=YYYY-MM-DD/hour=HH/`` of its ``partition_time`` column; its Kafka topic is
``settings.topics.<topic>``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from genai_apm.jobs.windows import Window, duration_name, tumbling_and_sliding
from genai_apm.objectives import BURN_WINDOWS
from genai_apm.settings.config import Settings

Columns = Sequence[tuple[str, str]]  # (name, Flink SQL type)

ALL = "*"  # the value of model_id / app_id / key in rollup rows: every model, app, key


# ---- latency (jobs/latency.py) -----------------------------------------------------------


def histogram_gamma(relative_error: float) -> float:
    """gamma = (1 + a) / (1 - a): bucket i holds (gamma^(i-1), gamma^i], and its estimate
    2 gamma^i / (gamma + 1) is within relative error a of any member."""
    return (1 + relative_error) / (1 - relative_error)


def percentile_name(p: float) -> str:
    """0.5 -> p50, 0.999 -> p99_9: valid column names for every sink and Athena."""
    return "p" + f"{p * 100:g}".replace(".", "_")


def latency_windows(settings: Settings) -> list[Window]:
    s = settings.latency
    return tumbling_and_sliding(s.tumbling_minutes, s.sliding_minutes, s.sliding_hop_minutes)


# (column prefix, column suffix) of the percentile columns; jobs/latency.py METRICS names the
# histogram each is read from
LATENCY_MEASURES = (
    ("latency", "_ms"),
    ("ttft", "_ms"),
    ("tpot", "_ms"),
    ("output_tokens_per_s", ""),
)


def latency_columns(settings: Settings) -> list[tuple[str, str]]:
    cols = [
        ("window_start", "TIMESTAMP_LTZ(3)"),
        ("window_end", "TIMESTAMP_LTZ(3)"),
        ("window", "STRING"),
        ("model_id", "STRING"),
        ("app_id", "STRING"),
        ("requests", "BIGINT"),
        ("errors", "BIGINT"),
    ]
    for prefix, suffix in LATENCY_MEASURES:
        cols += [
            (f"{prefix}_{percentile_name(p)}{suffix}", "DOUBLE")
            for p in settings.latency.percentiles
        ]
    cols += [
        ("latency_max_ms", "DOUBLE"),
        ("input_tokens_sum", "BIGINT"),
        ("output_tokens_sum", "BIGINT"),
        ("input_tokens_mean", "DOUBLE"),
        ("output_tokens_mean", "DOUBLE"),
        ("latency_hist", "MULTISET<STRING>"),
        ("ttft_hist", "MULTISET<STRING>"),
    ]
    return cols


LATE_COLUMNS = (
    ("missed_window_start", "TIMESTAMP_LTZ(3)"),
    ("event_time", "TIMESTAMP_LTZ(3)"),
    ("watermark", "TIMESTAMP_LTZ(3)"),
    ("request_id", "STRING"),
    ("model_id", "STRING"),
    ("app_id", "STRING"),
    ("status", "STRING"),
    ("latency_ms", "DOUBLE"),
)
LATE_COUNT_COLUMNS = (
    ("missed_window_start", "TIMESTAMP_LTZ(3)"),
    ("model_id", "STRING"),
    ("late_events", "BIGINT"),
)


# ---- errors (jobs/errors.py) and the per-minute outcome counts (jobs/minutes.py) ----------

OUTCOMES = (  # (outcome, count column)
    ("success", "successes"),
    ("client", "client_errors"),
    ("server", "server_errors"),
    ("throttle", "throttles"),
    ("timeout", "timeouts"),
    ("content_filtered", "content_filtered"),
    ("unclassified", "unclassified_errors"),
)
FAILURES = ("client", "server", "throttle", "timeout", "unclassified")
# (outcome, count column, rate column)
RATES = {
    "success": "success_rate",
    "client": "client_error_rate",
    "server": "server_error_rate",
    "throttle": "throttle_rate",
    "timeout": "timeout_rate",
    "content_filtered": "content_filtered_rate",
}
ERROR_OUTCOMES = tuple((outcome, count, RATES.get(outcome)) for outcome, count in OUTCOMES)
UNAVAILABLE = ("server", "throttle", "timeout", "unclassified")


def error_windows(settings: Settings) -> list[Window]:
    s = settings.errors
    return tumbling_and_sliding(s.tumbling_minutes, s.sliding_minutes, s.sliding_hop_minutes)


def error_columns() -> list[tuple[str, str]]:
    cols = [
        ("window_start", "TIMESTAMP_LTZ(3)"),
        ("window_end", "TIMESTAMP_LTZ(3)"),
        ("window", "STRING"),
        ("model_id", "STRING"),
        ("app_id", "STRING"),
        ("requests", "BIGINT"),
        ("errors", "BIGINT"),
    ]
    cols += [(count, "BIGINT") for _, count, _ in ERROR_OUTCOMES]
    cols += [("error_rate", "DOUBLE")]
    cols += [(rate, "DOUBLE") for _, _, rate in ERROR_OUTCOMES if rate]
    cols += [("availability_pct", "DOUBLE"), ("error_types", "MULTISET<STRING>")]
    return cols


# ---- cost (jobs/cost.py) -----------------------------------------------------------------

COST_DIMENSIONS = (  # (dimension, column of cost_events)
    ("app", "app_id"),
    ("user", "user_id"),
    ("feature", "feature"),
    ("model", "model_id"),
    ("session", "session_id"),
)


def spend_window(settings: Settings) -> Window:
    minutes = settings.cost.window_minutes
    return Window(duration_name(minutes), minutes)


def cost_columns() -> list[tuple[str, str]]:
    return [
        ("window_start", "TIMESTAMP_LTZ(3)"),
        ("window_end", "TIMESTAMP_LTZ(3)"),
        ("window", "STRING"),
        ("dimension", "STRING"),
        ("key", "STRING"),
        ("requests", "BIGINT"),
        ("priced_requests", "BIGINT"),
        ("unpriced_requests", "BIGINT"),
        ("input_tokens", "BIGINT"),
        ("output_tokens", "BIGINT"),
        ("cache_read_tokens", "BIGINT"),
        ("cache_write_tokens", "BIGINT"),
        ("unpriced_tokens", "BIGINT"),  # input + output tokens of the unpriced calls
        ("cost_usd", "DOUBLE"),
        ("pricing_version", "STRING"),
    ]


# ---- alerts (jobs/alerts.py: every job's alert transitions) -----------------------------

ALERT_COLUMNS = (
    ("alert_time", "TIMESTAMP_LTZ(3)"),  # the end of the window whose evaluation changed
    ("rule", "STRING"),
    ("kind", "STRING"),  # threshold | budget
    ("metric", "STRING"),
    ("scope", "STRING"),  # model, app, model_app, all | user, app, feature
    ("key", "STRING"),  # model_app keys are "model|app"; all is "*"
    ("state", "STRING"),
    ("previous_state", "STRING"),  # NULL for a key's first evaluation
    ("observed", "DOUBLE"),
    ("op", "STRING"),
    ("threshold", "DOUBLE"),
    ("window", "STRING"),
    ("window_start", "TIMESTAMP_LTZ(3)"),
    ("window_end", "TIMESTAMP_LTZ(3)"),
    # what changed, in words: "availability_pct 91.2 < 95 over 5m" on ALARM, what recovered
    # on OK ("availability_pct 96.7, back above 95"), plus the rule's context (burn per window,
    # the app using most of a quota)
    ("message", "STRING"),
)


ALARM, OK = "ALARM", "OK"
# op -> the side a recovered value is back on: an ALARM on "< 95" clears "back above 95"
RECOVERED = {"<": "above", "<=": "above", ">": "below", ">=": "below"}


def describe(alert: dict) -> str:
    """One line for people (demo output, report): the alert's message when it has one, else
    the same wording rebuilt from its fields (alerts written before the message column)."""
    head = f"{alert.get('previous_state') or OK} -> {alert['state']}"
    if alert.get("message"):
        return f"{head}: {alert['message']}"
    observed, threshold, op = alert.get("observed"), alert.get("threshold"), alert.get("op", "")
    value = "n/a" if observed is None else f"{observed:.3g}"
    limit = "" if threshold is None else f"{threshold:g}"
    if alert["state"] == ALARM:
        return f"{head}: {alert.get('metric')} {value} {op} {limit}".rstrip()
    return f"{head}: {alert.get('metric')} {value}, back {RECOVERED.get(op, 'within')} {limit}"


# ---- SLOs and quota headroom (jobs/slo.py) ------------------------------------------------


def burn_column(window: str) -> str:
    return f"burn_rate_{window}"


SLO_COLUMNS = (
    ("window_start", "TIMESTAMP_LTZ(3)"),
    ("window_end", "TIMESTAMP_LTZ(3)"),
    ("slo", "STRING"),
    ("sli", "STRING"),  # availability | latency
    ("scope", "STRING"),  # model | app | model_app | all
    ("key", "STRING"),  # model_app keys are "model|app"; all is "*"
    ("objective_pct", "DOUBLE"),
    ("period", "STRING"),  # the compliance period: 30d
    ("events", "BIGINT"),  # in the minute
    ("good_events", "BIGINT"),
    ("sli_pct", "DOUBLE"),  # good / events in the minute
    ("period_events", "BIGINT"),
    ("period_good_events", "BIGINT"),
    ("period_sli_pct", "DOUBLE"),
    ("budget_consumed_pct", "DOUBLE"),  # of the error budget over the period, so far
    ("budget_remaining_pct", "DOUBLE"),  # 100 - consumed; negative once overspent
    *((burn_column(w), "DOUBLE") for w in BURN_WINDOWS),
)

QUOTA_COLUMNS = (
    ("window_start", "TIMESTAMP_LTZ(3)"),
    ("window_end", "TIMESTAMP_LTZ(3)"),
    ("provider", "STRING"),
    ("model_id", "STRING"),
    ("region", "STRING"),
    ("quota_tokens", "DOUBLE"),  # input - cache read + output x burndown
    # all calls, throttled ones too: demand, so use stays over 100% while the provider throttles
    # (throttled calls report no tokens)
    ("requests", "BIGINT"),
    ("throttles", "BIGINT"),
    ("tpm_limit", "DOUBLE"),
    ("rpm_limit", "DOUBLE"),  # NULL: not limited by requests
    ("tpm_use_pct", "DOUBLE"),
    ("rpm_use_pct", "DOUBLE"),
    ("use_pct", "DOUBLE"),  # the larger of the two
    ("headroom_tokens", "DOUBLE"),
    ("top_app", "STRING"),  # the app that used most quota tokens in the minute
    ("top_app_share_pct", "DOUBLE"),
    ("trend_pct_per_min", "DOUBLE"),  # slope of use_pct over the trend window
    ("minutes_to_exhaustion", "DOUBLE"),  # NULL: no rising trend to extrapolate
)


# ---- agents (jobs/agents.py) ---------------------------------------------------------------

SESSION_COLUMNS = (
    ("session_start", "TIMESTAMP_LTZ(3)"),  # the first span's start
    ("session_end", "TIMESTAMP_LTZ(3)"),  # the last span's start + the gap (window end)
    ("conversation_id", "STRING"),
    ("agent_name", "STRING"),
    ("service_name", "STRING"),
    ("duration_ms", "DOUBLE"),  # first span start -> last span end
    ("turns", "BIGINT"),  # invoke_agent spans
    ("failed_turns", "BIGINT"),
    ("llm_calls", "BIGINT"),  # chat spans
    ("llm_errors", "BIGINT"),
    ("tool_calls", "BIGINT"),  # execute_tool spans
    ("tool_errors", "BIGINT"),
    ("agent_cycles", "BIGINT"),
    ("spans", "BIGINT"),
    ("traces", "BIGINT"),
    ("orphan_spans", "BIGINT"),
    ("input_tokens", "BIGINT"),  # chat spans only
    ("output_tokens", "BIGINT"),
    ("cost_usd", "DOUBLE"),  # NULL when no chat call could be priced
    ("model_time_ms", "DOUBLE"),  # summed chat durations
    ("tool_time_ms", "DOUBLE"),  # summed execute_tool durations
    ("final_status", "STRING"),  # status_code of the last turn's root span
)


def agent_window(settings: Settings) -> Window:
    minutes = settings.agents.window_minutes
    return Window(duration_name(minutes), minutes)


def agent_stats_columns(settings: Settings) -> list[tuple[str, str]]:
    return [
        ("window_start", "TIMESTAMP_LTZ(3)"),
        ("window_end", "TIMESTAMP_LTZ(3)"),
        ("window", "STRING"),
        ("dimension", "STRING"),  # tool | agent
        ("key", "STRING"),  # the tool or agent name
        ("calls", "BIGINT"),
        ("errors", "BIGINT"),
        ("error_rate", "DOUBLE"),
        *((f"duration_{percentile_name(p)}_ms", "DOUBLE") for p in settings.agents.percentiles),
        ("duration_max_ms", "DOUBLE"),
        ("orphan_spans", "BIGINT"),
    ]


AGENT_STAT_DIMENSIONS = ("tool", "agent")

TRACE_COLUMNS = (
    ("trace_start", "TIMESTAMP_LTZ(3)"),
    ("trace_end", "TIMESTAMP_LTZ(3)"),  # the last span's start + max_trace_minutes
    ("trace_id", "STRING"),
    ("conversation_id", "STRING"),
    ("agent_name", "STRING"),
    ("duration_ms", "DOUBLE"),  # first span start -> last span end
    ("spans", "BIGINT"),
    ("orphan_spans", "BIGINT"),
    ("slowest_span", "STRING"),  # its name; the earliest of equally slow spans
    ("slowest_span_ms", "DOUBLE"),
    ("critical_path", "STRING"),  # span names, root first, joined by " > "
    ("critical_path_spans", "INT"),
)


# ---- anomalies (jobs/anomalies/) -------------------------------------------

ANOMALY_COLUMNS = (
    ("alert_time", "TIMESTAMP_LTZ(3)"),  # the end of the window whose evaluation changed
    ("event", "STRING"),  # open | close (window incidents) | outlier (one call)
    ("state", "STRING"),  # ALARM (open) | OK (close)
    ("previous_state", "STRING"),
    ("dimension", "STRING"),  # model, app, model_app (key "model|app"), user
    ("key", "STRING"),
    ("metrics", "STRING"),  # the anomalous metrics, comma separated; empty on close
    ("metric", "STRING"),  # the most deviant of them
    ("observed", "DOUBLE"),
    ("baseline", "DOUBLE"),  # its baseline median
    ("robust_sd", "DOUBLE"),
    ("deviation", "DOUBLE"),  # (observed - baseline) / robust_sd
    ("score", "DOUBLE"),  # the largest deviation among the anomalous metrics; 0 on close
    ("severity", "STRING"),  # warning | critical (score >= 2 x threshold) | none
    ("explanation", "STRING"),
    # open events only: the key whose anomaly explains this one ("user u-42"); NULL for a root
    ("explained_by", "STRING"),
    ("requests", "BIGINT"),
    ("window", "STRING"),
    ("window_start", "TIMESTAMP_LTZ(3)"),
    ("window_end", "TIMESTAMP_LTZ(3)"),
)
ANOMALY_COUNT_COLUMNS = (
    ("window_start", "TIMESTAMP_LTZ(3)"),
    ("window_end", "TIMESTAMP_LTZ(3)"),
    ("open_incidents", "BIGINT"),  # keys in ALARM among those with calls in the window
    ("keys_evaluated", "BIGINT"),  # keys past warm-up with calls in the window
    ("keys_warming_up", "BIGINT"),
    ("max_score", "DOUBLE"),
)


# ---- the Parquet tables --------------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    name: str  # the Athena/Glue name, and the folder under output.tables_path
    columns: Columns
    comment: str
    job: str  # the job that writes it
    partition_time: str  # the column whose event time gives the dt/hour partition
    topic: str | None = None  # settings.topics.<topic>, where the same rows also go to Kafka
    window: str | None = None
    key: tuple[str, ...] = ()  # the topic's record key (so its partitioning)


def _latency(s: Settings) -> list[Table]:
    return [
        *(
            Table(
                f"latency_{w.name}",
                latency_columns(s),
                f"latency per {w.name} window",
                "latency",
                "window_start",
                "latency",
                w.name,
                key=("model_id",),
            )
            for w in latency_windows(s)
        ),
        Table(
            "late_events",
            LATE_COLUMNS,
            "calls that arrived behind the watermark",
            "latency",
            "event_time",
            "late",
            key=("model_id",),
        ),
    ]


def _errors(s: Settings) -> list[Table]:
    return [
        Table(
            f"errors_{w.name}",
            error_columns(),
            f"call outcomes per {w.name} window",
            "errors",
            "window_start",
            "errors",
            w.name,
            key=("model_id",),
        )
        for w in error_windows(s)
    ]


def _cost(s: Settings) -> list[Table]:
    w = spend_window(s)
    return [
        Table(
            f"cost_{w.name}",
            cost_columns(),
            "spend per dimension and key",
            "cost",
            "window_start",
            "cost",
            w.name,
            key=("dimension", "key"),
        )
    ]


def _agents(s: Settings) -> list[Table]:
    name = agent_window(s).name
    return [
        Table(
            "sessions",
            SESSION_COLUMNS,
            "agent sessions (conversations)",
            "agents",
            "session_start",
            "sessions",
            key=("conversation_id",),
        ),
        Table(
            "traces",
            TRACE_COLUMNS,
            "per trace: slowest span, critical path",
            "agents",
            "trace_start",
            "traces",
            key=("trace_id",),
        ),
        *(
            Table(
                f"{d}_stats_{name}",
                agent_stats_columns(s),
                f"{d} calls per {name} window",
                "agents",
                "window_start",
                "agents",
                name,
                key=("key",),
            )
            for d in AGENT_STAT_DIMENSIONS
        ),
    ]


def _anomalies(s: Settings) -> list[Table]:
    return [
        Table(
            "anomalies",
            ANOMALY_COLUMNS,
            "anomaly incidents (open and close events) and outlier calls",
            "anomalies",
            "alert_time",
            "anomalies",
            key=("dimension", "key"),
        )
    ]


def _slo(s: Settings) -> list[Table]:
    return [
        Table(
            "slo_1m",
            SLO_COLUMNS,
            "per SLO, key and minute: SLI, error budget, burn rates",
            "slo",
            "window_start",
            "slo",
            "1m",
            key=("slo", "key"),
        ),
        Table(
            "quota_1m",
            QUOTA_COLUMNS,
            "per provider, model, region and minute: quota use",
            "slo",
            "window_start",
            "quota",
            "1m",
            key=("model_id",),
        ),
    ]


# One entry per job writing Parquet tables: a new job's tables are one line here.
DERIVED: tuple[Callable[[Settings], list[Table]], ...] = (
    _latency,
    _errors,
    _cost,
    _agents,
    _anomalies,
    _slo,
)


def derived_tables(settings: Settings) -> list[Table]:
    return [table for family in DERIVED for table in family(settings)]


def declared(settings: Settings, name: str) -> Table:
    """The declared table ``name`` (what a job's sink factory creates from)."""
    for table in derived_tables(settings):
        if table.name == name:
            return table
    raise KeyError(f"no declared output table {name!r}")


def finest(settings: Settings) -> dict[str, str]:
    """The finest (tumbling) table of latency, errors and cost: windows that do not overlap,
    so sums over them hold (what the report reads)."""
    return {
        "latency": f"latency_{latency_windows(settings)[0].name}",
        "errors": f"errors_{error_windows(settings)[0].name}",
        "cost": f"cost_{spend_window(settings).name}",
    }
