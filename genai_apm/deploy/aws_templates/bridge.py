"""infra/aws/kinesis-bridge.yaml: the Kinesis -> MSK bridge application on Managed Flink."""

from __future__ import annotations

from typing import Any

from genai_apm.deploy.aws_templates.cloudformation import _output, _template, ref, sub
from genai_apm.deploy.aws_templates.constants import BRIDGE_JAR, BRIDGE_RUNTIME
from genai_apm.deploy.aws_templates.iam import (
    _application_runtime_statements,
    _kafka_arn,
    _statement,
)
from genai_apm.deploy.aws_templates.pipeline import _flink_application
from genai_apm.settings.config import Settings


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
