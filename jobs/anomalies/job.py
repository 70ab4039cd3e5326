"""Stage 7, the job: the stages wired into views (shared ones once, a detector's under its
prefix), the per-window counts gauge, the inserts into the anomaly outputs (``assemble``) and
the job's SPEC."""

from __future__ import annotations

from genai_apm.flink.env import create_view
from genai_apm.jobs import minutes
from genai_apm.jobs.anomalies.attribution import (
    best_explanation_sql,
    explanations_sql,
    incidents_sql,
    links_sql,
    pairs_sql,
    unexplained_sql,
)
from genai_apm.jobs.anomalies.baselines import (
    baseline_sql,
    quartiles_sql,
    seasonal_baseline_sql,
    seasonal_quartiles_sql,
)
from genai_apm.jobs.anomalies.evaluation import evaluation_sql, history_sql
from genai_apm.jobs.anomalies.metrics import (
    ALARM,
    DIMENSIONS,
    JOB,
    METRICS,
    WARMUP,
    Metrics,
    window,
)
from genai_apm.jobs.anomalies.outliers import ONE_MINUTE, outlier_views
from genai_apm.jobs.anomalies.states import state_sql, transitions_sql
from genai_apm.jobs.anomalies.windows import WINDOW_COLUMNS, window_rows_sql
from genai_apm.jobs.runner import Job
from genai_apm.jobs.sinks import Sinks
from genai_apm.jobs.windows import Window
from genai_apm.schemas.outputs import ANOMALY_COLUMNS
from genai_apm.schemas.outputs import ANOMALY_COUNT_COLUMNS as COUNT_COLUMNS
from genai_apm.settings.config import Settings


def counts_sql(source: str, w: Window) -> str:
    """Per window: incidents open among the keys seen in it (a CloudWatch gauge)."""
    return f"""
SELECT CAST(window_start AS TIMESTAMP_LTZ(3)) AS window_start,
  CAST(window_end AS TIMESTAMP_LTZ(3)) AS window_end,
  COUNT(*) FILTER (WHERE state = '{ALARM}') AS open_incidents,
  COUNT(*) FILTER (WHERE state <> '{WARMUP}') AS keys_evaluated,
  COUNT(*) FILTER (WHERE state = '{WARMUP}') AS keys_warming_up,
  MAX(score) AS max_score
FROM TABLE({w.tvf(source, "row_time")})
GROUP BY window_start, window_end"""


def register_shared(
    t_env,
    settings: Settings,
    cost_expression: str,
    dimensions: tuple = DIMENSIONS,
    attribution: bool = True,
) -> None:
    """The views every detector reads: anomaly_windows (metrics per window and key of
    ``dimensions``), anomaly_links (the traffic pairs of keys share, for attribution) and the
    per-call outliers, none of which depend on the detector's settings."""
    s, w = settings.anomalies, window(settings)
    minutes.register(t_env, settings, cost_expression)
    if s.outliers:
        minutes.rollup(t_env, settings, ONE_MINUTE)
    views = (
        # anomaly_windows: one row per window and key with requests, the metrics, weights, slot
        ("anomaly_windows", window_rows_sql(w, s, minutes.gamma(settings), dimensions)),
        # anomaly_pairs: one row per window and key pair with g_ flags and the pair's weights;
        # anomaly_links: one row per window and parent -> child key with the child's weights
        *(
            (("anomaly_pairs", pairs_sql(w)), ("anomaly_links", links_sql("anomaly_pairs")))
            if attribution
            else ()
        ),
        # views are validated when created: without outliers the 1-minute rollup they read
        # is not registered
        *(outlier_views(s) if s.outliers else ()),
    )
    for name, sql in views:
        create_view(t_env, name, sql)


def register_detector(
    t_env,
    settings: Settings,
    prefix: str = "",
    metrics: Metrics = METRICS,
    attribution: bool = True,
) -> None:
    """One detector's stages over anomaly_windows and anomaly_links: ``prefix``anomaly_states
    (each key's evaluation per window), ..._incidents (open and close events) and ..._counts.
    Several detectors with different prefixes share one job's windows (the evaluation runs
    three side by side over one source). An evaluation on single-valued series (NAB) judges
    only the metric that carries them and skips attribution (``explained_by`` NULL): the same
    openings for a fraction of the work."""
    s, w = settings.anomalies, window(settings)

    def v(name: str) -> str:
        return prefix + name

    attributed = (
        # one row per window and hot key, with its anomaly_states row
        ("anomaly_hot", f"SELECT * FROM {v('anomaly_states')} WHERE hot"),
        # one row per window and key in ALARM, with its anomaly_states row
        ("anomaly_alarmed", f"SELECT * FROM {v('anomaly_states')} WHERE state = '{ALARM}'"),
        # one row per window, hot key and key in ALARM explaining it, with the share
        (
            "anomaly_explanations",
            explanations_sql(s, v("anomaly_hot"), "anomaly_links", v("anomaly_alarmed")),
        ),
        # one row per window and explained hot key: the explaining key of largest share
        ("anomaly_explained", best_explanation_sql(v("anomaly_explanations"), w)),
        # one row per open or close event (ANOMALY_COLUMNS), explained_by where found
        ("anomaly_incidents", incidents_sql(v("anomaly_transitions"), v("anomaly_explained"))),
    )
    evaluations = v("anomaly_evaluations")
    views = (
        # one row per window and key with each metric's last-N statistics (_q) and count (_n)
        ("anomaly_quartiles", quartiles_sql("anomaly_windows", s, metrics)),
        *(
            (
                # one row per window and key, plus each metric's slot quartiles of the last days
                (
                    "anomaly_seasonal_quartiles",
                    seasonal_quartiles_sql(v("anomaly_quartiles"), s, metrics),
                ),
                # one row per window and key, plus each metric's seasonal baseline (_scenter, ...)
                (
                    "anomaly_seasonal",
                    seasonal_baseline_sql(v("anomaly_seasonal_quartiles"), metrics),
                ),
            )
            if s.seasonal_days
            else ()
        ),
        # one row per window and key with metrics, weights and each metric's baseline (LAG'd)
        (
            "anomaly_baselines",
            baseline_sql(
                v("anomaly_seasonal" if s.seasonal_days else "anomaly_quartiles"), s, metrics
            ),
        ),
        # one row per window and key with each metric's reference, sd, deviation, warm flag
        ("anomaly_evaluations", evaluation_sql(v("anomaly_baselines"), s, metrics)),
        # one row per window and key, plus each metric's bar: its top deviation of L before
        *(
            (("anomaly_history", history_sql(evaluations, s, metrics)),)
            if s.history_windows
            else ()
        ),
        # one row per window and key with hot flags, state, score, top metric and explanation
        (
            "anomaly_states",
            state_sql(v("anomaly_history") if s.history_windows else evaluations, s, metrics),
        ),
        # one row per state change of a key: an open or close event and its window_time
        ("anomaly_transitions", transitions_sql(v("anomaly_states"), w, s)),
        *(
            attributed
            if attribution
            # one row per open or close event (ANOMALY_COLUMNS), explained_by NULL
            else (("anomaly_incidents", unexplained_sql(v("anomaly_transitions"))),)
        ),
        # the TVF adds its own window columns: the state rows' rowtime, renamed
        # one row per window and key with its rowtime, state and score
        (
            "anomaly_state_times",
            f"SELECT window_time AS row_time, state, score FROM {v('anomaly_states')}",
        ),
        # one row per window with open incidents, keys evaluated and warming up, max score
        ("anomaly_counts", counts_sql(v("anomaly_state_times"), w)),
    )
    for name, sql in views:
        create_view(t_env, v(name), sql)


def register_views(t_env, settings: Settings, cost_expression: str) -> None:
    """anomaly_windows (metrics per window and key), anomaly_states (each key's evaluation
    per window), anomaly_incidents and anomaly_counts."""
    register_shared(t_env, settings, cost_expression)
    register_detector(t_env, settings)


def configure(t_env, settings: Settings) -> None:
    # OVER and LAG state per key expires after this long without a row: bounded memory with
    # churning keys (users), at the price of a fresh warm-up for a key silent that long.
    # It is a job-wide option: in a combined job it also expires other analytics' state.
    t_env.get_config().set("table.exec.state.ttl", f"{int(settings.anomalies.state_ttl_hours)} h")


def assemble(t_env, settings: Settings, statements, sinks: Sinks, *, windows: bool = False) -> None:
    """Add the anomaly inserts over the registered `invocations` view to ``statements``;
    ``windows`` also writes the per-window metrics as JSON lines under the tables path
    (anomaly_windows: tests and scoring)."""
    from genai_apm import pricing as prices
    from genai_apm.connectors.files import partition_values

    table = prices.load(settings.cost.pricing_file)  # a bad file fails before Flink runs
    configure(t_env, settings)
    register_views(t_env, settings, prices.cost_sql(table))
    columns = ", ".join(f"`{n}`" for n, _ in ANOMALY_COLUMNS)
    sources = ["anomaly_incidents"] + (["anomaly_outliers"] if settings.anomalies.outliers else [])
    # one INSERT per table: two sinks of one exactly-once Kafka table would share its
    # transactional ids, which the connector refuses
    events = " UNION ALL ".join(f"SELECT {columns} FROM {source}" for source in sources)
    out = sinks.events("anomalies", "anomaly_events", ANOMALY_COLUMNS, key=["dimension", "key"])
    statements.add_insert_sql(f"INSERT INTO `{out}` {events}")
    statements.add_insert_sql(
        f"INSERT INTO `{sinks.parquet('anomalies', ANOMALY_COLUMNS)}` "
        f"SELECT *, {partition_values('alert_time')} FROM ({events})"
    )
    counts = sinks.events("anomaly_counts", "anomaly_counts", COUNT_COLUMNS)
    statements.add_insert_sql(f"INSERT INTO `{counts}` SELECT * FROM anomaly_counts")
    if windows:
        cols = ", ".join(f"`{n}`" for n, _ in WINDOW_COLUMNS)
        out = sinks.files("anomaly_windows", WINDOW_COLUMNS)
        statements.add_insert_sql(
            f"INSERT INTO `{out}` SELECT {cols} FROM ("
            "SELECT CAST(window_start AS TIMESTAMP_LTZ(3)) AS window_start, "
            "CAST(window_end AS TIMESTAMP_LTZ(3)) AS window_end, dimension, `key`, requests, "
            f"{', '.join(m.name for m in METRICS)} FROM anomaly_windows)"
        )


SPEC = Job(JOB, (assemble,))
run, backfill, main = SPEC.run, SPEC.backfill, SPEC.main
