"""The CloudWatch dashboard body (infra/aws/dashboard.json)."""

from __future__ import annotations

from typing import Any

from genai_apm.deploy.aws_templates.constants import (
    BEDROCK_DIMENSION,
    BEDROCK_ERROR_METRICS,
    BEDROCK_NAMESPACE,
)
from genai_apm.deploy.aws_templates.published import Published


def _search(namespace: str, dimensions: list[str], metric: str, stat: str, period: int) -> str:
    schema = ",".join([f'"{namespace}"', *dimensions])
    return f"SEARCH('{{{schema}}} MetricName=\"{metric}\"', '{stat}', {period})"


def _graph(title: str, metrics: list, x: int, y: int, **extra: Any) -> dict:
    return {
        "type": "metric",
        "x": x,
        "y": y,
        "width": 12,
        "height": 6,
        "properties": {
            "title": title,
            "region": "${AWS::Region}",
            "view": "timeSeries",
            "metrics": metrics,
            **extra,
        },
    }


def _expr(expression: str, ident: str, label: str, **extra: Any) -> list:
    return [{"expression": expression, "id": ident, "label": label, **extra}]


def slo_widgets(ns: str, y: int) -> list[dict]:
    """Error budget and burn per SLO and key, quota use and forecast per model and region."""
    from genai_apm.export import cloudwatch

    burn = _search(ns, ["Key", "SLO", "Window"], cloudwatch.BURN_RATE, "Maximum", 300)
    return [
        _graph(
            "SLO error budget remaining (%) and 1 h burn rate",
            [
                _expr(
                    _search(ns, ["Key", "SLO"], cloudwatch.ERROR_BUDGET_REMAINING, "Minimum", 300),
                    "e1",
                    "budget left",
                ),
                _expr(
                    burn.replace(" MetricName=", ' Window="1h" MetricName='),
                    "e2",
                    "burn 1h",
                    yAxis="right",
                ),
            ],
            0,
            y,
            period=300,
        ),
        _graph(
            "Quota use (%) and minutes to exhaustion by model and region",
            [
                _expr(
                    _search(
                        ns, ["ModelId", "Provider", "Region"], cloudwatch.QUOTA_USE, "Maximum", 60
                    ),
                    "e1",
                    "use",
                ),
                _expr(
                    _search(
                        ns,
                        ["ModelId", "Provider", "Region"],
                        cloudwatch.QUOTA_EXHAUSTION,
                        "Minimum",
                        60,
                    ),
                    "e2",
                    "minutes to exhaustion",
                    yAxis="right",
                ),
            ],
            12,
            y,
            period=60,
        ),
    ]


def dashboard(published: Published, alarm_ids: list[str]) -> dict:
    """The dashboard body; ${AWS::Region} and ${<Alarm>.Arn} are filled in by Fn::Sub."""
    from genai_apm.export import cloudwatch

    p, ns = published, published.namespace
    model, app = [p.model], [p.app, p.model]
    bedrock = [BEDROCK_DIMENSION]
    widgets = [
        {
            "type": "text",
            "x": 0,
            "y": 0,
            "width": 24,
            "height": 2,
            "properties": {
                "markdown": (
                    f"## genai-apm\nMetrics in `{ns}` come from `genai-apm export cloudwatch` "
                    f"(1-minute windows, per {p.model} and {p.app}); `{BEDROCK_NAMESPACE}` "
                    "are Bedrock's own. Anomaly incidents found by the anomalies job are "
                    f"counted in `{cloudwatch.OPEN_INCIDENTS}`; their explanations are in its "
                    "Kafka topic and Parquet table (Athena)."
                )
            },
        },
        _graph(
            "Invocations by model",
            [
                _expr(_search(ns, model, p.metric("Invocations"), "Sum", 60), "e1", "genai-apm"),
                _expr(
                    _search(BEDROCK_NAMESPACE, bedrock, "Invocations", "Sum", 60), "e2", "Bedrock"
                ),
            ],
            0,
            2,
            stat="Sum",
            period=60,
        ),
        _graph(
            "p95 latency vs output tokens",
            [
                _expr(
                    _search(ns, model, p.metric("InvocationLatency"), "p95", 300),
                    "e1",
                    "p95 latency (ms)",
                ),
                _expr(
                    _search(ns, model, p.metric("OutputTokenCount"), "Sum", 300),
                    "e2",
                    "output tokens",
                    yAxis="right",
                ),
            ],
            12,
            2,
            period=300,
        ),
        _graph(
            "Token usage by model and app",
            [
                _expr(_search(ns, app, p.metric("InputTokenCount"), "Sum", 300), "e1", "input"),
                _expr(_search(ns, app, p.metric("OutputTokenCount"), "Sum", 300), "e2", "output"),
            ],
            0,
            8,
            stacked=True,
            period=300,
        ),
        _graph(
            "Error breakdown",
            [
                _expr(
                    _search(ns, model, p.metric("InvocationErrors"), "Sum", 60),
                    "e0",
                    "genai-apm errors",
                ),
                *(
                    _expr(_search(BEDROCK_NAMESPACE, bedrock, m, "Sum", 60), f"e{i}", m)
                    for i, m in enumerate(BEDROCK_ERROR_METRICS, start=1)
                ),
            ],
            12,
            8,
            stacked=True,
            period=60,
        ),
        _graph(
            "Recent anomalies: open incidents, fleet latency vs its expected band",
            [
                [ns, p.metric("InvocationLatency"), {"id": "m1", "stat": "Average"}],
                _expr("ANOMALY_DETECTION_BAND(m1, 3)", "band", "expected (3 sd)"),
                [ns, p.metric("Invocations"), {"id": "m2", "stat": "Sum", "yAxis": "right"}],
                # incidents the anomalies job has open (genai.metrics.anomalies, exported)
                [
                    ns,
                    cloudwatch.OPEN_INCIDENTS,
                    {"id": "m3", "stat": "Maximum", "yAxis": "right"},
                ],
            ],
            0,
            14,
            period=300,
        ),
        *slo_widgets(ns, 20),
        {
            "type": "alarm",
            "x": 12,
            "y": 14,
            "width": 12,
            "height": 6,
            "properties": {
                "title": "Alarm status",
                "alarms": [f"${{{a}.Arn}}" for a in alarm_ids],
            },
        },
    ]
    return {"widgets": widgets}
