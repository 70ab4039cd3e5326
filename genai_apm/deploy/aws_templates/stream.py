"""infra/aws/stream.yaml: the Kafka stream (Amazon MSK Serverless)."""

from __future__ import annotations

from genai_apm.deploy.aws_templates.cloudformation import _output, _template, ref, sub


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
