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
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from genai_apm.settings.config import Settings

ROOT = Path(__file__).resolve().parents[2]
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


# ---- what the CloudWatch exporter publishes -------------------------------------------


class Published:
    """Names the exporter uses for latency rows, as genai_apm.export.cloudwatch declares them."""

    def __init__(self, settings: Settings):
        from genai_apm.export import cloudwatch

        self.namespace = settings.cloudwatch.namespace
        self.units = cloudwatch.latency_metric_units()
        # the most specific dimension set (model x app); rollups drop dimensions from the end
        self.dimensions = [name for name, _ in cloudwatch.LATENCY_DIMENSIONS]

    def metric(self, name: str) -> str:
        if name not in self.units:
            raise RuntimeError(
                f"the CloudWatch exporter no longer publishes {name!r} "
                f"(it publishes {', '.join(sorted(self.units))})"
            )
        return name

    @property
    def model(self) -> str:
        return self.dimensions[0]

    @property
    def app(self) -> str:
        return self.dimensions[1]


# ---- small CloudFormation helpers ---------------------------------------------------------


def ref(name: str) -> dict:
    return {"Ref": name}


def att(resource: str, attribute: str) -> dict:
    return {"Fn::GetAtt": [resource, attribute]}


def sub(text: str, variables: dict | None = None) -> dict:
    return {"Fn::Sub": [text, variables] if variables else text}


def _template(description: str, parameters: dict, resources: dict, outputs: dict) -> dict:
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": description,
        "Parameters": parameters,
        "Resources": resources,
        "Outputs": outputs,
    }


def _output(value: Any, description: str, export: str | None = None) -> dict:
    out: dict[str, Any] = {"Description": description, "Value": value}
    if export:
        out["Export"] = {"Name": sub("${AWS::StackName}-" + export)}
    return out


# ---- stream.yaml -----------------------------------------------------------------------


def stream_template() -> dict:
    """MSK Serverless: Kafka without brokers to size, IAM authentication only."""
    return _template(
        "genai-apm: the Kafka stream (Amazon MSK Serverless, IAM authentication)",
        {
            "SubnetIds": {
                "Type": "List<AWS::EC2::Subnet::Id>",
                "Description": "private subnets in two or more Availability Zones",
            },
            "SecurityGroupIds": {
                "Type": "List<AWS::EC2::SecurityGroup::Id>",
                "Description": "must allow TCP 9098 from the Flink application and producers",
            },
        },
        {
            "Cluster": {
                "Type": "AWS::MSK::ServerlessCluster",
                "Properties": {
                    "ClusterName": sub("${AWS::StackName}"),
                    "ClientAuthentication": {"Sasl": {"Iam": {"Enabled": True}}},
                    "VpcConfigs": [
                        {"SubnetIds": ref("SubnetIds"), "SecurityGroups": ref("SecurityGroupIds")}
                    ],
                },
            }
        },
        {
            "ClusterArn": _output(
                ref("Cluster"),
                "pass to pipeline.yaml; `aws kafka get-bootstrap-brokers --cluster-arn` "
                "gives the bootstrap servers",
                "ClusterArn",
            )
        },
    )


# ---- pipeline.yaml ---------------------------------------------------------------------


def glue_tables(settings: Settings) -> dict[str, dict]:
    """One AWS::Glue::Table per Parquet table, from the columns the Athena DDL uses."""
    from genai_apm.schemas import generate
    from genai_apm.schemas.athena import (
        PARTITION_COLUMNS,
        athena_columns,
        athena_type,
        projection_properties,
    )
    from genai_apm.schemas.outputs import derived_tables

    tables = [
        (t.name, [(n, athena_type(sql_type)) for n, sql_type in t.columns], t.comment)
        for t in derived_tables(settings)
    ]
    tables += [
        (name, athena_columns(contract), f"{contract.name} v{contract.version}")
        for contract, name in generate.CONTRACTS
    ]
    resources = {}
    for name, columns, comment in tables:
        location = f"s3://${{DataBucket}}/{TABLES_PREFIX}/{name}/"
        # ${dt} and ${hour} are Athena's projection variables: ${!x} keeps them from Fn::Sub
        parameters: dict[str, Any] = projection_properties(location)
        parameters["storage.location.template"] = sub(location + "dt=${!dt}/hour=${!hour}/")
        parameters |= {"classification": "parquet", "EXTERNAL": "TRUE"}
        logical = "Table" + "".join(part.title() for part in name.split("_"))
        resources[logical] = {
            "Type": "AWS::Glue::Table",
            "Properties": {
                "CatalogId": ref("AWS::AccountId"),
                "DatabaseName": ref("Database"),
                "TableInput": {
                    "Name": name,
                    "Description": comment,
                    "TableType": "EXTERNAL_TABLE",
                    "Parameters": parameters,
                    "PartitionKeys": [{"Name": n, "Type": t} for n, t in PARTITION_COLUMNS],
                    "StorageDescriptor": {
                        "Columns": [{"Name": n, "Type": t} for n, t in columns],
                        "Location": sub(location),
                        "InputFormat": (
                            "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
                        ),
                        "OutputFormat": (
                            "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
                        ),
                        "SerdeInfo": {
                            "SerializationLibrary": (
                                "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
                            )
                        },
                    },
                },
            },
        }
    return resources


def _topics(settings: Settings) -> tuple[list[str], list[str]]:
    """(topics some job reads, topics some job writes): ingest writes the native topics the
    others read, so every topic in settings.topics is written by one job or another."""
    import dataclasses

    from genai_apm.jobs import input_topics

    reads = sorted({t for job in _jobs() for t in input_topics(job, settings)})
    writes = sorted({getattr(settings.topics, f.name) for f in dataclasses.fields(settings.topics)})
    return reads, writes


def _jobs() -> dict[str, str]:
    from genai_apm.jobs import JOBS

    return JOBS


def runtime_sections(settings: Settings) -> dict[str, dict[str, Any]]:
    """Settings the application needs on AWS, as {section: {key: value}} (CloudFormation
    values where they depend on the stack)."""
    return {
        "kafka": {
            "bootstrap_servers": ref("KafkaBootstrapServers"),
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "AWS_MSK_IAM",
            # the package bundles the plain Kafka client and aws-msk-iam-auth (make package)
            "shaded_client": "false",
        },
        "output": {"tables_path": sub(f"s3://${{DataBucket}}/{TABLES_PREFIX}")},
        "flink": {
            "parallelism": ref("Parallelism"),
            "checkpoint_dir": sub(f"s3://${{DataBucket}}/{CHECKPOINTS_PREFIX}"),
            # the service's configuration decides checkpoints, state backend, parallelism and
            # restarts; the job sets only what the 2.2 runtime lets code set (flink/env.py)
            "service_configured": "true",
        },
        "aws": {"region": ref("AWS::Region")},
    }


def property_groups(settings: Settings) -> list[dict]:
    """Managed Flink's run options plus the settings groups (genai_apm.settings.app_properties)."""
    from genai_apm.settings import app_properties

    run = {
        "PropertyGroupId": app_properties.RUN_OPTIONS_GROUP,
        "PropertyMap": {
            "python": PACKAGE_MAIN,
            "jarfile": PACKAGE_JAR,
            "pyFiles": PACKAGE_PYTHON,
        },
    }
    job = {"PropertyGroupId": app_properties.JOB_GROUP, "PropertyMap": {"job": ref("Job")}}
    groups = []
    for section, values in runtime_sections(settings).items():
        groups.append(
            {
                "PropertyGroupId": app_properties.GROUP_PREFIX + section,
                "PropertyMap": values,
            }
        )
    return [run, job, *groups]


def _statement(sid: str, actions: list[str], resources: Any, condition=None) -> dict:
    out = {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources}
    if condition:
        out["Condition"] = condition
    return out


def _application_runtime_statements() -> list[dict]:
    """What every Managed Flink application's role needs to run at all (the pipeline's and the
    bridge's): its log group, and the VPC attachment."""
    return [
        _statement(
            "WriteLogs",
            ["logs:PutLogEvents", "logs:DescribeLogStreams"],
            sub(
                "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:"
                "log-group:${LogGroup}:*"
            ),
        ),
        # Managed Flink attaches the application to the VPC with these (AWS docs,
        # "VPC permissions"); EC2 has no resource-level scope for the Describe calls
        _statement(
            "VpcAccess",
            [
                "ec2:DescribeVpcs",
                "ec2:DescribeSubnets",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeDhcpOptions",
                "ec2:DescribeNetworkInterfaces",
                "ec2:CreateNetworkInterface",
                "ec2:CreateNetworkInterfacePermission",
                "ec2:DeleteNetworkInterface",
            ],
            "*",
        ),
    ]


def _kafka_arn(kind: str, name: str) -> dict:
    """An MSK resource ARN (topic, group, transactional-id) of the cluster in KafkaClusterArn:
    arn:aws:kafka:region:account:<kind>/<cluster name>/<cluster uuid>/<name>."""
    return sub(
        f"arn:${{AWS::Partition}}:kafka:${{AWS::Region}}:${{AWS::AccountId}}:{kind}/"
        f"${{ClusterName}}/${{ClusterUuid}}/{name}",
        {
            "ClusterName": {"Fn::Select": [1, {"Fn::Split": ["/", ref("KafkaClusterArn")]}]},
            "ClusterUuid": {"Fn::Select": [2, {"Fn::Split": ["/", ref("KafkaClusterArn")]}]},
        },
    )


def flink_policy(settings: Settings) -> dict:
    """What the Flink application does, and nothing more: read its topics and code, write
    its topics (transactions: exactly-once sinks), its tables and checkpoints, its logs."""
    reads, writes = _topics(settings)
    bucket = sub("arn:${AWS::Partition}:s3:::${DataBucket}")
    prefixes = [TABLES_PREFIX, CHECKPOINTS_PREFIX]
    return {
        "Version": "2012-10-17",
        "Statement": [
            _statement(
                "ReadApplicationCode",
                ["s3:GetObject", "s3:GetObjectVersion"],
                sub("arn:${AWS::Partition}:s3:::${ArtifactBucket}/${ArtifactKey}"),
            ),
            # GetBucketLocation has no s3:prefix key: a prefix condition would never match it
            _statement("BucketLocation", ["s3:GetBucketLocation"], bucket),
            _statement(
                "ListOwnPrefixes",
                ["s3:ListBucket"],
                bucket,
                {"StringLike": {"s3:prefix": [f"{p}/*" for p in prefixes] + prefixes}},
            ),
            _statement(
                "WriteTablesAndCheckpoints",
                [
                    "s3:GetObject",
                    "s3:PutObject",
                    "s3:DeleteObject",
                    "s3:AbortMultipartUpload",
                    "s3:ListMultipartUploadParts",
                ],
                [sub(f"arn:${{AWS::Partition}}:s3:::${{DataBucket}}/{p}/*") for p in prefixes],
            ),
            _statement(
                "ConnectToCluster",
                ["kafka-cluster:Connect", "kafka-cluster:DescribeCluster"],
                ref("KafkaClusterArn"),
            ),
            _statement(
                "ReadInputTopics",
                ["kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"],
                [_kafka_arn("topic", t) for t in reads],
            ),
            _statement(
                "WriteOutputTopics",
                ["kafka-cluster:DescribeTopic", "kafka-cluster:WriteData"],
                [_kafka_arn("topic", t) for t in writes],
            ),
            _statement(
                "ConsumerGroup",
                ["kafka-cluster:AlterGroup", "kafka-cluster:DescribeGroup"],
                _kafka_arn("group", f"{settings.kafka.consumer_group}*"),
            ),
            _statement(
                "ExactlyOnceTransactions",
                ["kafka-cluster:AlterTransactionalId", "kafka-cluster:DescribeTransactionalId"],
                _kafka_arn("transactional-id", "*"),
            ),
            *_application_runtime_statements(),
        ],
    }


def exporter_policy(settings: Settings, published: Published) -> dict:
    """`genai-apm export cloudwatch`, wherever it runs: read the metric topics, commit its
    group's offsets, dead-letter, and PutMetricData into its own namespace only."""
    from genai_apm.export import cloudwatch

    topics = sorted(getattr(settings.topics, name) for name in cloudwatch.TRANSLATORS)
    return {
        "Version": "2012-10-17",
        "Statement": [
            _statement(
                "PutMetricDataInOwnNamespace",
                ["cloudwatch:PutMetricData"],
                "*",
                {"StringEquals": {"cloudwatch:namespace": published.namespace}},
            ),
            _statement(
                "ConnectToCluster",
                ["kafka-cluster:Connect", "kafka-cluster:DescribeCluster"],
                ref("KafkaClusterArn"),
            ),
            _statement(
                "ReadMetricTopics",
                ["kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"],
                [_kafka_arn("topic", t) for t in topics],
            ),
            _statement(
                "DeadLetters",
                ["kafka-cluster:DescribeTopic", "kafka-cluster:WriteData"],
                _kafka_arn("topic", settings.topics.deadletter),
            ),
            _statement(
                "ConsumerGroup",
                ["kafka-cluster:AlterGroup", "kafka-cluster:DescribeGroup"],
                _kafka_arn("group", settings.cloudwatch.consumer_group),
            ),
        ],
    }


def analyst_policy() -> dict:
    """Querying the tables with Athena: the workgroup, the catalog, read the tables (not the
    bodies table), write query results."""
    from genai_apm.schemas.body import BODIES_TABLE

    catalog = "arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            _statement(
                "UseWorkgroup",
                [
                    "athena:StartQueryExecution",
                    "athena:GetQueryExecution",
                    "athena:GetQueryResults",
                    "athena:StopQueryExecution",
                    "athena:GetWorkGroup",
                ],
                sub(
                    "arn:${AWS::Partition}:athena:${AWS::Region}:${AWS::AccountId}:"
                    "workgroup/${Workgroup}"
                ),
            ),
            _statement(
                "ReadCatalog",
                ["glue:GetDatabase", "glue:GetTable", "glue:GetTables", "glue:GetPartitions"],
                [
                    sub(f"{catalog}:catalog"),
                    sub(f"{catalog}:database/${{Database}}"),
                    sub(f"{catalog}:table/${{Database}}/*"),
                ],
            ),
            _statement(
                "BucketLocation",
                ["s3:GetBucketLocation"],
                sub("arn:${AWS::Partition}:s3:::${DataBucket}"),
            ),
            _statement(
                "ListData",
                ["s3:ListBucket"],
                sub("arn:${AWS::Partition}:s3:::${DataBucket}"),
                {"StringLike": {"s3:prefix": [f"{TABLES_PREFIX}/*", f"{ATHENA_RESULTS_PREFIX}/*"]}},
            ),
            _statement(
                "ReadTables",
                ["s3:GetObject"],
                sub(f"arn:${{AWS::Partition}}:s3:::${{DataBucket}}/{TABLES_PREFIX}/*"),
            ),
            _statement(
                "QueryResults",
                ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
                sub(f"arn:${{AWS::Partition}}:s3:::${{DataBucket}}/{ATHENA_RESULTS_PREFIX}/*"),
            ),
            # prompt and response bodies (privacy.store_bodies) are governed apart from the
            # metrics: grant them to the few who need them with a policy of their own
            {
                **_statement(
                    "NoBodies",
                    ["s3:GetObject", "glue:GetTable", "glue:GetPartitions"],
                    [
                        sub(
                            f"arn:${{AWS::Partition}}:s3:::${{DataBucket}}/{TABLES_PREFIX}/"
                            f"{BODIES_TABLE}/*"
                        ),
                        sub(f"{catalog}:table/${{Database}}/{BODIES_TABLE}"),
                    ],
                ),
                "Effect": "Deny",
            },
        ],
    }


def _flink_application(
    description: str,
    runtime: str,
    role: str,
    groups: list,
    *,
    checkpoints: dict | None = None,
) -> dict:
    """A Managed Flink application (the zip at ArtifactBucket/ArtifactKey, in the VPC, with
    checkpoints and snapshots) and its log stream option: the pipeline's and the bridge's.
    ``checkpoints``: the CheckpointConfiguration; the service's default when None (exactly
    once needs checkpoints: Kafka transactions commit on them)."""
    return {
        "Application": {
            "Type": "AWS::KinesisAnalyticsV2::Application",
            "Properties": {
                "ApplicationDescription": description,
                "RuntimeEnvironment": runtime,
                "ServiceExecutionRole": att(role, "Arn"),
                "ApplicationConfiguration": {
                    "ApplicationCodeConfiguration": {
                        "CodeContentType": "ZIPFILE",
                        "CodeContent": {
                            "S3ContentLocation": {
                                "BucketARN": sub("arn:${AWS::Partition}:s3:::${ArtifactBucket}"),
                                "FileKey": ref("ArtifactKey"),
                            }
                        },
                    },
                    "EnvironmentProperties": {"PropertyGroups": groups},
                    "FlinkApplicationConfiguration": {
                        "CheckpointConfiguration": checkpoints or {"ConfigurationType": "DEFAULT"},
                        "MonitoringConfiguration": {
                            "ConfigurationType": "CUSTOM",
                            "LogLevel": "INFO",
                            "MetricsLevel": "APPLICATION",
                        },
                        "ParallelismConfiguration": {
                            "ConfigurationType": "CUSTOM",
                            "Parallelism": ref("Parallelism"),
                            "ParallelismPerKPU": 1,
                            "AutoScalingEnabled": False,
                        },
                    },
                    "ApplicationSnapshotConfiguration": {"SnapshotsEnabled": True},
                    "VpcConfigurations": [
                        {"SubnetIds": ref("SubnetIds"), "SecurityGroupIds": ref("SecurityGroupIds")}
                    ],
                },
            },
        },
        "ApplicationLogging": {
            "Type": "AWS::KinesisAnalyticsV2::ApplicationCloudWatchLoggingOption",
            "Properties": {
                "ApplicationName": ref("Application"),
                "CloudWatchLoggingOption": {
                    "LogStreamARN": sub(
                        "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:"
                        "log-group:${LogGroup}:log-stream:${LogStream}"
                    )
                },
            },
        },
    }


def pipeline_template(settings: Settings, published: Published) -> dict:
    parameters = {
        "KafkaClusterArn": {
            "Type": "String",
            "AllowedPattern": "arn:aws[a-z-]*:kafka:.+:cluster/.+/.+",
            "Description": "the MSK cluster (stream.yaml's ClusterArn output)",
        },
        "KafkaBootstrapServers": {
            "Type": "String",
            "MinLength": 1,
            "Description": "its IAM bootstrap servers (aws kafka get-bootstrap-brokers)",
        },
        "SubnetIds": {
            "Type": "List<AWS::EC2::Subnet::Id>",
            "Description": "subnets the Flink application runs in (reaching the cluster)",
        },
        "SecurityGroupIds": {
            "Type": "List<AWS::EC2::SecurityGroup::Id>",
            "Description": "security groups of the Flink application",
        },
        "ArtifactBucket": {
            "Type": "String",
            "Description": f"an existing bucket holding the `make package` zip ({PACKAGE_ZIP})",
        },
        "ArtifactKey": {"Type": "String", "Default": f"genai-apm/{PACKAGE_ZIP}"},
        "Job": {
            "Type": "String",
            "Default": DEFAULT_JOB,
            "AllowedValues": sorted(_jobs()),
            "Description": "the genai-apm job the application runs (genai_apm.jobs.JOBS)",
        },
        "Parallelism": {"Type": "Number", "Default": 1, "MinValue": 1},
        "TableRetentionDays": {
            "Type": "Number",
            "Default": 400,
            "MinValue": 1,
            "Description": "Parquet tables older than this are deleted",
        },
        "AthenaBytesScannedCutoff": {
            "Type": "Number",
            "Default": 10_000_000_000,
            "MinValue": 10_000_000,
            "Description": "queries scanning more bytes than this are cancelled",
        },
    }
    resources: dict[str, Any] = {
        "DataBucket": {
            "Type": "AWS::S3::Bucket",
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                "BucketEncryption": {
                    "ServerSideEncryptionConfiguration": [
                        {
                            "ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"},
                            "BucketKeyEnabled": True,
                        }
                    ]
                },
                "PublicAccessBlockConfiguration": {
                    "BlockPublicAcls": True,
                    "BlockPublicPolicy": True,
                    "IgnorePublicAcls": True,
                    "RestrictPublicBuckets": True,
                },
                "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
                "LifecycleConfiguration": {
                    "Rules": [
                        {
                            "Id": "expire-tables",
                            "Status": "Enabled",
                            "Prefix": f"{TABLES_PREFIX}/",
                            "ExpirationInDays": ref("TableRetentionDays"),
                        },
                        {
                            "Id": "expire-query-results",
                            "Status": "Enabled",
                            "Prefix": f"{ATHENA_RESULTS_PREFIX}/",
                            "ExpirationInDays": 30,
                        },
                        {
                            # Flink's S3 writer uses multipart uploads; a crash leaves parts
                            "Id": "abort-incomplete-uploads",
                            "Status": "Enabled",
                            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
                        },
                    ]
                },
            },
        },
        "DataBucketPolicy": {
            "Type": "AWS::S3::BucketPolicy",
            "Properties": {
                "Bucket": ref("DataBucket"),
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "TlsOnly",
                            "Effect": "Deny",
                            "Principal": "*",
                            "Action": "s3:*",
                            "Resource": [
                                att("DataBucket", "Arn"),
                                sub("${DataBucket.Arn}/*"),
                            ],
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                        }
                    ],
                },
            },
        },
        "Database": {
            "Type": "AWS::Glue::Database",
            "Properties": {
                "CatalogId": ref("AWS::AccountId"),
                "DatabaseInput": {
                    "Name": sub("${AWS::StackName}"),
                    "Description": "genai-apm Parquet tables (partition projection)",
                },
            },
        },
        **glue_tables(settings),
        "Workgroup": {
            "Type": "AWS::Athena::WorkGroup",
            "Properties": {
                "Name": sub("${AWS::StackName}"),
                "Description": "genai-apm queries: results encrypted, bytes scanned capped",
                "RecursiveDeleteOption": True,
                "WorkGroupConfiguration": {
                    "EnforceWorkGroupConfiguration": True,
                    "PublishCloudWatchMetricsEnabled": True,
                    "BytesScannedCutoffPerQuery": ref("AthenaBytesScannedCutoff"),
                    "EngineVersion": {"SelectedEngineVersion": "Athena engine version 3"},
                    "ResultConfiguration": {
                        "OutputLocation": sub(f"s3://${{DataBucket}}/{ATHENA_RESULTS_PREFIX}/"),
                        "EncryptionConfiguration": {"EncryptionOption": "SSE_S3"},
                    },
                },
            },
        },
        "LogGroup": {
            "Type": "AWS::Logs::LogGroup",
            "Properties": {"RetentionInDays": 30},
        },
        "LogStream": {
            "Type": "AWS::Logs::LogStream",
            "Properties": {"LogGroupName": ref("LogGroup"), "LogStreamName": "flink"},
        },
        "FlinkRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "Description": "genai-apm Managed Flink application",
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "kinesisanalytics.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                            "Condition": {
                                "StringEquals": {"aws:SourceAccount": ref("AWS::AccountId")}
                            },
                        }
                    ],
                },
                "Policies": [
                    {"PolicyName": "genai-apm-flink", "PolicyDocument": flink_policy(settings)}
                ],
            },
        },
        "ExporterPolicy": {
            "Type": "AWS::IAM::ManagedPolicy",
            "Properties": {
                "Description": "attach to the role running `genai-apm export cloudwatch`",
                "PolicyDocument": exporter_policy(settings, published),
            },
        },
        "AnalystPolicy": {
            "Type": "AWS::IAM::ManagedPolicy",
            "Properties": {
                "Description": "attach to whoever queries the tables with Athena",
                "PolicyDocument": analyst_policy(),
            },
        },
        **_flink_application(
            "genai-apm streaming analytics (PyFlink)",
            MANAGED_FLINK_RUNTIME,
            "FlinkRole",
            property_groups(settings),
            # the job does not set its checkpoint interval on the service
            # (flink.service_configured): the interval read_committed consumers and the
            # Parquet commits wait for is set here (DEFAULT is 60 s)
            checkpoints={
                "ConfigurationType": "CUSTOM",
                "CheckpointingEnabled": True,
                "CheckpointInterval": settings.flink.checkpoint_interval_s * 1000,
                "MinPauseBetweenCheckpoints": 1000,
            },
        ),
    }
    outputs = {
        "DataBucket": _output(ref("DataBucket"), "Parquet tables, checkpoints, Athena results"),
        "TablesPath": _output(
            sub(f"s3://${{DataBucket}}/{TABLES_PREFIX}"), "output.tables_path", "TablesPath"
        ),
        "Database": _output(ref("Database"), "Glue database of the tables"),
        "Workgroup": _output(ref("Workgroup"), "Athena workgroup"),
        "Application": _output(ref("Application"), "Managed Flink application name"),
        "ExporterPolicyArn": _output(ref("ExporterPolicy"), "policy for the exporter's role"),
        "AnalystPolicyArn": _output(ref("AnalystPolicy"), "policy for Athena users"),
    }
    return _template(
        "genai-apm: data bucket, Glue tables, Athena workgroup, IAM, Managed Flink application",
        parameters,
        resources,
        outputs,
    )


# ---- monitoring.yaml and dashboard.json ------------------------------------------------


def bridge_properties(settings: Settings) -> dict[str, Any]:
    """The bridge's property group on Managed Flink: the keys `genai-apm bridge kinesis`
    writes (genai_apm.kafka.bridge.properties) for MSK IAM, minus what the service owns
    (checkpoints, parallelism, restarts), with the stack's values."""
    from genai_apm.kafka import bridge

    msk = settings.replace(
        kafka={"security_protocol": "SASL_SSL", "sasl_mechanism": "AWS_MSK_IAM"},
        aws={"endpoint_url": ""},
    )
    props: dict[str, Any] = {
        key: value
        for key, value in bridge.properties(msk).items()
        if key not in {"local", "checkpoint_dir"} and not key.startswith("flink.")
    }
    props |= {
        # the service checkpoints every minute by default (and may take longer): the
        # transactions that commit on checkpoints get the broker's maximum, 15 minutes
        "kafka.properties.transaction.timeout.ms": "900000",
        "stream": ref("StreamName"),
        "start_position": ref("StartPosition"),
        "aws.region": ref("AWS::Region"),
        "kafka.bootstrap_servers": ref("KafkaBootstrapServers"),
    }
    return props


def bridge_template(settings: Settings) -> dict:
    """The Kinesis -> MSK bridge as its own Managed Flink application (a Java jar on
    FLINK-1_19), reading an existing stream, writing topics.invocations of the MSK cluster
    stream.yaml creates, exactly once."""
    topic = settings.topics.invocations
    prefix = bridge_properties(settings)["kafka.transactional_id_prefix"]
    stream_arn = sub(
        "arn:${AWS::Partition}:kinesis:${AWS::Region}:${AWS::AccountId}:stream/${StreamName}"
    )
    parameters = {
        "StreamName": {"Type": "String", "Description": "the existing Kinesis data stream"},
        "StartPosition": {
            "Type": "String",
            "Default": settings.bridge.start_position,
            "AllowedValues": ["TRIM_HORIZON", "LATEST"],
            "Description": "where a first start reads every shard (later: the snapshot)",
        },
        "KafkaClusterArn": {"Type": "String", "Description": "stream.yaml's ClusterArn"},
        "KafkaBootstrapServers": {
            "Type": "String",
            "Description": "the cluster's IAM bootstrap brokers (port 9098)",
        },
        "SubnetIds": {"Type": "List<AWS::EC2::Subnet::Id>"},
        "SecurityGroupIds": {"Type": "List<AWS::EC2::SecurityGroup::Id>"},
        "ArtifactBucket": {
            "Type": "String",
            "Description": f"an existing bucket holding `make package-bridge`'s {BRIDGE_JAR}",
        },
        "ArtifactKey": {"Type": "String", "Default": f"genai-apm/{BRIDGE_JAR}"},
        "Parallelism": {"Type": "Number", "Default": 1, "MinValue": 1},
    }
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            _statement(
                "ReadApplicationCode",
                ["s3:GetObject", "s3:GetObjectVersion"],
                sub("arn:${AWS::Partition}:s3:::${ArtifactBucket}/${ArtifactKey}"),
            ),
            # the polling consumer's calls (no enhanced fan-out)
            _statement(
                "ReadStream",
                [
                    "kinesis:DescribeStream",
                    "kinesis:DescribeStreamSummary",
                    "kinesis:ListShards",
                    "kinesis:GetShardIterator",
                    "kinesis:GetRecords",
                ],
                stream_arn,
            ),
            _statement(
                "ConnectToCluster",
                ["kafka-cluster:Connect", "kafka-cluster:DescribeCluster"],
                ref("KafkaClusterArn"),
            ),
            _statement(
                "WriteInvocations",
                ["kafka-cluster:DescribeTopic", "kafka-cluster:WriteData"],
                _kafka_arn("topic", topic),
            ),
            _statement(
                "ExactlyOnceTransactions",
                ["kafka-cluster:AlterTransactionalId", "kafka-cluster:DescribeTransactionalId"],
                _kafka_arn("transactional-id", f"{prefix}*"),
            ),
            *_application_runtime_statements(),
        ],
    }
    resources = {
        "LogGroup": {"Type": "AWS::Logs::LogGroup", "Properties": {"RetentionInDays": 30}},
        "LogStream": {
            "Type": "AWS::Logs::LogStream",
            "Properties": {"LogGroupName": ref("LogGroup"), "LogStreamName": "bridge"},
        },
        "BridgeRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "Description": "genai-apm Kinesis bridge (Managed Flink)",
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "kinesisanalytics.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                            "Condition": {
                                "StringEquals": {"aws:SourceAccount": ref("AWS::AccountId")}
                            },
                        }
                    ],
                },
                "Policies": [{"PolicyName": "genai-apm-bridge", "PolicyDocument": policy}],
            },
        },
        **_flink_application(
            "genai-apm Kinesis -> Kafka bridge (exactly once)",
            BRIDGE_RUNTIME,
            "BridgeRole",
            [{"PropertyGroupId": "genai_apm.bridge", "PropertyMap": bridge_properties(settings)}],
        ),
    }
    outputs = {
        "Application": _output(ref("Application"), "the bridge application: start it"),
    }
    return _template(
        "genai-apm: Kinesis data stream -> MSK topic, exactly once (Managed Flink, Flink 1.19)",
        parameters,
        resources,
        outputs,
    )


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


# ---- infra/k8s ---------------------------------------------------------------------------


def flink_deployment(settings: Settings, job: str = DEFAULT_JOB) -> dict:
    """A FlinkDeployment running one job through PyFlink's driver, in application mode."""
    from genai_apm.jobs import JOBS

    return {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {"name": f"genai-apm-{job}", "labels": {"app": "genai-apm", "job": job}},
        "spec": {
            # an image FROM flink:<FLINK_VERSION> with Python 3.11, `pip install genai-apm`
            # and the connector jars of `make jars` in /opt/flink/lib (docs/deploy.md, "Kubernetes")
            "image": K8S_IMAGE,
            "flinkVersion": OPERATOR_FLINK_VERSION,
            "serviceAccount": "flink",
            "flinkConfiguration": {
                "taskmanager.numberOfTaskSlots": str(settings.flink.task_slots),
                "execution.checkpointing.interval": f"{settings.flink.checkpoint_interval_s} s",
                "state.backend.type": "rocksdb",
                "high-availability.type": "kubernetes",
                "high-availability.storageDir": "s3://CHANGE-ME/ha",
            },
            "jobManager": {"resource": {"memory": settings.flink.jobmanager_memory, "cpu": 1}},
            "taskManager": {"resource": {"memory": settings.flink.taskmanager_memory, "cpu": 1}},
            "podTemplate": {
                "spec": {
                    "containers": [
                        {
                            "name": "flink-main-container",
                            "env": [
                                # the official image's switch for its bundled S3 plugin
                                {
                                    "name": "ENABLE_BUILT_IN_PLUGINS",
                                    "value": f"flink-s3-fs-hadoop-{FLINK_VERSION}.jar",
                                },
                                {"name": "GENAI_APM_HOME", "value": K8S_HOME},
                                {
                                    "name": "GENAI_APM_KAFKA_BOOTSTRAP_SERVERS",
                                    "value": "CHANGE-ME:9098",
                                },
                                {"name": "GENAI_APM_KAFKA_SECURITY_PROTOCOL", "value": "SASL_SSL"},
                                # SCRAM: the image runs the local build, whose relocated
                                # Kafka client cannot take MSK IAM (docs/security.md)
                                {
                                    "name": "GENAI_APM_KAFKA_SASL_MECHANISM",
                                    "value": "SCRAM-SHA-512",
                                },
                                {"name": "GENAI_APM_KAFKA_SASL_USERNAME", "value": "genai-apm"},
                                {
                                    "name": "GENAI_APM_KAFKA_SASL_PASSWORD",
                                    "valueFrom": {
                                        "secretKeyRef": {
                                            "name": "genai-apm-kafka",
                                            "key": "password",
                                        }
                                    },
                                },
                                {
                                    "name": "GENAI_APM_OUTPUT_TABLES_PATH",
                                    "value": f"s3://CHANGE-ME/{TABLES_PREFIX}",
                                },
                                # the job sets its checkpoint storage itself (flink/env.py)
                                {
                                    "name": "GENAI_APM_FLINK_CHECKPOINT_DIR",
                                    "value": f"s3://CHANGE-ME/{CHECKPOINTS_PREFIX}",
                                },
                            ],
                        }
                    ]
                }
            },
            "job": {
                "jarURI": f"local:///opt/flink/opt/flink-python-{FLINK_VERSION}.jar",
                "entryClass": PYTHON_DRIVER,
                "args": ["-pym", JOBS[job]],
                "parallelism": settings.flink.parallelism,
                "upgradeMode": "savepoint",
                "state": "running",
            },
        },
    }


# ---- files ------------------------------------------------------------------------------


def _yaml(data: dict, header: str) -> str:
    import yaml

    class Dumper(yaml.SafeDumper):
        # CloudFormation rejects YAML anchors and aliases: repeat shared values instead
        def ignore_aliases(self, data):
            return True

    # keep the order written here (Parameters before Resources), never sort
    text = yaml.dump(data, Dumper=Dumper, sort_keys=False, width=100, allow_unicode=False)
    return header + text


def _header(what: str, comment: str = "#") -> str:
    return f"{comment} Generated by `{COMMAND}` from {what}; do not edit.\n"


def artifacts(settings: Settings | None = None) -> dict[Path, str]:
    """Every generated file (path relative to the checkout -> text), nothing written."""
    from genai_apm.settings import app_properties

    settings = settings or Settings()
    published = Published(settings)
    monitoring, body = monitoring_template(published)
    # what pipeline.yaml sets, with example values for the stack-dependent ones
    local = app_properties.property_groups(
        {
            "kafka": {"bootstrap_servers": "127.0.0.1:9092"},
            "output": {"tables_path": settings.output.tables_path},
        }
    )
    files: dict[Path, str] = {
        AWS_DIR / "stream.yaml": _yaml(
            stream_template(), _header("genai_apm/deploy/aws_templates.py")
        ),
        AWS_DIR / "pipeline.yaml": _yaml(
            pipeline_template(settings, published),
            _header(
                "the job column lists, topics and settings (genai_apm/deploy/aws_templates.py)"
            ),
        ),
        AWS_DIR / "monitoring.yaml": _yaml(
            monitoring,
            _header("the CloudWatch exporter's metric names (genai_apm/export/cloudwatch.py)"),
        ),
        AWS_DIR / "dashboard.json": json.dumps(body, indent=2) + "\n",
        AWS_DIR / "kinesis-bridge.yaml": _yaml(
            bridge_template(settings),
            _header(
                "the bridge's settings (genai_apm/deploy/aws_templates.py, "
                "genai_apm/kafka/bridge.py)"
            ),
        ),
        AWS_DIR / "application_properties.json": json.dumps(
            [
                {
                    "PropertyGroupId": app_properties.JOB_GROUP,
                    "PropertyMap": {"job": DEFAULT_JOB},
                },
                *local,
            ],
            indent=2,
        )
        + "\n",
        K8S_DIR / "flinkdeployment.yaml": _yaml(
            flink_deployment(settings),
            _header("genai_apm/deploy/aws_templates.py and genai_apm.jobs"),
        ),
    }
    return files


def stale(root: Path = ROOT) -> list[Path]:
    from genai_apm.deploy import generated_files

    return generated_files.stale(artifacts(), root)


def write(root: Path = ROOT) -> list[Path]:
    from genai_apm.deploy import generated_files

    return generated_files.write(artifacts(), root)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a file is out of date")
    args = parser.parse_args(argv)
    if args.check:
        out_of_date = stale()
        for path in out_of_date:
            print(f"out of date: {path} (run `{COMMAND}`)", file=sys.stderr)
        return 1 if out_of_date else 0
    for path in write():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
