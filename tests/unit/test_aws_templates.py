"""infra/aws and infra/k8s: committed files match a fresh generation, and what they name
(tables, columns, metrics, topics, jobs, settings keys) is what the code defines."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
import yaml

from genai_apm.deploy import athena, aws_templates
from genai_apm.export import cloudwatch
from genai_apm.jobs import JOBS, input_topics
from genai_apm.settings import app_properties
from genai_apm.settings.config import Settings

ROOT = aws_templates.ROOT


def _load(name: str) -> dict:
    return yaml.safe_load((ROOT / aws_templates.AWS_DIR / name).read_text(encoding="utf-8"))


def test_committed_files_are_up_to_date():
    assert aws_templates.stale() == [], f"run `{aws_templates.COMMAND}` and commit infra/"


def test_glue_tables_have_the_athena_ddl_columns():
    resources = _load("pipeline.yaml")["Resources"]
    glue = {
        r["Properties"]["TableInput"]["Name"]: r["Properties"]["TableInput"]
        for r in resources.values()
        if r["Type"] == "AWS::Glue::Table"
    }
    ddl_files = {
        p.stem: text for p, text in athena.artifacts().items() if p.parent.name == "athena"
    }
    assert set(glue) == set(ddl_files)
    for name, table in glue.items():
        # the DDL's column lines, `name` type, in order
        ddl_columns = re.findall(r"^  `(\w+)` (\S+?)(?: COMMENT .*)?,?$", ddl_files[name], re.M)
        columns = [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]]
        assert columns == ddl_columns, name
        assert [k["Name"] for k in table["PartitionKeys"]] == ["dt", "hour"]
        params = table["Parameters"]
        assert params["projection.enabled"] == "true"
        # Fn::Sub must leave Athena's ${dt}/${hour} alone: they are escaped as ${!dt}
        template = params["storage.location.template"]["Fn::Sub"]
        assert template.endswith(f"/{name}/dt=${{!dt}}/hour=${{!hour}}/")
        location = table["StorageDescriptor"]["Location"]["Fn::Sub"]
        assert template.startswith(location)


def test_dashboard_and_alarms_use_the_exporters_names():
    settings = Settings()
    ns = settings.cloudwatch.namespace
    # what the exporter publishes, from a latency row with every metric filled in
    row = {
        "window": settings.cloudwatch.windows[0],
        "window_start": "2026-01-01T00:00:00+00:00",
        "model_id": "m",
        "app_id": "a",
        "requests": 5,
        "errors": 1,
        "input_tokens_sum": 10,
        "output_tokens_sum": 20,
        "latency_hist": {"400": 3},
        "ttft_hist": {"300": 2},
    }
    published = {d["MetricName"] for d in cloudwatch.latency_datums(row, settings)}
    published |= {
        cloudwatch.ERROR_BUDGET_REMAINING,
        cloudwatch.BURN_RATE,
        cloudwatch.QUOTA_USE,
        cloudwatch.QUOTA_EXHAUSTION,
    }
    body = json.loads((ROOT / aws_templates.AWS_DIR / "dashboard.json").read_text())
    text = json.dumps(body)
    searched = set(re.findall(r'\{\\"([^\\]+)\\",([\w,]+)\} MetricName=\\"(\w+)\\"', text))
    ours = {(dims, metric) for namespace, dims, metric in searched if namespace == ns}
    assert {m for _, m in ours} <= published
    assert {"ModelId", "AppId,ModelId", "Key,SLO", "ModelId,Provider,Region"} == {
        d for d, _ in ours
    }
    titles = [w["properties"].get("title", "") for w in body["widgets"]]
    for panel in (
        "Invocations by model",
        "p95 latency vs output tokens",
        "Token usage",
        "Error breakdown",
        "anomalies",
        "SLO error budget",
        "Quota use",
        "Alarm status",
    ):
        assert any(panel in t for t in titles), panel

    resources = _load("monitoring.yaml")["Resources"]
    alarms = {
        k: r["Properties"] for k, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"
    }
    used = set()
    for props in alarms.values():
        stats = [props] + [
            m["MetricStat"]["Metric"] for m in props.get("Metrics", []) if "MetricStat" in m
        ]
        used |= {(s["Namespace"], s["MetricName"]) for s in stats if "MetricName" in s}
    assert {m for n, m in used if n == ns} <= published
    assert {m for n, m in used if n == "AWS/Bedrock"} == {
        "InvocationLatency",
        "InvocationServerErrors",
        "InvocationThrottles",
        "InputTokenCount",
        "OutputTokenCount",
    }
    # the alarm panel lists every alarm, by the ARN CloudFormation substitutes
    (alarm_widget,) = [w for w in body["widgets"] if w["type"] == "alarm"]
    assert alarm_widget["properties"]["alarms"] == [f"${{{a}.Arn}}" for a in alarms]
    sub = resources["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    assert json.loads(sub) == body


def test_a_metric_the_exporter_stops_publishing_fails_generation(monkeypatch):
    # the templates read the exporter's declaration (tests/unit/test_cloudwatch.py checks
    # that latency_datums sends exactly what it declares)
    without_errors = tuple(m for m in cloudwatch.LATENCY_SCALARS if m[0] != "InvocationErrors")
    monkeypatch.setattr(cloudwatch.datums, "LATENCY_SCALARS", without_errors)
    with pytest.raises(RuntimeError, match="InvocationErrors"):
        aws_templates.artifacts()


def test_namespace_follows_the_settings():
    settings = Settings().replace(cloudwatch={"namespace": "Acme/LLM"})
    published = aws_templates.Published(settings)
    policy = aws_templates.exporter_policy(settings, published)
    (put,) = [s for s in policy["Statement"] if s["Action"] == ["cloudwatch:PutMetricData"]]
    assert put["Condition"] == {"StringEquals": {"cloudwatch:namespace": "Acme/LLM"}}
    template, body = aws_templates.monitoring_template(published)
    assert '\\"Acme/LLM\\"' in json.dumps(body)


def _statements(policy) -> dict[str, dict]:
    return {s["Sid"]: s for s in policy["Statement"]}


def test_flink_role_is_least_privilege():
    settings = Settings()
    resources = _load("pipeline.yaml")["Resources"]
    (policy,) = resources["FlinkRole"]["Properties"]["Policies"]
    statements = _statements(policy["PolicyDocument"])
    actions = {a for s in statements.values() for a in s["Action"]}
    assert not any(a.endswith("*") for a in actions), "no wildcard actions"
    assert not {"cloudwatch:PutMetricData", "s3:DeleteBucket", "iam:PassRole"} & actions
    # wildcard resources only where EC2 offers no resource scope
    for sid, s in statements.items():
        if s["Resource"] == "*":
            assert all(a.startswith("ec2:") for a in s["Action"]), sid
    # S3 writes only under the tables and checkpoints prefixes
    writes = statements["WriteTablesAndCheckpoints"]["Resource"]
    assert [w["Fn::Sub"] for w in writes] == [
        "arn:${AWS::Partition}:s3:::${DataBucket}/tables/*",
        "arn:${AWS::Partition}:s3:::${DataBucket}/checkpoints/*",
    ]

    def topics(sid):
        return {r["Fn::Sub"][0].rsplit("/", 1)[1] for r in statements[sid]["Resource"]}

    read = {t for job in JOBS for t in input_topics(job, settings)}
    assert topics("ReadInputTopics") == read
    assert settings.topics.latency in topics("WriteOutputTopics")
    assert "genai.bedrock-logs" not in topics("WriteOutputTopics")


def test_runtime_properties_are_settings_keys():
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    for section, values in aws_templates.runtime_sections(Settings()).items():
        assert section in fields
        keys = {f.name for f in dataclasses.fields(fields[section].default_factory())}
        assert set(values) <= keys, section
    groups = _load("pipeline.yaml")["Resources"]["Application"]["Properties"][
        "ApplicationConfiguration"
    ]["EnvironmentProperties"]["PropertyGroups"]
    ids = [g["PropertyGroupId"] for g in groups]
    assert ids[0] == app_properties.RUN_OPTIONS_GROUP
    assert app_properties.JOB_GROUP in ids
    run = groups[0]["PropertyMap"]
    assert run == {
        "python": aws_templates.PACKAGE_MAIN,
        "jarfile": aws_templates.PACKAGE_JAR,
        "pyFiles": aws_templates.PACKAGE_PYTHON,
    }
    params = _load("pipeline.yaml")["Parameters"]
    assert set(params["Job"]["AllowedValues"]) == set(JOBS)


def test_example_properties_load_and_name_a_job(tmp_path):
    from genai_apm.settings import config

    path = ROOT / aws_templates.AWS_DIR / "application_properties.json"
    settings = config.load(environ={app_properties.ENV_VAR: str(path)})
    assert settings.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert app_properties.job(path) == aws_templates.DEFAULT_JOB
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"PropertyGroupId": "genai_apm", "PropertyMap": {"job": "x"}}]))
    with pytest.raises(Exception, match="unknown job 'x'"):
        app_properties.job(bad)


def test_flink_deployment_runs_a_known_job_through_the_python_driver():
    manifest = yaml.safe_load(
        (ROOT / aws_templates.K8S_DIR / "flinkdeployment.yaml").read_text(encoding="utf-8")
    )
    assert manifest["apiVersion"] == "flink.apache.org/v1beta1"
    assert manifest["kind"] == "FlinkDeployment"
    spec = manifest["spec"]
    assert re.fullmatch(r"v2_\d+", spec["flinkVersion"])
    for key in ("image", "serviceAccount", "jobManager", "taskManager", "job"):
        assert spec[key], key
    job = spec["job"]
    assert job["entryClass"] == "org.apache.flink.client.python.PythonDriver"
    assert job["jarURI"].startswith("local:///opt/flink/opt/flink-python-")
    flag, module = job["args"]
    assert flag == "-pym" and module in JOBS.values()
    assert manifest["metadata"]["labels"]["job"] in JOBS
    assert JOBS[manifest["metadata"]["labels"]["job"]] == module
    variables = spec["podTemplate"]["spec"]["containers"][0]["env"]
    env = {e["name"]: e["value"] for e in variables if "value" in e}
    # the password comes from a Kubernetes secret, never from the manifest
    secret = {e["name"]: e["valueFrom"] for e in variables if "valueFrom" in e}
    assert set(secret) == {"GENAI_APM_KAFKA_SASL_PASSWORD"}
    from genai_apm.settings import config

    # every GENAI_APM_* variable is a setting the loader accepts
    settings = config.load(environ=env)
    assert settings.kafka.sasl_mechanism == "SCRAM-SHA-512"
    assert settings.flink.checkpoint_dir.startswith("s3://")
    assert env["GENAI_APM_HOME"] == aws_templates.K8S_HOME


def test_msk_iam_client_properties():
    from genai_apm.connectors.kafka import client_properties
    from genai_apm.settings.config import KafkaSettings

    props = client_properties(
        KafkaSettings(
            bootstrap_servers="b:9098",
            security_protocol="SASL_SSL",
            sasl_mechanism="AWS_MSK_IAM",
            shaded_client=False,  # as the Managed Flink package's properties say
        )
    )
    assert props["properties.sasl.mechanism"] == "AWS_MSK_IAM"
    assert props["properties.sasl.jaas.config"] == (
        "software.amazon.msk.auth.iam.IAMLoginModule required;"
    )
    assert props["properties.sasl.client.callback.handler.class"] == (
        "software.amazon.msk.auth.iam.IAMClientCallbackHandler"
    )
    assert "password" not in json.dumps(props)


def test_cfn_lint_accepts_every_template_and_catches_a_broken_one():
    from cfnlint.api import lint

    texts = {p: t for p, t in aws_templates.artifacts().items() if p.suffix == ".yaml"}
    texts = {p: t for p, t in texts.items() if p.parent == aws_templates.AWS_DIR}
    assert len(texts) == 4
    for path, text in texts.items():
        assert [str(m) for m in lint(text)] == [], path
    # the validator really checks: a misspelt property in the pipeline is an error
    broken = texts[aws_templates.AWS_DIR / "pipeline.yaml"].replace(
        f"RuntimeEnvironment: {aws_templates.MANAGED_FLINK_RUNTIME}",
        f"RuntimeEnviroment: {aws_templates.MANAGED_FLINK_RUNTIME}",
    )
    assert any("RuntimeEnviroment" in str(m) for m in lint(broken))
