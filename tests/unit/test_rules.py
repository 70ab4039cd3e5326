"""Alert and budget rule strings: parsed into typed rules, or refused with a clear error."""

from __future__ import annotations

import pytest

from genai_apm import rules
from genai_apm.errors import GenaiApmError
from genai_apm.settings import config

WINDOWS = ("1m", "5m")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "throttle-rate:throttle_rate:model:>:5%:5m",
            rules.ThresholdRule("throttle-rate", "throttle_rate", "model", None, ">", 0.05, "5m"),
        ),
        (
            "srv:server_errors:all:>=:10:1m",
            rules.ThresholdRule("srv", "server_errors", "all", None, ">=", 10.0, "1m"),
        ),
        (  # a Bedrock model id has a colon of its own
            "sonnet:error_rate:model=anthropic.claude-3-5-sonnet-20241022-v2:0:>:0.1:5m",
            rules.ThresholdRule(
                "sonnet",
                "error_rate",
                "model",
                "anthropic.claude-3-5-sonnet-20241022-v2:0",
                ">",
                0.1,
                "5m",
            ),
        ),
        (
            "avail:availability_pct:model_app=gpt-4o|support-bot:<:99.5:5m",
            rules.ThresholdRule(
                "avail", "availability_pct", "model_app", "gpt-4o|support-bot", "<", 99.5, "5m"
            ),
        ),
    ],
)
def test_threshold_rules_parse(text, expected):
    assert rules.parse_threshold_rule(text, WINDOWS) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a:throttle_rate:model:>:5%", "has 5 fields, expected 6"),
        ("a:latency:model:>:5:5m", "metric 'latency' is not one of"),
        ("a:throttle_rate:region:>:5%:5m", "scope 'region' is not one of"),
        ("a:throttle_rate:model=:>:5%:5m", "names no key"),
        ("a:throttle_rate:model:!=:5%:5m", "operator '!=' is not one of"),
        ("a:throttle_rate:model:>:five:5m", "threshold 'five' is not a number"),
        ("a:throttle_rate:model:>:nan:5m", "is not finite"),
        ("a:throttle_rate:model:>:5:5m", "outside 0..1 (rates are fractions: 0.05 or 5%)"),
        ("a:server_errors:model:>:5%:1m", "a percentage threshold needs a *_rate metric"),
        ("a:availability_pct:model:<:101:5m", "outside 0..100"),
        ("a:throttle_rate:model:>:5%:15m", "window '15m' is not one of the errors windows 1m, 5m"),
        ("a b:throttle_rate:model:>:5%:5m", "name 'a b' must be"),
    ],
)
def test_bad_threshold_rules_say_why(text, message):
    with pytest.raises(rules.RuleError) as e:
        rules.parse_threshold_rule(text, WINDOWS)
    assert message in str(e.value)


def test_budget_rules_parse_and_fail_clearly():
    assert rules.parse_budget_rule("u:user:1h:5") == rules.BudgetRule("u", "user", None, "1h", 5.0)
    assert rules.parse_budget_rule("bot:app=support-bot:1d:250.5") == rules.BudgetRule(
        "bot", "app", "support-bot", "1d", 250.5
    )
    for text, message in [
        ("u:user:1w:5", "period '1w' is not one of 1h, 1d"),
        ("u:model:1h:5", "scope 'model' is not one of user, app, feature"),
        ("u:user:1h:-1", "negative"),
        ("u:user:1h", "expected 4"),
    ]:
        with pytest.raises(rules.RuleError, match=message):
            rules.parse_budget_rule(text)


def test_rules_are_checked_when_settings_load(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(
        '[alerts]\nrules = ["t:throttle_rate:model:>:2%:5m"]\nmin_requests = 5\n'
        '[cost]\nbudgets = ["b:feature=chat:1d:10"]\n'
    )
    s = config.load(path, environ={})
    assert rules.threshold_rules(s)[0].threshold == pytest.approx(0.02)
    assert rules.budget_rules(s)[0].key == "chat"
    # one env var carries several rules, comma-separated
    s = config.load(
        environ={"GENAI_APM_ALERTS_RULES": "a:errors:all:>:3:1m, b:timeouts:app:>:1:1m"}
    )
    assert [r.name for r in rules.threshold_rules(s)] == ["a", "b"]


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"GENAI_APM_ALERTS_RULES": "a:errors:all:>:3:1m,broken"},
            r"config alerts.rules\[1\] 'broken': has 1 fields, expected 6; expected name:metric",
        ),
        ({"GENAI_APM_COST_BUDGETS": "u:user:2h:5"}, r"config cost.budgets\[0\] 'u:user:2h:5'"),
        (
            {
                "GENAI_APM_ALERTS_RULES": "x:errors:all:>:3:1m",
                "GENAI_APM_COST_BUDGETS": "x:app:1d:1",
            },
            "rule names must be unique; repeated: x",
        ),
        # the default rules name a 5m window: changing the windows without them is an error
        ({"GENAI_APM_ERRORS_SLIDING_MINUTES": "10"}, "window '5m' is not one of the errors"),
        ({"GENAI_APM_COST_BUDGET_HOUR_HOP_MINUTES": "7"}, "must divide 60"),
    ],
)
def test_bad_rules_fail_at_load(environ, message):
    with pytest.raises(GenaiApmError, match=message):
        config.load(environ=environ)


def test_default_rules_are_valid():
    s = config.load(path=None, environ={})
    assert len(rules.threshold_rules(s)) == len(s.alerts.rules) > 0
    assert len(rules.budget_rules(s)) == len(s.cost.budgets) > 0
