"""The outputs are declared once (genai_apm.schemas.outputs): tools read the declaration,
never a job module, and the declaration is what the jobs write."""

from __future__ import annotations

import dataclasses

from genai_apm.schemas import outputs
from genai_apm.settings.config import Settings
from tests.unit.test_import_graph import _packages, import_graph, installed_sources

# the modules that read or describe outputs without running a job
TOOLS = (
    "genai_apm.deploy.athena",
    "genai_apm.deploy.aws_templates",
    "genai_apm.deploy.aws_templates.bridge",
    "genai_apm.deploy.aws_templates.cloudwatch_alarms",
    "genai_apm.deploy.aws_templates.cloudwatch_dashboard",
    "genai_apm.deploy.aws_templates.files",
    "genai_apm.deploy.aws_templates.iam",
    "genai_apm.deploy.aws_templates.job_topics",
    "genai_apm.deploy.aws_templates.kubernetes",
    "genai_apm.deploy.aws_templates.monitoring",
    "genai_apm.deploy.aws_templates.pipeline",
    "genai_apm.deploy.aws_templates.published",
    "genai_apm.export.cloudwatch",
    "genai_apm.export.cloudwatch.batching",
    "genai_apm.export.cloudwatch.checks",
    "genai_apm.export.cloudwatch.datums",
    "genai_apm.export.cloudwatch.deadletters",
    "genai_apm.export.cloudwatch.exporter",
    "genai_apm.export.cloudwatch.pending",
    "genai_apm.export.cloudwatch.senders",
    "genai_apm.export.cloudwatch.stats",
    "genai_apm.serve.query",
    "genai_apm.serve.report",
    "genai_apm.serve.report_data",
    "genai_apm.serve.rollups",
    "genai_apm.demo",
)
# demo runs the analytics job (what `make run` shows); it reads no column list from it
RUNS = {"genai_apm.demo": {"genai_apm.jobs.analytics"}}


def test_no_tool_imports_a_job_module():
    sources = installed_sources()
    graph = import_graph(sources, _packages(sources))
    for tool in TOOLS:
        # the package itself is the catalogue (JOBS, input_topics), not a job
        jobs = {m for m in graph[tool] if m.startswith("genai_apm.jobs.")}
        assert jobs <= RUNS.get(tool, set()), f"{tool} imports {sorted(jobs)}"
    # the declaration needs only the windows' names (jobs/windows.py imports nothing)
    declared = {m for m in graph["genai_apm.schemas.outputs"] if m.startswith("genai_apm.jobs.")}
    assert declared <= {"genai_apm.jobs.windows"}
    assert graph["genai_apm.jobs.windows"] == set()


def test_every_table_is_declared_once_with_its_topic_and_partition_time():
    settings = Settings()
    tables = outputs.derived_tables(settings)
    names = [t.name for t in tables]
    assert len(names) == len(set(names))
    topics = {f.name for f in dataclasses.fields(settings.topics)}
    for table in tables:
        columns = dict(table.columns)
        assert len(columns) == len(table.columns), f"{table.name}: a column twice"
        assert columns[table.partition_time].startswith("TIMESTAMP"), table.name
        assert table.topic is None or table.topic in topics, table.name
        if table.window is not None:
            assert table.name.endswith(f"_{table.window}"), table.name


def test_the_jobs_write_the_declared_columns():
    from genai_apm.jobs import agents, alerts, anomalies, cost, errors, latency, slo

    settings = Settings()
    assert latency.output_columns(settings) == outputs.latency_columns(settings)
    assert errors.output_columns() == outputs.error_columns()
    assert cost.output_columns() == outputs.cost_columns()
    assert agents.stats_columns(settings) == outputs.agent_stats_columns(settings)
    assert (slo.SLO_COLUMNS, slo.QUOTA_COLUMNS) == (outputs.SLO_COLUMNS, outputs.QUOTA_COLUMNS)
    assert alerts.ALERT_COLUMNS == outputs.ALERT_COLUMNS
    # the percentile columns follow the histograms the latency job reads them from
    assert [(p, s) for p, s, _ in latency.METRICS] == list(outputs.LATENCY_MEASURES)
    assert anomalies.ANOMALY_COLUMNS == outputs.ANOMALY_COLUMNS
    assert anomalies.COUNT_COLUMNS == outputs.ANOMALY_COUNT_COLUMNS
    assert {d for d, _, _ in agents.STATS} == set(outputs.AGENT_STAT_DIMENSIONS)
