"""The Kinesis bridge's settings file and command line (the JVM side: tests/integration)."""

from __future__ import annotations

import stat

import pytest

from genai_apm.errors import GenaiApmError
from genai_apm.kafka import bridge


def test_properties_carry_stream_position_topic_and_endpoint(base_settings):
    s = base_settings.replace(
        bridge={"stream": "calls", "start_position": "LATEST"},
        aws={"endpoint_url": "http://127.0.0.1:5000", "region": "eu-west-1"},
        topics={"invocations": "t.inv"},
    )
    props = bridge.properties(s)
    assert props["stream"] == "calls"
    assert props["start_position"] == "LATEST"
    assert props["aws.endpoint"] == "http://127.0.0.1:5000"
    assert props["aws.region"] == "eu-west-1"
    assert props["kafka.topic"] == "t.inv"
    assert props["kafka.bootstrap_servers"] == s.kafka.bootstrap_servers
    # transactions must outlive a checkpoint interval, within the broker's 15-minute cap
    timeout = int(props["kafka.properties.transaction.timeout.ms"])
    assert s.bridge.checkpoint_interval_s * 1000 < timeout <= 900_000


def test_a_bad_start_position_is_one_clear_error(base_settings):
    with pytest.raises(GenaiApmError, match="TRIM_HORIZON or|one of TRIM_HORIZON"):
        bridge.properties(base_settings.replace(bridge={"start_position": "EARLIEST"}))


def test_remote_checkpoint_dirs_are_refused_locally(base_settings):
    with pytest.raises(GenaiApmError, match="local folder"):
        bridge.checkpoint_dir(base_settings.replace(bridge={"checkpoint_dir": "s3://b/chk"}))


def test_secrets_stay_off_the_command_line_and_the_file_is_private(base_settings, tmp_path):
    s = base_settings.replace(
        aws={"access_key_id": "AKIAEXAMPLE", "secret_access_key": "s3cr3t-aws"},
        kafka={
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_username": "u",
            "sasl_password": "s3cr3t-kafka",
        },
    )
    path = bridge.write_properties(s, tmp_path / "b.properties")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert "s3cr3t-aws" not in text  # AWS keys go through the environment
    # the bridge bundles the plain Kafka client: login modules by their own names
    assert "org.apache.kafka.common.security.scram.ScramLoginModule" in text
    env = bridge.environment(s)
    assert env["AWS_SECRET_ACCESS_KEY"] == "s3cr3t-aws"


def test_msk_iam_is_accepted(base_settings):
    s = base_settings.replace(
        kafka={"security_protocol": "SASL_SSL", "sasl_mechanism": "AWS_MSK_IAM"}
    )
    props = bridge.properties(s)
    assert props["kafka.properties.sasl.jaas.config"].startswith("software.amazon.msk.auth.iam.")


def test_command_turns_cbor_off_and_runs_the_main_class(base_settings, tmp_path, monkeypatch):
    monkeypatch.setattr(bridge, "jar_paths", lambda: (tmp_path / "b.jar", tmp_path / "lib"))
    cmd = bridge.command(base_settings, tmp_path / "b.properties")
    assert "-Daws.cborEnabled=false" in cmd
    assert "--add-opens=java.base/java.util=ALL-UNNAMED" in cmd
    assert cmd[-3:] == [bridge.MAIN_CLASS, "--config", str(tmp_path / "b.properties")]
    assert not any("s3cr3t" in c for c in cmd)


def test_the_managed_flink_template_passes_what_the_jvm_requires():
    from genai_apm.deploy import aws_templates
    from genai_apm.settings.config import Settings

    template = aws_templates.bridge_template(Settings())
    app = template["Resources"]["Application"]["Properties"]
    assert app["RuntimeEnvironment"] == "FLINK-1_19"
    (group,) = app["ApplicationConfiguration"]["EnvironmentProperties"]["PropertyGroups"]
    # BridgeConfig.java reads this group on Managed Flink; these keys are required there
    assert group["PropertyGroupId"] == "genai_apm.bridge"
    props = group["PropertyMap"]
    for key in ("stream", "aws.region", "kafka.bootstrap_servers", "kafka.topic"):
        assert key in props, key
    # MSK Serverless: IAM, through the plain client the bridge bundles
    assert props["kafka.properties.sasl.mechanism"] == "AWS_MSK_IAM"
    # the service owns checkpoints, restarts and parallelism: no local-mode keys
    assert "local" not in props and "checkpoint_dir" not in props
    assert not any(k.startswith("flink.") for k in props)
    statements = template["Resources"]["BridgeRole"]["Properties"]["Policies"][0]
    kinesis = [s for s in statements["PolicyDocument"]["Statement"] if s["Sid"] == "ReadStream"]
    assert "kinesis:SubscribeToShard" not in kinesis[0]["Action"]  # polling only


def test_missing_credentials_are_one_clear_error(base_settings, monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    s = base_settings.replace(aws={"endpoint_url": "http://127.0.0.1:9"})
    with pytest.raises(GenaiApmError, match="no AWS credentials"):
        bridge.check_stream(s)
