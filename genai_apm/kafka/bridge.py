"""`genai-apm bridge kinesis`: Kinesis Data Streams -> the invocations topic, exactly once.

The bridge is a Java job on its own Flink 1.19 runtime (infra/kinesis-bridge): the only
Kinesis connector the project's Maven registry serves (flink-connector-kinesis 4.3.0-1.19,
the polling FlinkKinesisConsumer) cannot run on the Flink 2.2 the analytics use. It runs as
a plain JVM with a local Flink environment, checkpoints to ``bridge.checkpoint_dir`` and
writes Kafka in transactions committed on checkpoints (docs/aws.md).

This module writes the JVM's settings file, checks the stream before starting (a missing
stream or bad credentials is one line, not a job that idles or restarts for ever) and starts
the process. Secrets never go on the command line: the AWS keys reach the JVM as environment
variables, a Kafka password only through the settings file, readable by its owner alone.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from pathlib import Path

from genai_apm.errors import GenaiApmError
from genai_apm.home import jars_dir, java_executable, project_root
from genai_apm.settings.config import Settings

MAIN_CLASS = "io.genaiapm.bridge.KinesisBridge"
JAR_GROUP = "kinesis-bridge"
JAR = "genai-apm-kinesis-bridge.jar"
START_POSITIONS = ("TRIM_HORIZON", "LATEST")
# The connector's SDKs speak CBOR to Kinesis by default; moto answers JSON only. SDK v2 reads
# aws.cborEnabled, SDK v1 com.amazonaws.sdk.disableCbor, which the connector's shading
# relocates (string constants included) under its own package.
CBOR_OFF = (
    "-Daws.cborEnabled=false",
    "-Dcom.amazonaws.sdk.disableCbor=true",
    "-Dorg.apache.flink.kinesis.shaded.com.amazonaws.sdk.disableCbor=true",
)


def checkpoint_dir(settings: Settings) -> Path:
    """A local folder: the bridge finds its newest checkpoint there when it starts again."""
    configured = settings.bridge.checkpoint_dir
    if configured.startswith(("s3://", "hdfs://")):
        raise GenaiApmError(
            "config bridge.checkpoint_dir must be a local folder for `genai-apm bridge kinesis` "
            "(on Managed Flink the service keeps the checkpoints)"
        )
    if configured:
        return Path(configured.removeprefix("file://")).resolve()
    return Path(settings.stack.state_dir).resolve() / "kinesis-bridge" / "checkpoints"


# What Flink 1.19's own launch scripts give the JVM on Java 17 (env.java.opts.all in its
# config.yaml): Kryo snapshots the Kinesis consumer's state (java.util collections) by
# reflection, which Java 17 refuses without these.
JAVA_17_OPENS = tuple(
    f"--add-opens=java.base/{package}=ALL-UNNAMED"
    for package in (
        "java.lang",
        "java.lang.reflect",
        "java.net",
        "java.io",
        "java.nio",
        "sun.nio.ch",
        "java.text",
        "java.time",
        "java.util",
        "java.util.concurrent",
        "java.util.concurrent.atomic",
        "java.util.concurrent.locks",
    )
) + ("--add-exports=java.base/sun.net.util=ALL-UNNAMED",)


def state_dir(settings: Settings) -> Path:
    """Beside the checkpoints: the JVM's settings file and its log."""
    return checkpoint_dir(settings).parent


def properties(settings: Settings) -> dict[str, str]:
    """The JVM's settings (BridgeConfig.java): bridge keys, Kafka client options under
    ``kafka.properties.``, the Kinesis connector's own options under ``kinesis.``, Flink
    options under ``flink.``."""
    from genai_apm.connectors.kafka import client_properties

    b = settings.bridge
    if b.start_position not in START_POSITIONS:
        raise GenaiApmError(
            f"config bridge.start_position {b.start_position!r} is not one of "
            + ", ".join(START_POSITIONS)
        )
    if not b.stream:
        raise GenaiApmError("config bridge.stream is empty: name the Kinesis stream to read")
    props = {
        "local": "true",
        "stream": b.stream,
        "start_position": b.start_position,
        "aws.region": settings.aws.region,
        "checkpoint_dir": checkpoint_dir(settings).as_uri(),
        "kafka.bootstrap_servers": settings.kafka.bootstrap_servers,
        "kafka.topic": settings.topics.invocations,
        # one bridge per topic: a restarted bridge finds and aborts its predecessor's open
        # transactions by this prefix
        "kafka.transactional_id_prefix": f"genai-apm-kinesis-bridge-{settings.topics.invocations}",
        # above the checkpoint interval (else a slow checkpoint's transaction is aborted) and
        # at most the broker's transaction.max.timeout.ms (15 min by default)
        "kafka.properties.transaction.timeout.ms": str(
            min(900_000, max(60_000, 4 * b.checkpoint_interval_s * 1000))
        ),
        # the connector's polling options (ConsumerConfigConstants): GetRecords pace, shard
        # discovery (new shards after a split), and retries with exponential backoff for
        # throttled GetRecords (ProvisionedThroughputExceeded) and the listing calls
        "kinesis.flink.shard.getrecords.intervalmillis": str(b.getrecords_interval_ms),
        "kinesis.flink.shard.discovery.intervalmillis": str(b.shard_discovery_interval_ms),
        "kinesis.flink.shard.getrecords.maxretries": str(b.max_retries),
        "kinesis.flink.shard.getrecords.backoff.base": str(b.backoff_base_ms),
        "kinesis.flink.shard.getrecords.backoff.max": str(b.backoff_max_ms),
        "kinesis.flink.shard.getiterator.maxretries": str(b.max_retries),
        "kinesis.flink.shard.getiterator.backoff.base": str(b.backoff_base_ms),
        "kinesis.flink.shard.getiterator.backoff.max": str(b.backoff_max_ms),
        "kinesis.flink.list.shards.maxretries": str(b.max_retries),
        "kinesis.flink.list.shards.backoff.base": str(b.backoff_base_ms),
        "kinesis.flink.list.shards.backoff.max": str(b.backoff_max_ms),
        "flink.execution.checkpointing.interval": f"{b.checkpoint_interval_s} s",
        "flink.parallelism.default": str(b.parallelism),
        # a failure the retries above did not absorb restarts the job from its checkpoint a
        # few times, then the process exits non-zero for its supervisor to see
        "flink.restart-strategy.type": "exponential-delay",
        "flink.restart-strategy.exponential-delay.initial-backoff": "1 s",
        "flink.restart-strategy.exponential-delay.max-backoff": "30 s",
        "flink.restart-strategy.exponential-delay.attempts-before-reset-backoff": str(
            b.restart_attempts
        ),
    }
    if settings.aws.endpoint_url:
        props["aws.endpoint"] = settings.aws.endpoint_url
    # the bridge bundles the plain Kafka client (infra/kinesis-bridge/pom.xml), so login
    # modules keep their own class names and MSK IAM works
    plain = dataclasses.replace(settings.kafka, shaded_client=False)
    for key, value in client_properties(plain).items():
        if key != "properties.bootstrap.servers":
            props["kafka." + key] = value
    return props


def write_properties(settings: Settings, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"{key}={_escape(value)}" for key, value in sorted(properties(settings).items())]
    # may hold a Kafka password: created private, never world-readable even briefly
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return path


def _escape(value: str) -> str:
    # java.util.Properties: backslash escapes; a leading space would be dropped
    out = value.replace("\\", "\\\\").replace("\n", "\\n")
    return "\\" + out if out.startswith(" ") else out


def jar_paths() -> tuple[Path, Path]:
    """The bridge jar and its lib/ folder, built with Maven on first use (``make bridge``)."""
    folder = jars_dir(JAR_GROUP)
    if not (folder / JAR).is_file() or not any((folder / "lib").glob("*.jar")):
        build()
    return folder / JAR, folder / "lib"


def build() -> None:
    pom = project_root() / "infra" / "pom.xml"
    mvn = shutil.which("mvn")
    if mvn is None:
        raise GenaiApmError("Maven (mvn) is not on PATH; it builds the Kinesis bridge jar")
    command = [mvn, "-q", "-B", "-f", str(pom), "-P", JAR_GROUP, "-pl", JAR_GROUP, "package"]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        last = (result.stdout + result.stderr).strip().splitlines()[-1:] or ["(no output)"]
        raise GenaiApmError(f"Maven could not build the Kinesis bridge: {last[0]}")


def check_stream(settings: Settings) -> int:
    """The stream's open shard count; one clear GenaiApmError when the stream is missing,
    the region or credentials are wrong, or the endpoint cannot be reached."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
    )

    from genai_apm.aws import client

    stream, region = settings.bridge.stream, settings.aws.region
    where = settings.aws.endpoint_url or f"Kinesis in {region}"
    kinesis = client(settings.aws, "kinesis", retries={"max_attempts": 3, "mode": "standard"})
    try:
        summary = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]
    except NoCredentialsError:
        raise GenaiApmError(
            "no AWS credentials for the Kinesis bridge: set aws.access_key_id/secret_access_key, "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile or an instance role"
        ) from None
    except EndpointConnectionError:
        raise GenaiApmError(f"cannot reach {where} (aws.endpoint_url / aws.region)") from None
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code", "")
        if code == "ResourceNotFoundException":
            raise GenaiApmError(
                f"Kinesis stream {stream!r} does not exist in {region} (bridge.stream, aws.region)"
            ) from None
        if code in {
            "UnrecognizedClientException",
            "InvalidSignatureException",
            "ExpiredTokenException",
            "AccessDeniedException",
            "InvalidClientTokenId",
        }:
            raise GenaiApmError(
                f"AWS refused the credentials for Kinesis stream {stream!r} in {region} ({code})"
            ) from None
        raise GenaiApmError(f"Kinesis DescribeStreamSummary on {stream!r} failed: {code}") from None
    except BotoCoreError as e:
        raise GenaiApmError(f"Kinesis stream {stream!r}: {e}") from None
    if summary["StreamStatus"] not in {"ACTIVE", "UPDATING"}:
        raise GenaiApmError(f"Kinesis stream {stream!r} is {summary['StreamStatus']}, not ACTIVE")
    return int(summary["OpenShardCount"])


def command(settings: Settings, config_file: Path) -> list[str]:
    jar, lib = jar_paths()
    log_config = project_root() / "infra" / "kinesis-bridge" / "log4j2.properties"
    return [
        java_executable(),
        f"-Xmx{settings.bridge.heap}",
        *JAVA_17_OPENS,
        *CBOR_OFF,
        f"-Dlog4j.configurationFile={log_config}",
        "-cp",
        f"{jar}{os.pathsep}{lib}/*",
        MAIN_CLASS,
        "--config",
        str(config_file),
    ]


def environment(settings: Settings) -> dict[str, str]:
    """The JVM's environment: the connector takes credentials from the default chain, so
    configured keys go there (not into a file or the command line)."""
    env = dict(os.environ)
    if settings.aws.access_key_id:
        env["AWS_ACCESS_KEY_ID"] = settings.aws.access_key_id
        env["AWS_SECRET_ACCESS_KEY"] = settings.aws.secret_access_key
    env.setdefault("AWS_REGION", settings.aws.region)
    return env


def start(settings: Settings, *, log_file: Path | None = None) -> subprocess.Popen:
    """Check the stream, then start the bridge JVM in the background (its log: ``log_file``,
    default ``<state_dir>/kinesis-bridge/bridge.log``)."""
    check_stream(settings)
    folder = state_dir(settings)
    config_file = write_properties(settings, folder / "bridge.properties")
    log_file = log_file or folder / "bridge.log"
    log = open(log_file, "ab")  # noqa: SIM115 - the child owns it; closed below
    try:
        return subprocess.Popen(
            command(settings, config_file),
            env=environment(settings),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        log.close()


def run(settings: Settings) -> int:
    """Foreground: check the stream, then run the bridge JVM until it ends or is interrupted."""
    shards = check_stream(settings)
    config_file = write_properties(settings, state_dir(settings) / "bridge.properties")
    print(
        f"bridging Kinesis stream {settings.bridge.stream} ({shards} open shards, "
        f"{settings.bridge.start_position} on first start) -> Kafka topic "
        f"{settings.topics.invocations}; checkpoints in {checkpoint_dir(settings)}",
        flush=True,
    )
    proc = subprocess.Popen(command(settings, config_file), env=environment(settings))
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        return proc.wait()
