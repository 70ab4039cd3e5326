"""The anomaly job's pure parts: threshold math, the generated SQL's shape, and scoring."""

from __future__ import annotations

import math

import pytest

from genai_apm.errors import GenaiApmError
from genai_apm.evaluation import scoring
from genai_apm.evaluation.scoring import Label, Opened
from genai_apm.jobs import anomalies, minutes
from genai_apm.settings import config

MIN = scoring.MINUTE


def test_robust_sd_takes_the_largest_floor():
    # IQR of a standard normal is 1.349: sd 1
    assert anomalies.robust_sd(100.0, 1.349, 0.01, 0.0) == pytest.approx(1.0)
    # a flat baseline: the relative floor decides
    assert anomalies.robust_sd(100.0, 0.0, 0.01, 0.25) == 25.0
    # a flat baseline at zero (an error rate): the absolute floor
    assert anomalies.robust_sd(0.0, 0.0, 0.02, 0.25) == 0.02


def test_deviation_and_severity():
    sd = anomalies.robust_sd(1000.0, 0.0, 1.0, 0.25)
    dev = anomalies.deviation(5000.0, 1000.0, sd)
    assert dev == 16.0  # a 5x prompt spike on a steady app
    assert anomalies.severity(dev, 5.0) == "critical"
    assert anomalies.severity(6.0, 5.0) == "warning"
    assert anomalies.severity(4.9, 5.0) == "none"
    # with threshold 5 and relative floor 0.25 nothing under 2.25x can open
    assert anomalies.deviation(2.24 * 1000, 1000.0, sd) < 5.0


def test_explanation_names_every_signal():
    text = anomalies.explanation(
        "support-bot",
        "app",
        [("input_tokens_mean", 5012.0, 1003.5, 16.0), ("latency_p50_ms", 9000.0, 3000.0, 8.0)],
    )
    assert text.startswith(
        "app support-bot: input_tokens_mean 5012.0000 vs baseline 1003.5000 (+16.0 sd); "
    )
    assert text.endswith("latency_p50_ms 9000.0000 vs baseline 3000.0000 (+8.0 sd)")


def test_sql_uses_settings_and_excludes_the_current_window(base_settings):
    s = base_settings.replace(anomalies={"baseline_windows": 12, "close_after_windows": 3})
    a = s.anomalies
    q = anomalies.quartiles_sql("anomaly_windows", a)
    assert "ROWS BETWEEN 11 PRECEDING AND CURRENT ROW" in q
    b = anomalies.baseline_sql("anomaly_quartiles", a)
    assert "LAG(input_tokens_mean_q[2]) OVER w" in b  # the baseline ends one window back
    st = anomalies.state_sql("anomaly_evaluations", a)
    assert "ROWS BETWEEN 2 PRECEDING AND CURRENT ROW" in st
    e = anomalies.evaluation_sql("anomaly_baselines", a)
    assert f"input_tokens_mean_baseline_n >= {a.warmup_windows}" in e
    assert f"{a.relative_floor * anomalies.TAIL!r} * ABS(latency_p99_ms_center)" in e
    w = anomalies.window_rows_sql(anomalies.window(s), a, minutes.gamma(s))
    assert f"requests >= {a.min_requests} THEN latency_p50_ms" in w
    # model, app and model x app from the small per-minute rows, users from minute_users
    stats, users = w.split("UNION ALL")
    assert "GROUPING SETS ((model_id, app_id), (model_id), (app_id))" in stats
    assert "TABLE minute_stats" in stats and "TABLE minute_users" in users
    assert "GROUPING SETS ((user_id))" in users


def test_zscore_detector_and_both_directions(base_settings):
    a = base_settings.replace(anomalies={"detector": "zscore", "direction": "both"}).anomalies
    q = anomalies.quartiles_sql("anomaly_windows", a)
    assert "AVG(latency_p50_ms * latency_p50_ms) OVER w" in q and "PERCENTILE" not in q
    b = anomalies.baseline_sql("anomaly_quartiles", a)
    assert "LAG(latency_p50_ms_q[1]) OVER w AS latency_p50_ms_center" in b
    e = anomalies.evaluation_sql("anomaly_baselines", a)
    assert "0.0 * ABS(latency_p50_ms_center)" in e  # no relative floor for the z-score
    st = anomalies.state_sql("anomaly_evaluations", a)
    assert f"ABS(latency_p50_ms_dev) >= {a.threshold!r}" in st


@pytest.mark.parametrize(
    "key,value", [("detector", "prophet"), ("direction", "down"), ("explain_share", "0")]
)
def test_bad_anomaly_choices_are_one_clear_error(key, value):
    with pytest.raises(config.GenaiApmError, match=f"anomalies.{key}"):
        config.load(path=None, environ={f"GENAI_APM_ANOMALIES_{key.upper()}": value})


def test_anomaly_settings_from_environment():
    s = config.load(
        path=None,
        environ={
            "GENAI_APM_ANOMALIES_THRESHOLD": "7.5",
            "GENAI_APM_ANOMALIES_STATE_TTL_HOURS": "12",
            "GENAI_APM_TOPICS_ANOMALIES": "x.anomalies",
        },
    )
    assert s.anomalies.threshold == 7.5 and s.anomalies.state_ttl_hours == 12
    assert s.topics.anomalies == "x.anomalies"


# --- scoring ---------------------------------------------------------------------------------


def test_score_labels_recall_delay_precision():
    labels = [
        Label("input_token_spike", "app", "a", 10 * MIN, 15 * MIN),
        Label("latency_regression", "model", "m", 20 * MIN, 25 * MIN),
        Label("cost_spike", "user", "u", 30 * MIN, 35 * MIN),
    ]
    opened = [
        Opened("app", "a", 11 * MIN),  # detected after 1 minute
        Opened("model_app", "m|a", 12 * MIN),  # related to the app label
        Opened("model", "m", 23 * MIN),  # detected after 3 minutes
        Opened("app", "other", 5 * MIN),  # false positive
        Opened("user", "u", 40 * MIN),  # too late for the grace: false
    ]
    r = scoring.score_labels(labels, opened, grace_ms=2 * MIN)
    assert r["recall"] == pytest.approx(2 / 3)
    assert r["delay_min_mean"] == 2.0 and r["delay_min_max"] == 3.0
    assert r["precision_strict"] == pytest.approx(2 / 5)
    assert r["precision_related"] == pytest.approx(3 / 5)
    assert r["false_positives"] == 2
    warm = scoring.score_labels(labels, opened, grace_ms=2 * MIN, since_ms=10 * MIN)
    assert warm["opened"] == 4


def test_scaled_sigmoid_matches_nab():
    assert scoring.scaled_sigmoid(-1.0) == pytest.approx(0.9866, abs=1e-4)
    assert scoring.scaled_sigmoid(0.0) == 0.0
    assert scoring.scaled_sigmoid(3.5) == -1.0
    assert scoring.scaled_sigmoid(1.0) == pytest.approx(2 / (1 + math.exp(5)) - 1)


def test_nab_file_score():
    windows = [(100, 200)]
    # detected at the window's start; a second detection inside adds nothing; one FP before
    r = scoring.nab_file_score(windows, [50, 100, 150], probation_end=0)
    assert r["windows_detected"] == 1 and r["false_detections"] == 1
    assert r["raw"] == pytest.approx(scoring.scaled_sigmoid(-1.0) - 0.11)
    assert r["perfect"] == pytest.approx(scoring.scaled_sigmoid(-1.0))
    assert r["null"] == -1.0
    # in probation: ignored; a miss costs the FN weight
    missed = scoring.nab_file_score(windows, [10], probation_end=20)
    assert missed["raw"] == -1.0 and missed["detections"] == 0
    # right after the window: a mild FP
    late = scoring.nab_file_score(windows, [210], probation_end=0)
    assert -1.11 < late["raw"] < -1.0
    s = scoring.nab_summary({"a": r, "b": missed})
    assert s["recall"] == 0.5 and s["precision"] == pytest.approx(2 / 3)
    span = r["perfect"] + missed["perfect"] - (r["null"] + missed["null"])
    assert s["nab_score_standard"] == pytest.approx(
        100 * (r["raw"] + missed["raw"] - (r["null"] + missed["null"])) / span
    )


def test_nab_events_are_valid_invocations(tmp_path):
    from genai_apm.schemas import validate
    from genai_apm.schemas.invocation import INVOCATION_V1

    series = {"g/s.csv": [(i * 300_000, float(v)) for i, v in enumerate([1, 2, 3, 0, 50])]}
    events = scoring.nab_events(series)
    assert [e["app_id"] for e in events] == ["s"] * 5
    assert [e["latency_ms"] for e in events][:2] == [1000.0, 2000.0]  # probation median 1
    for e in events:
        assert validate.problems(INVOCATION_V1, e) == [], e


def test_epoch_ms_reads_both_forms():
    assert scoring.epoch_ms("2014-04-10 07:15:00.000000") == scoring.epoch_ms(
        "2014-04-10T07:15:00Z"
    )


def test_summary_table_puts_detectors_side_by_side():
    result = {
        "robust": {
            "generator": {"recall": 1.0, "precision_strict": 0.9, "opened": 7},
            "nab": {"all": {"nab_score_standard": 12.345, "recall": 0.5}},
        },
        "zscore": {"generator": {"recall": 0.5, "precision_strict": None}},
    }
    rows = scoring.summary(result)
    assert rows[0] == ("measure", "robust", "zscore")
    by_name = {r[0]: r[1:] for r in rows[1:]}
    assert by_name["generator: recall"] == ("1.00", "0.50")
    assert by_name["generator: precision (root incidents)"] == ("0.90", "-")
    assert by_name["NAB: standard score"] == ("12.3", "-")
    assert by_name["clean: false incidents per day"] == ("-", "-")
    table = scoring.format_table(rows)
    assert table.splitlines()[1] == "|---|---|---|"
    assert "| generator: recall | 1.00 | 0.50 |" in table


def test_evaluate_anomalies_without_nab_data_is_one_line(tmp_path, capsys):
    from genai_apm import cli

    assert cli.main(["evaluate-anomalies", "nab", "--nab", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no NAB data" in err[0]


def test_daily_seasonality_adds_a_baseline_per_time_of_day(base_settings):
    off = base_settings.anomalies
    assert "slot" not in anomalies.baseline_sql("q", off).split("FROM")[0]
    a = base_settings.replace(anomalies={"seasonal_days": 7}).anomalies
    q = anomalies.seasonal_quartiles_sql("anomaly_quartiles", a)
    assert "PARTITION BY dimension, `key`, slot ORDER BY window_time" in q
    assert "ROWS BETWEEN 6 PRECEDING AND CURRENT ROW" in q
    b = anomalies.seasonal_baseline_sql("anomaly_seasonal_quartiles")
    assert "LAG(latency_p50_ms_sq[2]) OVER ws AS latency_p50_ms_scenter" in b
    # the trailing stage carries the seasonal columns through to the evaluation
    assert "latency_p50_ms_sbaseline_n" in anomalies.baseline_sql("anomaly_seasonal", a)
    e = anomalies.evaluation_sql("anomaly_baselines", a)
    # of the two baselines, the one the window deviates less from decides
    assert "ABS(latency_p50_ms_sdev) <= ABS(latency_p50_ms_tdev)" in e
    assert f"latency_p50_ms_sbaseline_n >= {anomalies.SEASONAL_MIN_DAYS}" in e


def test_default_nab_dir_from_a_checkout_and_from_a_git_worktree(tmp_path):
    # /x/main (a checkout) and /x/wt/w (its worktree); NAB sits at /x/shared/nab, which is
    # ../shared/nab from the main checkout, not from the worktree
    main, worktree = tmp_path / "main", tmp_path / "wt" / "w"
    gitdir = main / ".git" / "worktrees" / "w"
    gitdir.mkdir(parents=True)
    (gitdir / "commondir").write_text("../..\n")
    worktree.mkdir(parents=True)
    (worktree / ".git").write_text(f"gitdir: {gitdir}\n")
    nab = tmp_path / "shared" / "nab"
    assert scoring.checkout_roots(worktree) == [worktree, main.resolve()]
    # missing: the first candidate, which require_nab names in a one-line error
    assert scoring.default_nab_dir(worktree) == tmp_path / "wt" / "shared" / "nab"
    with pytest.raises(GenaiApmError, match="no NAB data at .*use --nab DIR"):
        scoring.require_nab(scoring.default_nab_dir(worktree))
    (nab / "data").mkdir(parents=True)
    (nab / scoring.NAB_MARKER).write_text("{}")
    assert scoring.default_nab_dir(worktree) == nab.resolve()
    assert scoring.default_nab_dir(main) == nab
    assert scoring.require_nab(nab) == nab
