from __future__ import annotations

import pytest

from genai_apm.errors import GenaiApmError
from genai_apm.settings import config


def test_defaults_without_file_or_env():
    s = config.load(path=None, environ={})
    assert s.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert s.latency.percentiles == (0.5, 0.9, 0.95, 0.99)


def test_file_then_env_precedence(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(
        '[kafka]\nbootstrap_servers = "file:9092"\npartitions = 4\n'
        "[latency]\npercentiles = [0.5, 0.95]\n"
    )
    s = config.load(path, environ={"GENAI_APM_KAFKA_BOOTSTRAP_SERVERS": "env:9092"})
    assert s.kafka.bootstrap_servers == "env:9092"  # env beats file
    assert s.kafka.partitions == 4  # file beats default
    assert s.latency.percentiles == (0.5, 0.95)


def test_config_path_from_env(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[flink]\nparallelism = 2\n")
    s = config.load(environ={"GENAI_APM_CONFIG": str(path)})
    assert s.flink.parallelism == 2


def test_env_values_are_coerced_to_field_types():
    s = config.load(
        environ={"GENAI_APM_FLINK_PARALLELISM": "2", "GENAI_APM_LATENCY_PERCENTILES": "0.5, 0.999"}
    )
    assert s.flink.parallelism == 2
    assert s.latency.percentiles == (0.5, 0.999)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"GENAI_APM_KAFKA_BOOTSTRAP": "x"}, "unknown key kafka.bootstrap"),
        ({"GENAI_APM_NOPE_X": "1"}, "names no config section"),
        ({"GENAI_APM_FLINK_PARALLELISM": "two"}, "flink.parallelism: 'two' is not a valid int"),
        ({"GENAI_APM_LATENCY_PERCENTILES": "0.5,x"}, "not a valid float"),
        # checked with the settings, not when a job or the exporter first reads them
        ({"GENAI_APM_FLINK_WATERMARK_EMIT": "sometimes"}, "flink.watermark_emit must be on-"),
        ({"GENAI_APM_CLOUDWATCH_OUTPUT": "x"}, "cloudwatch.output must be api or emf"),
        ({"GENAI_APM_CLOUDWATCH_MAX_ATTEMPTS": "0"}, "cloudwatch.max_attempts must be at least 1"),
        ({"GENAI_APM_LATENCY_HISTOGRAM_RELATIVE_ERROR": "1"}, "must be in \\(0, 1\\), not 1.0"),
        ({"GENAI_APM_LATENCY_PERCENTILES": "0.5,1.5"}, "latency.percentiles: 1.5 is not in"),
        ({"GENAI_APM_AGENTS_PERCENTILES": "-0.1"}, "agents.percentiles: -0.1 is not in"),
        ({"GENAI_APM_LATENCY_TUMBLING_MINUTES": "0"}, "latency: window sizes must be positive"),
        ({"GENAI_APM_LATENCY_SLIDING_HOP_MINUTES": "2"}, "hop_minutes must divide sliding"),
        ({"GENAI_APM_ERRORS_SLIDING_MINUTES": "-5"}, "errors: window sizes must be positive"),
    ],
)
def test_bad_env_is_one_clear_error(environ, message):
    with pytest.raises(GenaiApmError, match=message):
        config.load(environ=environ)


def test_bad_files_are_clear_errors(tmp_path):
    with pytest.raises(GenaiApmError, match="does not exist"):
        config.load(tmp_path / "missing.toml", environ={})
    broken = tmp_path / "broken.toml"
    broken.write_text("[kafka\n")
    with pytest.raises(GenaiApmError, match="unreadable"):
        config.load(broken, environ={})
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[kafka]\nbootstrap_servers = 9\nbogus = 1\n")
    with pytest.raises(GenaiApmError, match="unknown key kafka.bogus"):
        config.load(unknown, environ={})


def test_settings_are_frozen():
    s = config.load(environ={})
    with pytest.raises(AttributeError):
        s.kafka.bootstrap_servers = "x"  # type: ignore[misc]


def test_redacted_masks_secrets_only_when_set():
    s = config.load(environ={"GENAI_APM_KAFKA_SASL_PASSWORD": "hunter2"})
    shown = s.redacted()
    assert shown["kafka"]["sasl_password"] == "***"
    assert "hunter2" not in repr(shown)
    assert config.load(environ={}).redacted()["kafka"]["sasl_password"] == ""


def test_example_config_file_loads_and_matches_the_defaults():
    """genai-apm.example.toml documents every section; it must stay loadable and honest."""
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "genai-apm.example.toml"
    loaded = config.load(example, environ={})
    defaults = config.load(path=None, environ={})
    for section, values in loaded.redacted().items():
        for key, value in values.items():
            assert value == defaults.redacted()[section][key], (section, key)
