"""Names the generated files share: where they go, the runtimes, the Managed Flink package's
layout, and Amazon Bedrock's metrics."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
COMMAND = "python -m genai_apm.deploy.aws_templates"
AWS_DIR = Path("infra/aws")
K8S_DIR = Path("infra/k8s")

# Managed Service for Apache Flink's Flink 2.2 runtime (Java 17, Python 3.12): the Flink the
# project is built and tested on, so the package runs the jobs as they run locally
# (PERCENTILE needs Flink 2.0+). docs/aws.md says what was and was not verified.
MANAGED_FLINK_RUNTIME = "FLINK-2_2"
# `make package` output and the paths inside it (infra/managed-flink)
PACKAGE_ZIP = "genai-apm-managed-flink.zip"
PACKAGE_MAIN = "main.py"
# the connector jar sits where genai_apm.home looks for the "flink" jar group, so the
# jobs' own pipeline.jars names the same file Managed Flink loads
PACKAGE_JAR = ".cache/jars/flink/genai-apm-managed-flink.jar"
PACKAGE_PYTHON = "python/"
# the Kinesis bridge on Managed Flink: a Java application on Flink 1.19, the newest runtime
# the only served Kinesis connector (flink-connector-kinesis 4.3.0-1.19) runs on
BRIDGE_RUNTIME = "FLINK-1_19"
BRIDGE_JAR = "genai-apm-kinesis-bridge.jar"
# where the Parquet tables go inside the data bucket (output.tables_path)
TABLES_PREFIX = "tables"
CHECKPOINTS_PREFIX = "checkpoints"
ATHENA_RESULTS_PREFIX = "athena-results"
# the job `make bench` measures: every analysis over one parse of the source
DEFAULT_JOB = "all"

# Flink Kubernetes Operator: v2_1 is the newest FlinkVersion the operator releases we
# checked accept (1.13 added it); the image runs the Flink 2.2 the project is built for
OPERATOR_FLINK_VERSION = "v2_1"
FLINK_VERSION = "2.2.0"
PYTHON_DRIVER = "org.apache.flink.client.python.PythonDriver"
K8S_IMAGE = "genai-apm:0.1.0"
K8S_HOME = "/opt/genai-apm"

# Amazon Bedrock's runtime metrics (AWS docs): not ours to name, so listed here
BEDROCK_NAMESPACE = "AWS/Bedrock"
BEDROCK_DIMENSION = "ModelId"
BEDROCK_ERROR_METRICS = ("InvocationClientErrors", "InvocationServerErrors", "InvocationThrottles")
