"""infra/k8s/flinkdeployment.yaml: a Flink Kubernetes Operator FlinkDeployment."""

from __future__ import annotations

from genai_apm.deploy.aws_templates.constants import (
    CHECKPOINTS_PREFIX,
    DEFAULT_JOB,
    FLINK_VERSION,
    K8S_HOME,
    K8S_IMAGE,
    OPERATOR_FLINK_VERSION,
    PYTHON_DRIVER,
    TABLES_PREFIX,
)
from genai_apm.settings.config import Settings


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
