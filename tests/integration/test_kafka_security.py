"""Clients against a broker that demands TLS and SCRAM-SHA-512 (SASL_SSL), as MSK does.

The module starts its own broker, with a SASL_SSL listener next to the usual loopback ones,
a certificate authority made for this run, and one SCRAM user created when its storage is
formatted. kafka-python (the CLI tools) and the Java client inside Flink both connect
through the settings alone; a wrong password is one clear line.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets

import pytest

from genai_apm.errors import GenaiApmError
from genai_apm.kafka import io as kafka_io
from genai_apm.settings import config
from genai_apm.stack.kafka_broker import KafkaBroker, SecuredListener
from genai_apm.stack.process import free_port
from genai_apm.traffic import TrafficSpec, traffic
from tests.integration.pki import make_pki

pytestmark = pytest.mark.integration

USER = "genai-apm-test"


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    """(broker, settings whose kafka section reaches it over SASL_SSL only)."""
    root = tmp_path_factory.mktemp("secured-kafka")
    pki = make_pki(root / "pki", key_password=secrets.token_hex(8))
    password = secrets.token_urlsafe(12)
    base = config.load(path=None, environ={})
    stack = base.replace(
        stack={
            "state_dir": str(root / "state"),
            "kafka_port": free_port(),
            "controller_port": free_port(),
            "kafka_heap": "320m",
        }
    ).stack
    listener = SecuredListener(
        port=free_port(),
        keystore_pem=pki.server_pem,
        key_password=pki.key_password,
        scram_users=((USER, password),),
    )
    broker = KafkaBroker(stack, root / "state", secured=listener)
    assert broker.up()
    settings = base.replace(
        kafka={
            "bootstrap_servers": broker.secured_bootstrap,
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_username": USER,
            "sasl_password": password,
            "ssl_ca_file": str(pki.ca_pem),
            "ssl_check_hostname": True,
            "startup_mode": "earliest-offset",
            "partitions": 1,
        },
        stack={"state_dir": str(root / "state")},
        flink={"parallelism": 1},
    )
    yield broker, settings
    broker.down()


def test_kafka_python_round_trip_over_sasl_ssl(secured, unique):
    _, s = secured
    topic = f"sec.{unique}.roundtrip"
    kafka_io.ensure_topics(s.kafka, [topic], partitions=1)
    events = [{"n": i, "text": f"event {i}"} for i in range(25)]
    assert kafka_io.produce_json(s.kafka, topic, events) == len(events)
    assert kafka_io.consume_json(s.kafka, topic, until_end=True) == events


def test_wrong_password_is_one_clear_error(secured):
    _, s = secured
    wrong = s.replace(kafka={"sasl_password": "not-" + s.kafka.sasl_password})
    with pytest.raises(GenaiApmError) as caught:
        kafka_io.require_topics(wrong.kafka, ["anything"])
    message = str(caught.value)
    assert "\n" not in message
    # the broker's refusal, or (when kafka-python reads the close before the refusal) the
    # closed connection; both name the credentials
    assert "kafka.sasl_password" in message, message
    assert wrong.kafka.sasl_password not in message


def test_untrusted_certificate_is_one_clear_error(secured):
    _, s = secured
    # no CA file: the system trust store does not know our test CA
    untrusted = s.replace(kafka={"ssl_ca_file": ""})
    with pytest.raises(GenaiApmError) as caught:
        kafka_io.require_topics(untrusted.kafka, ["anything"])
    message = str(caught.value)
    assert "\n" not in message
    assert "certificate" in message.lower(), message


def test_flink_ingest_job_reads_and_writes_over_sasl_ssl(secured, unique):
    """The ingest job, bounded, through connectors/kafka.py's options only; user ids hashed."""
    from genai_apm.jobs import ingest

    _, base = secured
    salt = secrets.token_hex(16)
    source = f"sec.{unique}.native"
    s = base.replace(
        ingest={"sources": (f"{source}=native",)},
        topics={
            "invocations": f"sec.{unique}.invocations",
            "spans": f"sec.{unique}.spans",
            "deadletter": f"sec.{unique}.deadletter",
            "pipeline": f"sec.{unique}.pipeline",
        },
        kafka={"consumer_group": f"sec-{unique}"},
        privacy={"hash_user_ids": True, "user_id_salt": salt},
    )
    events = [
        r.event
        for r in traffic(TrafficSpec(count=60, agent_share=0.0, rate_per_s=20, seed=11))
        if r.contract == "InvocationEvent"
    ]
    assert any(e.get("user_id") for e in events)
    out = s.topics
    kafka_io.ensure_topics(
        s.kafka, [source, out.invocations, out.spans, out.deadletter, out.pipeline], 1
    )
    kafka_io.produce_raw(s.kafka, source, [json.dumps(e).encode() for e in events])

    ingest.run(s, bounded=True, wait=True)

    got = kafka_io.consume_json(s.kafka, out.invocations, until_end=True)
    assert sorted(e["request_id"] for e in got) == sorted(e["request_id"] for e in events)
    want = {e["request_id"]: e for e in events}
    for row in got:
        original = want[row["request_id"]]
        assert row["model_id"] == original["model_id"]
        assert row["input_tokens"] == original["input_tokens"]
        user = original.get("user_id")
        # the keyed hash computed here, independently of genai_apm.privacy and of Flink
        key = hmac.new(salt.encode(), (user or "").encode(), hashlib.sha256).hexdigest()
        assert row["user_id"] == (None if user is None else "uid:" + key)
    assert kafka_io.consume_json(s.kafka, out.deadletter, until_end=True) == []
