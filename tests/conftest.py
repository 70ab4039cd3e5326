"""Shared fixtures. Integration servers start once per session; nothing skips quietly."""

from __future__ import annotations

import uuid

import pytest

from genai_apm import config


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def base_settings(tmp_path) -> config.Settings:
    """Defaults only: no config file or GENAI_APM_* variables of the developer leak in."""
    return config.load(path=None, environ={}).replace(stack={"state_dir": str(tmp_path / "state")})
