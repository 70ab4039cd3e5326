"""infra/aws/pipeline.yaml: data bucket, Glue tables, Athena workgroup and the Managed Flink
application with its runtime properties."""

from __future__ import annotations

from typing import Any

from genai_apm.deploy.aws_templates.cloudformation import _output, _template, att, ref, sub
from genai_apm.deploy.aws_templates.constants import (
    ATHENA_RESULTS_PREFIX,
    CHECKPOINTS_PREFIX,
    DEFAULT_JOB,
    MANAGED_FLINK_RUNTIME,
    PACKAGE_JAR,
    PACKAGE_MAIN,
    PACKAGE_PYTHON,
    PACKAGE_ZIP,
    TABLES_PREFIX,
)
from genai_apm.deploy.aws_templates.iam import analyst_policy, exporter_policy, flink_policy
from genai_apm.deploy.aws_templates.job_topics import _jobs
from genai_apm.deploy.aws_templates.published import Published
from genai_apm.settings.config import Settings


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
