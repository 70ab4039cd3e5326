"""SLO and quota settings, the quota table, the generated SQL pieces, alert wording and the
quota-ramp scenario (no servers; the Flink job is tests/integration/test_slo_job.py)."""

from __future__ import annotations

import pytest

from genai_apm import objectives, quotas, traffic
from genai_apm.errors import GenaiApmError
from genai_apm.jobs import alerts, slo
from genai_apm.settings import config
from genai_apm.traffic.catalogue import MODELS
from genai_apm.traffic.presets import quota_ramp_incidents

BEDROCK = "anthropic.claude-3-5-sonnet-20241022-v2:0"


def _settings(**slo_settings) -> config.Settings:
    return config.load(None, environ={}).replace(slo=slo_settings)


def test_objectives_parse_scopes_keys_with_colons_and_both_slis():
    o = objectives.parse_objective(f"chat:availability:model={BEDROCK}:99.5%:30d")
    assert (o.scope, o.key, o.objective, o.period_minutes) == ("model", BEDROCK, 0.995, 43200)
    assert o.budget == pytest.approx(0.005) and o.period == "30d"
    lat = objectives.parse_objective("ttft:latency:model_app=gpt-4o|support-bot:0.99:12h:ttft:800")
    assert (lat.scope, lat.key, lat.objective, lat.period) == (
        "model_app",
        "gpt-4o|support-bot",
        0.99,
        "12h",
    )
    assert (lat.measure, lat.threshold_ms, lat.good_column) == ("ttft", 800, "slo_good_ttft_le_800")
    every = objectives.parse_objective("fleet:latency:all:95%:7d:latency:2500.5")
    assert every.key is None and every.good_column == "slo_good_latency_le_2500_5"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a:availability:model:100%:30d", "strictly between 0 and 100%"),
        ("a:availability:model:99.5%:30m", "whole days or hours"),
        ("a:availability:region:99%:30d", "scope 'region' is not one of"),
        ("a:availability:model=:99%:30d", "names no key"),
        ("a:speed:model:99%:30d", "sli 'speed'"),
        ("a:latency:model:99%:30d:ttft", "expected 7"),
        ("a:latency:model:99%:30d:tpot:800", "measure 'tpot'"),
        ("a:latency:model:99%:30d:ttft:-5", "must be positive"),
        ("a b:availability:model:99%:30d", "letters, digits"),
    ],
)
def test_bad_objectives_are_one_clear_line(text, message):
    with pytest.raises(GenaiApmError) as e:
        _settings(objectives=(text,))
    assert message in str(e.value) and "\n" not in str(e.value)
    assert "slo.objectives[0]" in str(e.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("page:5m:1h:14.4", "must be longer"),
        ("page:2h:5m:14.4", "window '2h'"),
        ("page:1h:5m:0", "must be positive"),
        ("page:1h:5m", "expected 4"),
    ],
)
def test_bad_burn_alerts_are_one_clear_line(text, message):
    with pytest.raises(GenaiApmError) as e:
        _settings(burn_alerts=(text,))
    assert message in str(e.value) and "slo.burn_alerts[0]" in str(e.value)


def test_repeated_names_and_env_override():
    with pytest.raises(GenaiApmError, match="repeated: a"):
        _settings(objectives=("a:availability:model:99%:30d", "a:availability:app:99%:30d"))
    s = config.load(
        None,
        environ={
            "GENAI_APM_SLO_OBJECTIVES": "x:availability:all:99%:7d,y:latency:app:90%:1d:ttft:500"
        },
    )
    assert [o.name for o in objectives.objectives(s.slo)] == ["x", "y"]
    with pytest.raises(GenaiApmError, match="quota.alert_use_pct"):
        config.load(None, environ={"GENAI_APM_QUOTA_ALERT_USE_PCT": "0"})
    with pytest.raises(GenaiApmError, match="min_trend_points"):
        config.load(None, environ={"GENAI_APM_QUOTA_MIN_TREND_POINTS": "1"})


def test_minute_aggregates_are_exact_counts_per_threshold_and_empty_without_latency_slos():
    assert slo.minute_aggregates(_settings(objectives=())) == []
    assert slo.minute_aggregates(_settings()) == []  # the default availability SLO needs none
    s = _settings(
        objectives=(
            "a:latency:model:99%:30d:ttft:800",
            "b:latency:app:95%:30d:ttft:800",  # the same threshold: one column
            "c:latency:all:99%:7d:latency:2000",
        )
    )
    assert slo.minute_aggregates(s) == [
        ("slo_good_latency_le_2000", "COUNT(*) FILTER (WHERE ok_latency_ms <= 2000.0)"),
        ("slo_good_ttft_le_800", "COUNT(*) FILTER (WHERE ttft_ms <= 800.0)"),
        ("slo_latency_calls", "COUNT(ok_latency_ms)"),
        ("slo_ttft_calls", "COUNT(ttft_ms)"),
    ]


def test_slo_minutes_sql_reads_the_scope_and_good_outcomes():
    o = objectives.parse_objective(f"a:availability:model_app={BEDROCK}|bot:99%:30d")
    sql = slo.slo_minutes_sql(o)
    assert "SUM(successes + client_errors + content_filtered)" in sql
    assert f"CONCAT(model_id, '|', app_id) = '{BEDROCK}|bot'" in sql
    assert "GROUP BY window_start, window_end, window_time, model_id, app_id" in sql
    assert "throttles" not in sql.split("good_events")[0].split("AS events")[1]


def test_over_ranges_cover_whole_minutes():
    assert slo._interval(4) == "INTERVAL '4' MINUTE"
    assert slo._interval(4319) == "INTERVAL '2 23:59' DAY TO MINUTE"
    assert slo._interval(43199) == "INTERVAL '29 23:59' DAY TO MINUTE"
    assert "INTERVAL '59' MINUTE PRECEDING" in slo._over(60, "slo")


QUOTA_TABLE = """
format = 1
version = "q1"

[[quota]]
provider = "aws.bedrock"
model_id = "m"
region = "*"
tpm = 1000
source = "any region"

[[quota]]
provider = "aws.bedrock"
model_id = "m"
region = "eu-west-1"
tpm = 500
rpm = 10
output_burndown = 5
source = "eu"
"""


def test_quota_table_prefers_the_region_row_and_generates_sql():
    table = quotas.parse(QUOTA_TABLE, "t")
    assert table.quota_for("aws.bedrock", "m", "eu-west-1").tpm == 500
    assert table.quota_for("aws.bedrock", "m", "us-east-1").tpm == 1000
    assert table.quota_for("openai", "m", "us-east-1") is None
    sql = quotas.limit_sql(table, "tpm")
    # the specific region's branch comes first, so it wins in the CASE
    assert sql.index("'eu-west-1'") < sql.index("THEN CAST(1000.0")
    assert "rpm" not in quotas.limit_sql(table, "rpm") and "10.0" in quotas.limit_sql(table, "rpm")
    assert quotas.quota_tokens(1000, 400, 10, 5) == 650


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace("tpm = 500", "tpm = 0"), "must be a finite, positive number"),
        (lambda t: t.replace('region = "eu-west-1"', 'region = "*"'), "two rows"),
        (lambda t: t.replace('source = "eu"', ""), "missing source"),
        (lambda t: t.replace("rpm = 10", "rpm = 10\nburst = 3"), "unknown keys burst"),
        (lambda t: t.replace("format = 1", "format = 2"), "format 2"),
    ],
)
def test_bad_quota_tables_are_clear_errors(edit, message):
    with pytest.raises(GenaiApmError, match=message):
        quotas.parse(edit(QUOTA_TABLE), "t")


def test_shipped_quota_table_covers_the_generator_models_with_sources():
    table = quotas.load()
    covered = {(q.provider, q.model_id) for q in table.quotas}
    assert covered == {(m.provider, m.model_id) for m in MODELS}
    assert all(q.source.strip() and q.tpm > 0 for q in table.quotas)


def test_alert_wording_says_what_recovered():
    ok = {"previous_state": "ALARM", "state": "OK", "metric": "availability_pct"}
    ok |= {"observed": 96.66, "op": "<", "threshold": 95.0}
    assert alerts.describe(ok) == "ALARM -> OK: availability_pct 96.7, back above 95"
    alarm = ok | {"previous_state": None, "state": "ALARM", "observed": 91.04}
    assert alerts.describe(alarm) == "OK -> ALARM: availability_pct 91 < 95"
    assert alerts.describe(ok | {"message": "words"}) == "ALARM -> OK: words"
    sql = alerts.message_sql("throttle_rate", ">", 0.05, "5m", "`observed`")
    assert "', back below '" in sql and "' over 5m'" in sql


def test_quota_ramp_starts_the_storm_at_the_first_call_over_the_quota(tmp_path):
    quota_file = tmp_path / "q.toml"
    quota_file.write_text(
        'format = 1\nversion = "t"\n[[quota]]\nprovider = "aws.bedrock"\n'
        'model_id = "amazon.nova-pro-v1:0"\nregion = "us-east-1"\ntpm = 400000\nrpm = 300\n'
        'source = "test"\n'
    )
    s = config.load(None, environ={}).replace(quota={"quota_file": str(quota_file)})
    spec = traffic.TrafficSpec(rate_per_s=3, error_rate=0.0)
    ramp, storm = quota_ramp_incidents(spec, 3600, s)
    assert (ramp.kind, ramp.key, storm.kind, storm.key) == (
        "traffic_ramp",
        "ticket-classifier",
        "throttling_storm",
        "amazon.nova-pro-v1:0",
    )
    assert spec.start_ms + 0.4 * 3_600_000 == ramp.start_ms < storm.start_ms < ramp.end_ms
    # independently: the first call whose minute passes 300 requests in us-east-1
    clean = traffic.TrafficSpec(**{**spec.__dict__, "duration_s": 3600, "incidents": (ramp,)})
    counts: dict[int, int] = {}
    first = None
    for r in traffic.traffic(clean):
        e = r.event
        if e.get("model_id") == storm.key and e.get("region") == "us-east-1":
            minute = e["event_time"] // 60_000
            counts[minute] = counts.get(minute, 0) + 1
            if counts[minute] > 300 and first is None:
                first = e["event_time"]
    assert storm.start_ms == first
    empty = tmp_path / "empty.toml"
    empty.write_text('format = 1\nversion = "e"\n')
    with pytest.raises(ValueError, match="has no row"):
        quota_ramp_incidents(spec, 3600, s.replace(quota={"quota_file": str(empty)}))
