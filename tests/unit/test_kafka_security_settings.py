"""TLS and SASL settings as kafka-python arguments and as Flink's Kafka `properties.*`.

The integration test (tests/integration/test_kafka_security.py) proves both clients connect
with them; these pin the exact names each client expects, and that secrets stay out of
what is printed.
"""

from __future__ import annotations

import pytest

from genai_apm.connectors.kafka import client_properties, json_sink_ddl
from genai_apm.errors import GenaiApmError
from genai_apm.kafka.io import client_args
from genai_apm.settings import config

SECURED_ENV = {
    "GENAI_APM_KAFKA_BOOTSTRAP_SERVERS": "b-1.example:9096,b-2.example:9096",
    "GENAI_APM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "GENAI_APM_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "GENAI_APM_KAFKA_SASL_USERNAME": "apm",
    "GENAI_APM_KAFKA_SASL_PASSWORD": 'pa"ss\\word',
    "GENAI_APM_KAFKA_SSL_CA_FILE": "/etc/ssl/kafka-ca.pem",
    "GENAI_APM_KAFKA_SSL_CERT_FILE": "/etc/ssl/client.pem",
    "GENAI_APM_KAFKA_SSL_KEY_PASSWORD": "keypass",
    "GENAI_APM_KAFKA_SSL_CHECK_HOSTNAME": "false",
}


def secured() -> config.Settings:
    return config.load(path=None, environ=SECURED_ENV)


def test_plaintext_defaults_add_no_security_options():
    k = config.load(path=None, environ={}).kafka
    assert client_properties(k) == {"properties.bootstrap.servers": "127.0.0.1:9092"}
    args = client_args(k)
    assert not {a for a in args if a.startswith(("ssl_", "sasl_", "security_"))}


def test_kafka_python_arguments():
    args = client_args(secured().kafka)
    assert args["bootstrap_servers"] == ["b-1.example:9096", "b-2.example:9096"]
    assert args["security_protocol"] == "SASL_SSL"
    assert args["sasl_mechanism"] == "SCRAM-SHA-512"
    assert args["sasl_plain_username"] == "apm"
    assert args["sasl_plain_password"] == 'pa"ss\\word'
    assert args["ssl_cafile"] == "/etc/ssl/kafka-ca.pem"
    assert args["ssl_certfile"] == "/etc/ssl/client.pem"
    assert args["ssl_password"] == "keypass"
    assert args["ssl_check_hostname"] is False
    # every name is one kafka-python knows (a typo would be a TypeError only at connect time)
    from kafka import KafkaConsumer, KafkaProducer

    for client in (KafkaProducer, KafkaConsumer):
        assert set(args) <= set(client.DEFAULT_CONFIG), client


def test_flink_properties():
    props = client_properties(secured().kafka)
    assert props["properties.bootstrap.servers"] == "b-1.example:9096,b-2.example:9096"
    assert props["properties.security.protocol"] == "SASL_SSL"
    assert props["properties.sasl.mechanism"] == "SCRAM-SHA-512"
    assert props["properties.sasl.jaas.config"] == (
        "org.apache.flink.kafka.shaded.org.apache.kafka.common.security.scram.ScramLoginModule"
        ' required username="apm" password="pa\\"ss\\\\word";'
    )
    assert props["properties.ssl.truststore.type"] == "PEM"
    assert props["properties.ssl.truststore.location"] == "/etc/ssl/kafka-ca.pem"
    assert props["properties.ssl.keystore.type"] == "PEM"
    assert props["properties.ssl.keystore.location"] == "/etc/ssl/client.pem"
    assert props["properties.ssl.key.password"] == "keypass"
    assert props["properties.ssl.endpoint.identification.algorithm"] == ""


def test_hostname_check_is_on_unless_switched_off_and_tls_options_need_tls():
    s = secured().replace(kafka={"ssl_check_hostname": True})
    props = client_properties(s.kafka)
    assert props["properties.ssl.endpoint.identification.algorithm"] == "https"
    assert client_args(s.kafka)["ssl_check_hostname"] is True
    # SASL without TLS: no ssl.* options at all, whatever files are configured
    plain = s.replace(kafka={"security_protocol": "SASL_PLAINTEXT"})
    assert not [p for p in client_properties(plain.kafka) if p.startswith("properties.ssl.")]
    assert not [a for a in client_args(plain.kafka) if a.startswith("ssl_")]


def test_plain_mechanism_uses_the_shaded_plain_module():
    s = secured().replace(kafka={"sasl_mechanism": "PLAIN"})
    jaas = client_properties(s.kafka)["properties.sasl.jaas.config"]
    assert jaas.startswith(
        "org.apache.flink.kafka.shaded.org.apache.kafka.common.security.plain.PlainLoginModule "
    )


def test_secured_options_reach_every_kafka_table():
    ddl = json_sink_ddl("out", "t", secured().kafka, [("a", "STRING")])
    assert "'properties.ssl.truststore.location' = '/etc/ssl/kafka-ca.pem'" in ddl
    assert "'properties.security.protocol' = 'SASL_SSL'" in ddl


def test_secrets_are_masked_in_printed_settings():
    s = secured().replace(privacy={"hash_user_ids": True, "user_id_salt": "pepper-xyz"})
    shown = str(s.redacted())
    for secret in ("keypass", 'pa"ss', "pepper-xyz"):
        assert secret not in shown, secret
    assert s.redacted()["kafka"]["ssl_key_password"] == "***"
    assert s.redacted()["privacy"]["user_id_salt"] == "***"
    # file paths are not secrets: they help find a misconfiguration
    assert s.redacted()["kafka"]["ssl_ca_file"] == "/etc/ssl/kafka-ca.pem"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GENAI_APM_KAFKA_SECURITY_PROTOCOL": "TLS"}, "kafka.security_protocol 'TLS'"),
        ({"GENAI_APM_KAFKA_SSL_CERT_FILE": "/c.pem"}, "needs kafka.ssl_key_password"),
        ({"GENAI_APM_PRIVACY_HASH_USER_IDS": "true"}, "needs privacy.user_id_salt"),
    ],
)
def test_bad_security_settings_are_one_clear_error(env, message):
    with pytest.raises(GenaiApmError, match=message.replace(".", r"\.")):
        config.load(path=None, environ=env)


def test_msk_iam_signs_with_aws_credentials_in_python_and_is_refused_for_flink():
    s = secured().replace(kafka={"sasl_mechanism": "AWS_MSK_IAM"})
    args = client_args(s.kafka)
    assert args["sasl_mechanism"] == "AWS_MSK_IAM"
    assert "sasl_plain_password" not in args and "sasl_plain_username" not in args
    # kafka-python itself accepts the mechanism with these arguments
    from kafka.net.sasl import get_sasl_mechanism

    get_sasl_mechanism("AWS_MSK_IAM")(host="b-1.example", **args)
    with pytest.raises(GenaiApmError, match="AWS_MSK_IAM needs the plain Kafka client"):
        client_properties(s.kafka)
    # the plain client (Managed Flink package) takes it, and SCRAM names the plain module
    assert (
        "IAMLoginModule"
        in client_properties(s.kafka.__class__(**(vars(s.kafka) | {"shaded_client": False})))[
            "properties.sasl.jaas.config"
        ]
    )
    scram = s.kafka.__class__(
        **(vars(s.kafka) | {"shaded_client": False, "sasl_mechanism": "SCRAM-SHA-512"})
    )
    assert client_properties(scram)["properties.sasl.jaas.config"].startswith(
        "org.apache.kafka.common.security.scram.ScramLoginModule required"
    )


@pytest.fixture
def closing_server():
    """A TCP listener that accepts each connection and closes it at once, as a broker does
    after refusing a login; yields its address."""
    import socket
    import threading

    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            conn.recv(4096)  # the client's first request, unanswered
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    server.close()


@pytest.mark.parametrize(
    ("protocol", "expected"),
    [
        ("SASL_PLAINTEXT", "closed the connection before the client was logged in"),
        ("PLAINTEXT", "cannot reach Kafka"),
    ],
)
def test_a_connection_the_broker_closes_is_one_line_naming_the_login(
    closing_server, protocol, expected
):
    from genai_apm.kafka.io import require_topics

    k = config.load(
        path=None,
        environ={
            "GENAI_APM_KAFKA_BOOTSTRAP_SERVERS": closing_server,
            "GENAI_APM_KAFKA_SECURITY_PROTOCOL": protocol,
            "GENAI_APM_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512" if "SASL" in protocol else "",
            "GENAI_APM_KAFKA_SASL_USERNAME": "apm",
            "GENAI_APM_KAFKA_SASL_PASSWORD": "a-secret-password",
            "GENAI_APM_KAFKA_CONNECT_TIMEOUT_S": "1.5",
        },
    ).kafka
    with pytest.raises(GenaiApmError) as caught:
        require_topics(k, ["anything"])
    message = str(caught.value)
    assert expected in message and "\n" not in message
    assert "a-secret-password" not in message


def test_a_refused_connection_after_a_closed_one_is_not_blamed_on_the_login():
    import logging

    from kafka.errors import KafkaTimeoutError

    from genai_apm.kafka.io import kafka_errors

    k = secured().kafka
    log = logging.getLogger("kafka.net.manager")
    with pytest.raises(GenaiApmError) as caught, kafka_errors(k):
        log.warning("Bootstrap connection to b-1 failed: KafkaConnectionError: socket disconnected")
        log.warning("Bootstrap connection to b-1 failed: KafkaConnectionError: Connection refused")
        raise KafkaTimeoutError()
    assert "cannot reach Kafka" in str(caught.value)
