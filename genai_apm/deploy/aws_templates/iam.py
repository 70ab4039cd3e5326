"""The IAM policies: the Flink applications', the CloudWatch exporter's and the analysts'."""

from __future__ import annotations

from typing import Any

from genai_apm.deploy.aws_templates.cloudformation import ref, sub
from genai_apm.deploy.aws_templates.constants import (
    ATHENA_RESULTS_PREFIX,
    CHECKPOINTS_PREFIX,
    TABLES_PREFIX,
)
from genai_apm.deploy.aws_templates.job_topics import _topics
from genai_apm.deploy.aws_templates.published import Published
from genai_apm.settings.config import Settings


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
