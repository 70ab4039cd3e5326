"""The CloudWatch alarms monitoring.yaml deploys."""

from __future__ import annotations

from typing import Any

from genai_apm.deploy.aws_templates.cloudformation import ref, sub
from genai_apm.deploy.aws_templates.constants import BEDROCK_DIMENSION, BEDROCK_NAMESPACE
from genai_apm.deploy.aws_templates.published import Published


def _alarm(description: str, comparison: str, threshold: Any, **metric: Any) -> dict:
    props = {
        "AlarmDescription": description,
        "ComparisonOperator": comparison,
        **({} if threshold is None else {"Threshold": threshold}),
        "EvaluationPeriods": 3,
        "DatapointsToAlarm": 2,
        "TreatMissingData": "notBreaching",
        "AlarmActions": [ref("AlarmTopic")],
        "OKActions": [ref("AlarmTopic")],
        **metric,
    }
    return {"Type": "AWS::CloudWatch::Alarm", "Properties": props}


def _single(namespace, name, stat, period, dimensions=()) -> dict:
    out: dict[str, Any] = {"Namespace": namespace, "MetricName": name, "Period": period}
    out["ExtendedStatistic" if stat.startswith("p") else "Statistic"] = stat
    if dimensions:
        out["Dimensions"] = [{"Name": n, "Value": v} for n, v in dimensions]
    return out


def alarms(published: Published) -> dict[str, dict]:
    ns, p = published.namespace, published
    bedrock = [(BEDROCK_DIMENSION, ref("BedrockModelId"))]
    latency, invocations = p.metric("InvocationLatency"), p.metric("Invocations")
    errors = p.metric("InvocationErrors")
    return {
        # ---- the project's metrics (genai-apm export cloudwatch), whole fleet
        "FleetLatencyP95Alarm": _alarm(
            "genai-apm: p95 latency of successful calls, all models",
            "GreaterThanThreshold",
            ref("LatencyP95ThresholdMs"),
            **_single(ns, latency, "p95", 300),
        ),
        "FleetErrorRateAlarm": _alarm(
            "genai-apm: failed calls as a percentage of calls, all models",
            "GreaterThanThreshold",
            ref("ErrorRateThresholdPct"),
            Metrics=[
                {
                    "Id": "errors",
                    "MetricStat": {
                        "Metric": {"Namespace": ns, "MetricName": errors},
                        "Period": 300,
                        "Stat": "Sum",
                    },
                    "ReturnData": False,
                },
                {
                    "Id": "calls",
                    "MetricStat": {
                        "Metric": {"Namespace": ns, "MetricName": invocations},
                        "Period": 300,
                        "Stat": "Sum",
                    },
                    "ReturnData": False,
                },
                {
                    "Id": "rate",
                    "Expression": "100 * errors / calls",
                    "Label": "error rate (%)",
                    "ReturnData": True,
                },
            ],
        ),
        "FleetLatencyAnomalyAlarm": _alarm(
            "genai-apm: mean latency above CloudWatch's anomaly band (trained on its history)",
            "GreaterThanUpperThreshold",
            None,
            ThresholdMetricId="band",
            Metrics=[
                {
                    "Id": "latency",
                    "MetricStat": {
                        "Metric": {"Namespace": ns, "MetricName": latency},
                        "Period": 300,
                        "Stat": "Average",
                    },
                    "ReturnData": True,
                },
                {
                    "Id": "band",
                    "Expression": "ANOMALY_DETECTION_BAND(latency, 3)",
                    "Label": "expected latency",
                    "ReturnData": True,
                },
            ],
        ),
        # ---- Amazon Bedrock's own metrics for one model
        "BedrockLatencyP95Alarm": _alarm(
            "Bedrock: p95 InvocationLatency of the model",
            "GreaterThanThreshold",
            ref("LatencyP95ThresholdMs"),
            **_single(BEDROCK_NAMESPACE, "InvocationLatency", "p95", 300, bedrock),
        ),
        "BedrockServerErrorsAlarm": _alarm(
            "Bedrock: InvocationServerErrors of the model",
            "GreaterThanThreshold",
            ref("BedrockServerErrorsThreshold"),
            **_single(BEDROCK_NAMESPACE, "InvocationServerErrors", "Sum", 300, bedrock),
        ),
        "BedrockThrottlesAlarm": _alarm(
            "Bedrock: InvocationThrottles of the model",
            "GreaterThanThreshold",
            ref("BedrockThrottlesThreshold"),
            **_single(BEDROCK_NAMESPACE, "InvocationThrottles", "Sum", 300, bedrock),
        ),
        "BedrockInputTokensAlarm": _alarm(
            "Bedrock: InputTokenCount of the model per hour (spend guard)",
            "GreaterThanThreshold",
            ref("BedrockInputTokensPerHour"),
            **_single(BEDROCK_NAMESPACE, "InputTokenCount", "Sum", 3600, bedrock),
        ),
        "BedrockOutputTokensAlarm": _alarm(
            "Bedrock: OutputTokenCount of the model per hour (spend guard)",
            "GreaterThanThreshold",
            ref("BedrockOutputTokensPerHour"),
            **_single(BEDROCK_NAMESPACE, "OutputTokenCount", "Sum", 3600, bedrock),
        ),
        **slo_alarms(ns),
    }


def slo_alarms(ns: str) -> dict[str, dict]:
    """One SLO (parameters SloName, SloKey) and one Bedrock model's quota in this region:
    the fast-burn page (1h and 5m both over 14.4), the budget floor, the quota use."""
    from genai_apm.export import cloudwatch

    slo = [("SLO", ref("SloName")), ("Key", ref("SloKey"))]

    def burn(ident: str, window: str) -> dict:
        metric = _single(ns, cloudwatch.BURN_RATE, "Maximum", 60, [*slo, ("Window", window)])
        period = metric.pop("Period")
        metric.pop("Statistic")
        return {
            "Id": ident,
            "MetricStat": {"Metric": metric, "Period": period, "Stat": "Maximum"},
            "ReturnData": False,
        }

    quota = [
        ("Provider", "aws.bedrock"),
        ("ModelId", ref("BedrockModelId")),
        ("Region", sub("${AWS::Region}")),
    ]
    return {
        "SloFastBurnAlarm": _alarm(
            "genai-apm: the SLO burns its error budget over 14.4x as fast as allowed over both "
            "1 h and 5 min (2% of a 30-day budget in an hour)",
            "GreaterThanThreshold",
            14.4,
            Metrics=[
                burn("long", "1h"),
                burn("short", "5m"),
                {
                    "Id": "burn",
                    "Expression": "MIN([long, short])",
                    "Label": "burn rate",
                    "ReturnData": True,
                },
            ],
        ),
        "SloErrorBudgetAlarm": _alarm(
            "genai-apm: the SLO's error budget left over its compliance period",
            "LessThanThreshold",
            ref("SloBudgetThresholdPct"),
            **_single(ns, cloudwatch.ERROR_BUDGET_REMAINING, "Minimum", 300, slo),
        ),
        "QuotaUseAlarm": _alarm(
            "genai-apm: use of the Bedrock model's tokens- or requests-per-minute quota here",
            "GreaterThanThreshold",
            ref("QuotaUseThresholdPct"),
            **_single(ns, cloudwatch.QUOTA_USE, "Maximum", 60, quota),
        ),
    }
