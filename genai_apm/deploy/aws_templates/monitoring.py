"""infra/aws/monitoring.yaml: the alarms and the CloudWatch dashboard."""

from __future__ import annotations

import json
from typing import Any

from genai_apm.deploy.aws_templates.cloudformation import _output, _template, ref, sub
from genai_apm.deploy.aws_templates.cloudwatch_alarms import alarms
from genai_apm.deploy.aws_templates.cloudwatch_dashboard import dashboard
from genai_apm.deploy.aws_templates.published import Published


def monitoring_template(published: Published) -> tuple[dict, dict]:
    found = alarms(published)
    body = dashboard(published, list(found))
    parameters = {
        "BedrockModelId": {
            "Type": "String",
            "Default": "anthropic.claude-3-5-sonnet-20241022-v2:0",
            "Description": "the Bedrock model (ModelId dimension) the Bedrock alarms watch",
        },
        "AlarmEmail": {
            "Type": "String",
            "Default": "",
            "Description": "subscribe this address to the alarm topic (empty: none)",
        },
        "LatencyP95ThresholdMs": {"Type": "Number", "Default": 10000},
        "ErrorRateThresholdPct": {"Type": "Number", "Default": 5},
        "BedrockServerErrorsThreshold": {"Type": "Number", "Default": 10},
        "BedrockThrottlesThreshold": {"Type": "Number", "Default": 50},
        "BedrockInputTokensPerHour": {"Type": "Number", "Default": 50_000_000},
        "BedrockOutputTokensPerHour": {"Type": "Number", "Default": 10_000_000},
        "SloName": {
            "Type": "String",
            "Default": "model-availability",
            "Description": "the SLO (slo.objectives name) the SLO alarms watch",
        },
        "SloKey": {
            "Type": "String",
            "Default": "anthropic.claude-3-5-sonnet-20241022-v2:0",
            "Description": "its key: a model, an app, model|app, or * (scope all)",
        },
        "SloBudgetThresholdPct": {"Type": "Number", "Default": 10},
        "QuotaUseThresholdPct": {"Type": "Number", "Default": 80},
    }
    resources: dict[str, Any] = {
        "AlarmTopic": {
            "Type": "AWS::SNS::Topic",
            "Properties": {"KmsMasterKeyId": "alias/aws/sns"},
        },
        "AlarmSubscription": {
            "Type": "AWS::SNS::Subscription",
            "Condition": "HasAlarmEmail",
            "Properties": {
                "TopicArn": ref("AlarmTopic"),
                "Protocol": "email",
                "Endpoint": ref("AlarmEmail"),
            },
        },
        **found,
        "Dashboard": {
            "Type": "AWS::CloudWatch::Dashboard",
            "Properties": {
                "DashboardName": sub("${AWS::StackName}"),
                "DashboardBody": sub(json.dumps(body, separators=(",", ":"))),
            },
        },
    }
    template = _template(
        "genai-apm: CloudWatch alarms (project and Bedrock metrics) and dashboard",
        parameters,
        resources,
        {
            "AlarmTopicArn": _output(ref("AlarmTopic"), "SNS topic the alarms notify"),
            "DashboardName": _output(ref("Dashboard"), "CloudWatch dashboard"),
        },
    )
    template["Conditions"] = {
        "HasAlarmEmail": {"Fn::Not": [{"Fn::Equals": [ref("AlarmEmail"), ""]}]}
    }
    return template, body
