"""Bad input to the CLI: one clear line on stderr and a non-zero exit, no traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from genai_apm.stack.process import free_port


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    base = {"PATH": "/usr/bin:/bin", "HOME": "/tmp"}
    return subprocess.run(
        [sys.executable, "-m", "genai_apm.cli", *args],
        env=base | (env or {}),
        capture_output=True,
        text=True,
        timeout=60,
    )


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.returncode != 0
    assert result.stderr.startswith("genai-apm: error: "), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr


def test_unknown_job():
    assert_one_line_error(run_cli("submit", "nope"), "unknown job 'nope'", "latency")


def test_unreadable_config(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("this is = = not toml")
    assert_one_line_error(run_cli("--config", str(bad), "config"), "unreadable")


def test_bad_env_value():
    result = run_cli("config", env={"GENAI_APM_FLINK_PARALLELISM": "lots"})
    assert_one_line_error(result, "flink.parallelism")


@pytest.mark.parametrize(
    "command", [["consume", "t"], ["submit", "latency"], ["generate", "--count", "1"]]
)
def test_broker_down(command):
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    result = run_cli(
        *command,
        env={
            "GENAI_APM_KAFKA_BOOTSTRAP_SERVERS": address,
            "GENAI_APM_KAFKA_CONNECT_TIMEOUT_S": "1.5",
        },
    )
    assert_one_line_error(result, f"cannot reach Kafka at {address}")


def test_no_cluster_for_jobs():
    address = f"127.0.0.1:{free_port()}"
    assert_one_line_error(run_cli("jobs", "--cluster", address), "no Flink cluster answers")


def test_config_prints_effective_settings_with_secrets_masked():
    result = run_cli("config", env={"GENAI_APM_KAFKA_SASL_PASSWORD": "s3cret"})
    assert result.returncode == 0
    assert "s3cret" not in result.stdout
    assert 'sasl_password = "***"' in result.stdout


def test_help_on_every_command():
    import argparse

    from genai_apm.cli.parser import parser

    p = parser()
    (commands,) = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
    summaries = {c.dest: c.help for c in commands._choices_actions}
    assert {"report", "consume", "demo", "query"} <= set(commands.choices)
    for name, sub in commands.choices.items():
        assert summaries[name], f"{name} has no summary in `genai-apm --help`"
        undocumented = [
            a.dest for a in sub._actions if not a.help and not isinstance(a, argparse._HelpAction)
        ]
        assert undocumented == [], f"genai-apm {name}: arguments without help"
    for name in ("report", "consume", "generate"):  # and --help itself works
        result = run_cli(name, "--help")
        assert result.returncode == 0 and "usage: genai-apm " + name in result.stdout


def test_report_without_tables_is_one_line(tmp_path):
    assert_one_line_error(
        run_cli("report", "--tables-path", str(tmp_path), "--out", str(tmp_path / "r.html")),
        f"no Parquet tables under {tmp_path}",
    )
    assert not (tmp_path / "r.html").exists()


def test_report_writes_the_dashboard_and_says_where(tmp_path):
    from tests import report_fixture

    report_fixture.write_tables(tmp_path / "t", tables=("latency_1m", "errors_1m"))
    out = tmp_path / "out" / "r.html"
    result = run_cli("report", "--tables-path", str(tmp_path / "t"), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"report: {out} (")
    assert (
        "6 panels without data" in result.stdout
    )  # cost, SLOs, quota, alerts, anomalies, sessions
    assert out.read_text().startswith("<!DOCTYPE html>")


def test_bad_since_is_one_line(tmp_path):
    assert_one_line_error(
        run_cli("consume", "t", "--since", "last tuesday"), "--since 'last tuesday'"
    )


def test_replay_missing_path():
    assert_one_line_error(
        run_cli("replay", "/nonexistent/x.jsonl", "--format", "native"), "does not exist"
    )


def test_generate_bad_numbers_are_one_line():
    result = run_cli("generate", "--count", "-5", "--to", "file", "--out", "/nonexistent/x")
    assert_one_line_error(result, "generate: --count must not be negative")


def test_backfill_unknown_job(tmp_path):
    result = run_cli("backfill", "ingest", "--input", str(tmp_path), "--output", str(tmp_path))
    assert_one_line_error(result, "backfill supports: latency, errors, cost, slo, analytics")


def test_backfill_takes_every_analytics_job(tmp_path):
    """Every job but ingest is accepted: each gets as far as reading its input."""
    from genai_apm.jobs import BACKFILL_JOBS

    assert set(BACKFILL_JOBS) == {
        "latency",
        "errors",
        "cost",
        "slo",
        "analytics",
        "agents",
        "anomalies",
        "all",
    }
    missing = str(tmp_path / "missing")
    for job in ("errors", "agents"):
        result = run_cli("backfill", job, "--input", missing, "--output", str(tmp_path))
        assert_one_line_error(result, f"{missing} does not exist")


def test_generate_to_files_in_every_format_round_trips_through_the_adapters(tmp_path):
    import json

    from genai_apm.adapters import decode

    counts = {}
    for fmt in ("native", "bedrock", "otlp-json"):
        out = tmp_path / fmt
        result = run_cli(
            "generate",
            "--count",
            "300",
            "--agents",
            "0.3",
            "--format",
            fmt,
            "--to",
            "file",
            "--out",
            str(out),
            "--incidents",
            "demo",
        )
        assert result.returncode == 0, result.stderr
        labels = json.loads((out / "labels.json").read_text())["labels"]
        assert {label["kind"] for label in labels} >= {"latency_regression", "cost_spike"}
        invocations = 0
        for file in out.glob("*.jsonl"):
            for line in file.read_bytes().splitlines():
                decoded = decode("native" if file.stem in ("invocations", "spans") else fmt, line)
                invocations += sum(
                    c == "InvocationEvent" for c, _ in decoded if file.stem != "spans"
                )
        counts[fmt] = invocations
    # the same seed gives the same calls in every format (OTLP carries them as chat spans)
    assert counts["native"] == counts["bedrock"] == counts["otlp-json"] >= 300


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["generate", "--count", "abc"], "generate: argument --count: invalid int value: 'abc'"),
        (["generate", "--pace", "-3"], "generate: argument --pace: must be positive, not -3"),
        (["generate", "--models", "0"], "generate: argument --models: must be at least 1"),
        (["demo", "--minutes", "-1"], "demo: argument --minutes: must be at least 1"),
        (["query"], "query: the following arguments are required: sql"),
        (["nope"], "invalid choice: 'nope'"),
    ],
)
def test_usage_errors_are_one_line(args, fragment):
    """argparse's own errors too (its default is the usage, then the error)."""
    result = run_cli(*args)
    assert_one_line_error(result, fragment)
    assert result.returncode == 2


def test_incidents_without_traffic_are_one_line(tmp_path):
    result = run_cli(
        "generate", "--incidents", "demo", "--count", "0", "--to", "file", "--out", str(tmp_path)
    )
    assert_one_line_error(result, "generate: --incidents demo: ")
