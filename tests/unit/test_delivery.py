"""Kafka sink delivery options: exactly-once by default, transactional ids unique per job, sink
and topic, a transaction timeout the broker accepts; and the connector itself accepts them."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from genai_apm.connectors.kafka import json_sink_ddl, sink_delivery, upsert_sink_ddl
from genai_apm.errors import GenaiApmError
from genai_apm.settings import config


def options_of(ddl: str) -> dict[str, str]:
    """The WITH options of a generated CREATE TABLE, parsed back."""
    body = ddl.split("WITH (", 1)[1].rsplit(")", 1)[0]
    pairs = [line.strip().rstrip(",") for line in body.splitlines() if "=" in line]
    return {k.strip().strip("'"): v.strip().strip("'") for k, v in (p.split("=", 1) for p in pairs)}


def test_default_is_exactly_once_with_a_transaction_per_job_sink_and_topic():
    s = config.load(path=None, environ={})
    ddl = json_sink_ddl(
        "latency_out",
        "genai.metrics.latency",
        s.kafka,
        [("a", "STRING")],
        delivery=sink_delivery(s.flink, "latency"),
    )
    opts = options_of(ddl)
    assert opts["sink.delivery-guarantee"] == "exactly-once"
    assert (
        opts["sink.transactional-id-prefix"]
        == "genai-apm.latency.latency_out.genai.metrics.latency"
    )
    # within the Kafka broker's default transaction.max.timeout.ms (15 minutes)
    assert int(opts["properties.transaction.timeout.ms"]) <= 15 * 60 * 1000


def test_jobs_writing_the_same_topic_never_share_transactional_ids():
    s = config.load(path=None, environ={})
    ids = {
        options_of(
            json_sink_ddl(
                "deadletter_out",
                s.topics.deadletter,
                s.kafka,
                [("a", "STRING")],
                delivery=sink_delivery(s.flink, job),
            )
        )["sink.transactional-id-prefix"]
        for job in ("ingest", "analytics", "agents", "latency backfill")
    }
    assert len(ids) == 4
    assert "genai-apm.latency-backfill.deadletter_out.genai.deadletter" in ids


def test_at_least_once_writes_no_transactions_and_upsert_sinks_follow_the_setting():
    s = config.load(path=None, environ={"GENAI_APM_FLINK_DELIVERY_GUARANTEE": "at-least-once"})
    delivery = sink_delivery(s.flink, "latency")
    for ddl in (
        json_sink_ddl("t", "topic", s.kafka, [("a", "STRING")], delivery=delivery),
        upsert_sink_ddl(
            "t", "topic", s.kafka, [("a", "STRING")], primary_key=["a"], delivery=delivery
        ),
    ):
        opts = options_of(ddl)
        assert opts["sink.delivery-guarantee"] == "at-least-once"
        assert "sink.transactional-id-prefix" not in opts
    upsert = upsert_sink_ddl(
        "counts",
        "topic",
        s.kafka,
        [("a", "STRING")],
        primary_key=["a"],
        delivery=sink_delivery(config.load(path=None, environ={}).flink, "latency"),
    )
    assert options_of(upsert)["sink.transactional-id-prefix"] == "genai-apm.latency.counts.topic"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"GENAI_APM_FLINK_DELIVERY_GUARANTEE": "twice"}, "is not one of exactly-once"),
        (
            {"GENAI_APM_FLINK_TRANSACTION_TIMEOUT_S": "5"},
            "transaction_timeout_s must exceed flink.checkpoint_interval_s",
        ),
    ],
)
def test_bad_delivery_settings_are_one_clear_error(environ, message):
    with pytest.raises(GenaiApmError, match=message):
        config.load(path=None, environ=environ)


def test_the_kafka_connector_accepts_the_options_it_is_given():
    """The planner builds the sink (so the connector validates its options) without a broker:
    exactly-once without a prefix, or with an unknown guarantee, would fail here."""
    from genai_apm.flink.env import table_env
    from genai_apm.jobs.sinks import Sinks

    s = config.load(path=None, environ={})
    t_env = table_env(s, "delivery check")
    delivery = Sinks(t_env, s, "delivery check", kafka=True, tables_path="/nowhere").delivery
    assert delivery.job == "delivery-check"  # from the job name the sink factory is bound to
    t_env.execute_sql(
        json_sink_ddl("out", "t", s.kafka, [("a", "STRING")], key_fields=["a"], delivery=delivery)
    )
    t_env.execute_sql(
        upsert_sink_ddl(
            "counts",
            "c",
            s.kafka,
            [("a", "STRING"), ("n", "BIGINT")],
            primary_key=["a"],
            delivery=delivery,
        )
    )
    plan = t_env.explain_sql("INSERT INTO `out` VALUES ('x')")
    assert "out" in plan
    t_env.explain_sql("INSERT INTO counts SELECT 'k', COUNT(*) FROM (VALUES (1)) AS v(x)")


def test_state_backend_is_a_setting_and_reaches_the_job_config():
    from genai_apm.flink.env import table_env

    with pytest.raises(GenaiApmError, match="flink.state_backend"):
        config.load(path=None, environ={"GENAI_APM_FLINK_STATE_BACKEND": "memory"})
    s = config.load(path=None, environ={"GENAI_APM_FLINK_STATE_BACKEND": "rocksdb"})
    conf = table_env(s, "backend check").get_config()
    assert conf.get("state.backend.type", "") == "rocksdb"
    assert conf.get("execution.checkpointing.externalized-checkpoint-retention", "") == (
        "RETAIN_ON_CANCELLATION"
    )


def test_runtime_defaults_reach_the_job_config():
    """Object reuse on; streaming jobs checkpoint every flink.checkpoint_interval_s, bounded
    runs every flink.bounded_checkpoint_interval_s; the local TaskManager's memory is set."""
    from genai_apm.flink.env import table_env

    s = config.load(
        path=None,
        environ={
            "GENAI_APM_FLINK_CHECKPOINT_INTERVAL_S": "7",
            "GENAI_APM_FLINK_BOUNDED_CHECKPOINT_INTERVAL_S": "13",
            "GENAI_APM_FLINK_LOCAL_MANAGED_MEMORY": "96m",
        },
    )
    streaming = table_env(s, "streaming check").get_config()
    bounded = table_env(s, "bounded check", bounded=True).get_config()
    for conf in (streaming, bounded):
        assert conf.get("pipeline.object-reuse", "") == "true"
        assert conf.get("taskmanager.memory.managed.size", "") == "96m"
    assert streaming.get("execution.checkpointing.interval", "") == "7 s"
    assert bounded.get("execution.checkpointing.interval", "") == "13 s"


@pytest.mark.parametrize("key", ["CHECKPOINT_INTERVAL_S", "BOUNDED_CHECKPOINT_INTERVAL_S"])
def test_checkpoint_intervals_must_be_positive(key):
    with pytest.raises(GenaiApmError, match="at least 1 second"):
        config.load(path=None, environ={f"GENAI_APM_FLINK_{key}": "0"})


def _kafka_sinks(plan: str) -> Counter:
    """Sink nodes per Kafka table (named *_out) in the optimized plan of a statement set."""
    optimized = plan.split("== Optimized Execution Plan ==")[-1]
    tables = re.findall(r"Sink\(table=\[default_catalog\.default_database\.(\w+_out)\]", optimized)
    return Counter(tables)


def _statement_set(s, job: str):
    """The job's statement set as the runner builds it, planned without a broker (ingest
    reading one topic of each format)."""
    from genai_apm.jobs import load

    if job == "ingest":
        s = s.replace(ingest={"sources": ("a=native", "b=bedrock", "c=otlp-json")})
    _, statements = load(job).plan(s.replace(output={"tables_path": "/nowhere"}))
    return statements


# one test per job, so pytest-xdist plans them on both workers (the `all` job alone takes
# 30-90 s to plan)
DELIVERY_JOBS = ("latency", "errors", "cost", "analytics", "anomalies", "all", "ingest", "agents")


@pytest.mark.parametrize("job", DELIVERY_JOBS)
def test_every_job_writes_each_kafka_table_through_one_sink(job):
    """Two sinks of one exactly-once table share its transactional ids, and the connector
    refuses that at runtime ("Found duplicate transactionalIdPrefix"): each job must feed a
    Kafka table with one INSERT (a UNION ALL), or with inserts the planner merges."""
    s = config.load(path=None, environ={})
    sinks = _kafka_sinks(_statement_set(s, job).explain())
    assert sinks, job
    assert max(sinks.values()) == 1, (job, sinks)
