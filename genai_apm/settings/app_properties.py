"""Settings from Amazon Managed Service for Apache Flink's runtime properties.

Managed Flink hands a Python job its configuration as ``/etc/flink/application_properties.json``,
written from the application's property groups: a JSON list of
``{"PropertyGroupId": ..., "PropertyMap": {key: value}}``. A group named ``genai_apm.<section>``
carries keys of that settings section, e.g. group ``genai_apm.kafka`` with key
``bootstrap_servers``; values are strings, read exactly like ``GENAI_APM_<SECTION>_<KEY>``
environment variables (lists comma-separated, booleans true/false). Groups without the prefix
belong to the service (``kinesis.analytics.flink.run.options``) and are left alone.

``config.load`` applies them above the TOML file and below environment variables, when the
file exists or ``$GENAI_APM_APP_PROPERTIES`` names one (to try a property file locally).
"""

from __future__ import annotations

import json
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from genai_apm.errors import GenaiApmError

MANAGED_FLINK_PATH = Path("/etc/flink/application_properties.json")
ENV_VAR = "GENAI_APM_APP_PROPERTIES"
GROUP_PREFIX = "genai_apm."
# Managed Flink's own group: which Python file to run, the jar with the connectors
RUN_OPTIONS_GROUP = "kinesis.analytics.flink.run.options"
# which genai-apm job the Managed Flink package's main.py runs: not a settings section
JOB_GROUP = "genai_apm"


def properties_path(environ: typing.Mapping[str, str]) -> Path | None:
    """The property file to read: the one the env var names (it must exist), else Managed
    Flink's when present, else none."""
    if environ.get(ENV_VAR):
        return Path(environ[ENV_VAR])
    return MANAGED_FLINK_PATH if MANAGED_FLINK_PATH.is_file() else None


def overrides(path: Path) -> dict[str, dict[str, str]]:
    """``{section: {key: raw value}}`` from the ``genai_apm.*`` groups of a property file."""
    try:
        groups = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GenaiApmError(f"application properties {path} do not exist") from None
    except (OSError, ValueError) as e:
        raise GenaiApmError(f"application properties {path} are unreadable: {e}") from None
    if not isinstance(groups, list):
        raise GenaiApmError(f"{path}: expected a JSON list of property groups")
    found: dict[str, dict[str, str]] = {}
    for group in groups:
        if not isinstance(group, dict) or not isinstance(group.get("PropertyGroupId"), str):
            raise GenaiApmError(f"{path}: every property group needs a PropertyGroupId")
        name = group["PropertyGroupId"]
        if not name.startswith(GROUP_PREFIX):
            continue
        section = name[len(GROUP_PREFIX) :]
        values = group.get("PropertyMap", {})
        if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
            raise GenaiApmError(f"{path}: group {name}: PropertyMap must map keys to strings")
        if section in found:
            raise GenaiApmError(f"{path}: property group {name} appears twice")
        found[section] = dict(values)
    return found


def job(path: Path) -> str:
    """The job named in the ``genai_apm`` group (key ``job``) of a property file."""
    from genai_apm.jobs import JOBS

    try:
        groups = json.loads(path.read_text(encoding="utf-8"))
        (found,) = [g["PropertyMap"]["job"] for g in groups if g["PropertyGroupId"] == JOB_GROUP]
    except (OSError, ValueError, KeyError, TypeError):
        raise GenaiApmError(
            f"{path}: no property group {JOB_GROUP} with a key job (one of {', '.join(JOBS)})"
        ) from None
    if found not in JOBS:
        raise GenaiApmError(f"{path}: unknown job {found!r} (known: {', '.join(JOBS)})")
    return found


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return ",".join(_text(v) for v in value)
    return str(value)


def property_groups(sections: Mapping[str, Mapping[str, Any]]) -> list[dict]:
    """The inverse: settings values as property groups (what a template or package writes)."""
    return [
        {
            "PropertyGroupId": GROUP_PREFIX + section,
            "PropertyMap": {key: _text(value) for key, value in values.items()},
        }
        for section, values in sections.items()
    ]
