"""`genai-apm consume` filters and table, and `genai-apm report --alerts-from-kafka`, on the
session's real broker, through the CLI's own entry point."""

from __future__ import annotations

import pytest

from genai_apm import cli
from genai_apm.kafka import io as kafka_io
from tests import report_fixture

pytestmark = pytest.mark.integration


def env_for(settings, monkeypatch, tmp_path) -> None:
    """The CLI loads its own settings: point them at this session's broker and topics."""
    monkeypatch.chdir(tmp_path)  # no ./genai-apm.toml of the checkout
    monkeypatch.delenv("GENAI_APM_CONFIG", raising=False)
    monkeypatch.setenv("GENAI_APM_KAFKA_BOOTSTRAP_SERVERS", settings.kafka.bootstrap_servers)
    monkeypatch.setenv("GENAI_APM_TOPICS_ALERTS", settings.topics.alerts)


def test_consume_filters_and_pretty_prints_a_derived_topic(
    settings, unique, tmp_path, capsys, monkeypatch
):
    env_for(settings, monkeypatch, tmp_path)
    topic = f"it.{unique}.latency-view"
    kafka_io.ensure_topics(settings.kafka, [topic])
    rows = [
        {"window_start": f"2026-01-01T00:0{i}:00Z", "model_id": m, "app_id": a, "requests": n,
         "latency_hist": {"400": n}}
        for i, (m, a, n) in enumerate(
            [("m1", "chat", 10), ("m1", "chat", 1234), ("m1", "*", 7), ("m2", "chat", 9)]
        )
    ]  # fmt: skip
    kafka_io.produce_json(settings.kafka, topic, rows)
    kafka_io.produce_raw(settings.kafka, topic, [b"not json"])

    argv = ["consume", topic, "--idle-timeout", "3", "--model", "m1", "--app", "chat"]
    assert cli.main([*argv, "--since", "2026-01-01T00:01Z", "--pretty"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].split() == ["window_start", "model_id", "app_id", "requests"]  # no map
    assert lines[2].split() == ["2026-01-01T00:01:00Z", "m1", "chat", "1,234"]
    assert lines[3] == "(1 row)"
    assert "-- 1 record(s)" in err

    assert cli.main([*argv]) == 0  # JSON lines, both m1/chat windows, maps included
    out, _ = capsys.readouterr()
    assert [line.count('"latency_hist"') for line in out.splitlines()] == [1, 1]


def test_report_reads_alerts_from_kafka(settings, unique, tmp_path, capsys, monkeypatch):
    settings = settings.replace(topics={"alerts": f"it.{unique}.alerts"})
    env_for(settings, monkeypatch, tmp_path)
    kafka_io.ensure_topics(settings.kafka, [settings.topics.alerts])
    kafka_io.produce_json(settings.kafka, settings.topics.alerts, report_fixture.alerts())
    tables = report_fixture.write_tables(tmp_path / "t", tables=("latency_1m",))
    out = tmp_path / "r.html"
    argv = ["report", "--tables-path", str(tables), "--out", str(out), "--alerts-from-kafka"]
    assert cli.main(argv) == 0
    # errors, cost, anomalies, sessions, SLOs and quota have no table; the alerts panel has data
    assert "6 panels without data" in capsys.readouterr().out
    page = out.read_text()
    assert 'data-series="throttle-storm model-a" data-state="ALARM"' in page
    assert 'data-series="error-rate *" data-state="ALARM"' in page
