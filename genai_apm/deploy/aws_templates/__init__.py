"""AWS deployment files, generated from what the code defines: ``infra/aws`` and ``infra/k8s``.

``python -m genai_apm.deploy.aws_templates`` writes
  infra/aws/stream.yaml              CloudFormation: an MSK Serverless cluster (IAM auth)
  infra/aws/pipeline.yaml            CloudFormation: S3 bucket, Glue tables, Athena workgroup,
                                     IAM roles and policies, the Managed Flink application
  infra/aws/monitoring.yaml          CloudFormation: alarms and the CloudWatch dashboard
  infra/aws/kinesis-bridge.yaml      CloudFormation: the Kinesis -> MSK bridge application
  infra/aws/dashboard.json           the dashboard body alone (what monitoring.yaml deploys)
  infra/aws/application_properties.json   the runtime properties pipeline.yaml sets, for a
                                     local try-out (``GENAI_APM_APP_PROPERTIES=...``)
  infra/k8s/flinkdeployment.yaml     a Flink Kubernetes Operator FlinkDeployment
and ``--check`` fails while a committed file differs from a fresh generation
(tests/unit/test_aws_templates.py runs it too), like ``genai-apm athena-ddl``.

Nothing here is typed twice: the Glue tables come from the same column lists as the Athena
DDL (genai_apm.deploy.athena), the metric and dimension names from what the CloudWatch exporter
publishes (genai_apm.export.cloudwatch, asked with a row of the latency topic), topic names and
the namespace from the settings defaults, job names from genai_apm.jobs.JOBS.

One module per seam: constants (paths, runtimes, package layout), published (the exporter's
metric names), cloudformation (template helpers), stream, job_topics, iam, pipeline, bridge,
cloudwatch_alarms, cloudwatch_dashboard, monitoring, kubernetes; files renders, compares and
writes them all; ``__main__`` is the command.
"""

from __future__ import annotations

from genai_apm.deploy.aws_templates.bridge import bridge_properties, bridge_template
from genai_apm.deploy.aws_templates.cloudformation import att, ref, sub
from genai_apm.deploy.aws_templates.cloudwatch_alarms import alarms, slo_alarms
from genai_apm.deploy.aws_templates.cloudwatch_dashboard import dashboard, slo_widgets
from genai_apm.deploy.aws_templates.constants import (
    ATHENA_RESULTS_PREFIX,
    AWS_DIR,
    BEDROCK_DIMENSION,
    BEDROCK_ERROR_METRICS,
    BEDROCK_NAMESPACE,
    BRIDGE_JAR,
    BRIDGE_RUNTIME,
    CHECKPOINTS_PREFIX,
    COMMAND,
    DEFAULT_JOB,
    FLINK_VERSION,
    K8S_DIR,
    K8S_HOME,
    K8S_IMAGE,
    MANAGED_FLINK_RUNTIME,
    OPERATOR_FLINK_VERSION,
    PACKAGE_JAR,
    PACKAGE_MAIN,
    PACKAGE_PYTHON,
    PACKAGE_ZIP,
    PYTHON_DRIVER,
    ROOT,
    TABLES_PREFIX,
)
from genai_apm.deploy.aws_templates.files import artifacts, stale, write
from genai_apm.deploy.aws_templates.iam import analyst_policy, exporter_policy, flink_policy
from genai_apm.deploy.aws_templates.kubernetes import flink_deployment
from genai_apm.deploy.aws_templates.monitoring import monitoring_template
from genai_apm.deploy.aws_templates.pipeline import (
    glue_tables,
    pipeline_template,
    property_groups,
    runtime_sections,
)
from genai_apm.deploy.aws_templates.published import Published
from genai_apm.deploy.aws_templates.stream import stream_template

__all__ = [
    "ATHENA_RESULTS_PREFIX",
    "AWS_DIR",
    "BEDROCK_DIMENSION",
    "BEDROCK_ERROR_METRICS",
    "BEDROCK_NAMESPACE",
    "BRIDGE_JAR",
    "BRIDGE_RUNTIME",
    "CHECKPOINTS_PREFIX",
    "COMMAND",
    "DEFAULT_JOB",
    "FLINK_VERSION",
    "K8S_DIR",
    "K8S_HOME",
    "K8S_IMAGE",
    "MANAGED_FLINK_RUNTIME",
    "OPERATOR_FLINK_VERSION",
    "PACKAGE_JAR",
    "PACKAGE_MAIN",
    "PACKAGE_PYTHON",
    "PACKAGE_ZIP",
    "PYTHON_DRIVER",
    "Published",
    "ROOT",
    "TABLES_PREFIX",
    "alarms",
    "analyst_policy",
    "artifacts",
    "att",
    "bridge_properties",
    "bridge_template",
    "dashboard",
    "exporter_policy",
    "flink_deployment",
    "flink_policy",
    "glue_tables",
    "monitoring_template",
    "pipeline_template",
    "property_groups",
    "ref",
    "runtime_sections",
    "slo_alarms",
    "slo_widgets",
    "stale",
    "stream_template",
    "sub",
    "write",
]
