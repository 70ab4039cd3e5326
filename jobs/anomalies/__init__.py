"""Anomaly detection on tokens, latency, errors and cost: window-level shifts per key, as
incidents with an open and a close event, a severity score and an explanation; and per-call
outliers (``outlier_views``).

Per tumbling window and key (dimension model, app, model_app or user) the job computes a row
of metrics (METRICS: mean and p99 of input and output tokens, p50 and p99 latency, error
rate, spend).
Each metric is compared with the key's own baseline, the median and interquartile range of
its value over the key's previous ``anomalies.baseline_windows`` windows:

    robust_sd = max(IQR / 1.349, relative_floor * |median|, the metric's absolute floor)
    deviation = (observed - median) / robust_sd

IQR / 1.349 is the standard deviation of a normal with that IQR; median and IQR ignore the
outliers a mean and variance would absorb, so one bad window does not mask the next. Only
rises count: more tokens, more latency, more errors, more spend. A metric is anomalous when
its deviation reaches ``anomalies.threshold`` and the key has at least
``anomalies.warmup_windows`` baseline values (before that the key is in WARMUP and never
alerts). Mean, p99 and rate metrics are NULL in windows with fewer than
``anomalies.min_requests`` calls (too noisy to judge; they neither alert nor feed the
baseline); cost is a sum and always counts.

With ``anomalies.history_windows`` = L > 0 (the adaptive detector) a metric must also
deviate more than it did in any of the key's L windows before (its largest deviation there,
a MAX over the L rows LAG'd past the windows that open an incident): the key's own recent
extremes set the bar, so a key whose normal includes big swings needs a bigger one to alert
(jobs/detectors.py is the numpy twin the evaluation tunes on).

A key's window is hot when any metric is anomalous; the key is in ALARM while any of its last
``anomalies.close_after_windows`` windows was hot, so one quiet window inside an incident
does not close it. Every metric of the key is judged in the same row, so a prompt-induced
latency regression (input tokens and latency rising together for one app) is ONE incident
whose explanation names both. Open and close events are state changes found with LAG, as in
jobs/alerts.py.

Everything is SQL: the baselines are OVER aggregations per key on the windowed rows
(PERCENTILE over ROWS BETWEEN N-1 PRECEDING AND CURRENT ROW, then LAG to exclude the
current window), so no Python runs per record or per window. State per key is N windowed
rows and a few scalars; keys silent for ``anomalies.state_ttl_hours`` are dropped
(``table.exec.state.ttl``), so memory follows the keys active in that span (docs/anomalies.md).

The stages, one module each, in the order their views read each other: windows (per-window
rows), baselines, evaluation (with the adaptive bar), states (the incident lifecycle and its
transitions), attribution (explained_by), outliers (per-call), job (views wired together,
counts, ``assemble``, SPEC); metrics holds what they share. This package re-exports the
names the rest of the code uses, and run, backfill and main as every job module does, so
``genai_apm.jobs.anomalies`` is still the job's module (``python -m genai_apm.jobs.anomalies``
runs __main__.py).
"""

from __future__ import annotations

from genai_apm.jobs.anomalies.baselines import (
    SEASONAL_MIN_DAYS,
    baseline_sql,
    quartiles_sql,
    seasonal_baseline_sql,
    seasonal_quartiles_sql,
)
from genai_apm.jobs.anomalies.evaluation import evaluation_sql, history_sql
from genai_apm.jobs.anomalies.job import (
    SPEC,
    assemble,
    backfill,
    configure,
    main,
    register_detector,
    register_shared,
    run,
)
from genai_apm.jobs.anomalies.metrics import (
    DIMENSIONS,
    JOB,
    METRICS,
    TAIL,
    deviation,
    explanation,
    robust_sd,
    severity,
    window,
)
from genai_apm.jobs.anomalies.outliers import EVENT_METRICS, OUTLIER_SD_FLOOR
from genai_apm.jobs.anomalies.states import state_sql
from genai_apm.jobs.anomalies.windows import window_rows_sql
from genai_apm.schemas.outputs import ANOMALY_COLUMNS
from genai_apm.schemas.outputs import ANOMALY_COUNT_COLUMNS as COUNT_COLUMNS

__all__ = [
    "ANOMALY_COLUMNS",
    "COUNT_COLUMNS",
    "DIMENSIONS",
    "EVENT_METRICS",
    "JOB",
    "METRICS",
    "OUTLIER_SD_FLOOR",
    "SEASONAL_MIN_DAYS",
    "SPEC",
    "TAIL",
    "assemble",
    "backfill",
    "baseline_sql",
    "configure",
    "deviation",
    "evaluation_sql",
    "explanation",
    "history_sql",
    "main",
    "quartiles_sql",
    "register_detector",
    "register_shared",
    "robust_sd",
    "run",
    "seasonal_baseline_sql",
    "seasonal_quartiles_sql",
    "severity",
    "state_sql",
    "window",
    "window_rows_sql",
]
