"""Managed Flink runtime properties -> settings: groups map onto sections, with the same
types, precedence and errors as every other source."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genai_apm.errors import GenaiApmError
from genai_apm.settings import app_properties, config
from genai_apm.settings.config import Settings


def _write(tmp_path, groups) -> str:
    path = tmp_path / "application_properties.json"
    path.write_text(json.dumps(groups), encoding="utf-8")
    return str(path)


GROUPS = [
    {
        "PropertyGroupId": "kinesis.analytics.flink.run.options",
        "PropertyMap": {"python": "main.py", "jarfile": "lib/genai-apm.jar"},
    },
    {
        "PropertyGroupId": "genai_apm.kafka",
        "PropertyMap": {
            "bootstrap_servers": "boot-abc.kafka-serverless.us-east-1.amazonaws.com:9098",
            "security_protocol": "SASL_SSL",
            "partitions": "6",
        },
    },
    {
        "PropertyGroupId": "genai_apm.output",
        "PropertyMap": {"tables_path": "s3://apm-data/tables"},
    },
    {
        "PropertyGroupId": "genai_apm.latency",
        "PropertyMap": {"percentiles": "0.5,0.99"},
    },
    {
        "PropertyGroupId": "genai_apm.cloudwatch",
        "PropertyMap": {"high_resolution": "true"},
    },
]


def test_groups_map_onto_sections_with_their_types(tmp_path):
    path = _write(tmp_path, GROUPS)
    s = config.load(environ={app_properties.ENV_VAR: path})
    assert s.kafka.bootstrap_servers == "boot-abc.kafka-serverless.us-east-1.amazonaws.com:9098"
    assert s.kafka.security_protocol == "SASL_SSL"
    assert s.kafka.partitions == 6
    assert s.output.tables_path == "s3://apm-data/tables"
    assert s.latency.percentiles == (0.5, 0.99)
    assert s.cloudwatch.high_resolution is True
    # untouched sections keep their defaults
    assert s.topics == Settings().topics


def test_environment_overrides_properties_which_override_the_file(tmp_path):
    toml = tmp_path / "genai-apm.toml"
    toml.write_text('[kafka]\npartitions = 3\nconsumer_group = "from-toml"\n', encoding="utf-8")
    path = _write(tmp_path, GROUPS)
    environ = {app_properties.ENV_VAR: path, "GENAI_APM_KAFKA_SECURITY_PROTOCOL": "SSL"}
    s = config.load(toml, environ=environ)
    assert s.kafka.partitions == 6  # properties beat the file
    assert s.kafka.consumer_group == "from-toml"  # the file still counts where they are silent
    assert s.kafka.security_protocol == "SSL"  # the environment beats both


def test_the_managed_flink_file_is_read_when_present(tmp_path, monkeypatch):
    path = _write(tmp_path, GROUPS)
    monkeypatch.setattr(app_properties, "MANAGED_FLINK_PATH", tmp_path / "absent.json")
    assert config.load(environ={}).kafka.partitions == Settings().kafka.partitions
    monkeypatch.setattr(app_properties, "MANAGED_FLINK_PATH", Path(path))
    assert config.load(environ={}).kafka.partitions == 6


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        ([{"PropertyGroupId": "genai_apm.kafak", "PropertyMap": {}}], "unknown section"),
        (
            [{"PropertyGroupId": "genai_apm.kafka", "PropertyMap": {"partition": "2"}}],
            "unknown key kafka.partition",
        ),
        (
            [{"PropertyGroupId": "genai_apm.kafka", "PropertyMap": {"partitions": "two"}}],
            "kafka.partitions",
        ),
        ({"genai_apm.kafka": {}}, "JSON list"),
        ([{"PropertyMap": {}}], "PropertyGroupId"),
        ([{"PropertyGroupId": "genai_apm.kafka", "PropertyMap": {"partitions": 2}}], "strings"),
        (
            [
                {"PropertyGroupId": "genai_apm.kafka", "PropertyMap": {}},
                {"PropertyGroupId": "genai_apm.kafka", "PropertyMap": {}},
            ],
            "twice",
        ),
    ],
)
def test_mistakes_are_one_clear_error(tmp_path, groups, message):
    path = _write(tmp_path, groups)
    with pytest.raises(GenaiApmError, match=message):
        config.load(environ={app_properties.ENV_VAR: path})


def test_a_named_file_that_is_missing_or_broken_is_an_error(tmp_path):
    with pytest.raises(GenaiApmError, match="do not exist"):
        config.load(environ={app_properties.ENV_VAR: str(tmp_path / "nope.json")})
    broken = tmp_path / "broken.json"
    broken.write_text("[{", encoding="utf-8")
    with pytest.raises(GenaiApmError, match="unreadable"):
        config.load(environ={app_properties.ENV_VAR: str(broken)})


def test_property_groups_round_trip_through_the_loader(tmp_path):
    wanted = {
        "kafka": {"partitions": 4, "sasl_mechanism": "AWS_MSK_IAM"},
        "ingest": {"sources": ("a=bedrock", "b=otlp-json")},
        "anomalies": {"outliers": False, "threshold": 4.5},
    }
    path = _write(tmp_path, app_properties.property_groups(wanted))
    s = config.load(environ={app_properties.ENV_VAR: path})
    assert s == Settings().replace(**wanted)


def test_variables_that_locate_files_are_not_settings(tmp_path):
    # GENAI_APM_HOME (genai_apm.home) is set in the Managed Flink package and the k8s image
    environ = {"GENAI_APM_HOME": str(tmp_path), app_properties.ENV_VAR: _write(tmp_path, GROUPS)}
    assert config.load(environ=environ).kafka.partitions == 6
