"""Shared fixtures. Integration servers start once per session; nothing skips quietly."""

from __future__ import annotations

import os
import uuid

import pytest
from hypothesis import settings

from genai_apm.settings import config


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def base_settings(tmp_path) -> config.Settings:
    """Defaults only: no config file or GENAI_APM_* variables of the developer leak in."""
    return config.load(path=None, environ={}).replace(stack={"state_dir": str(tmp_path / "state")})


# `make test` runs the property tests on a fixed sequence of examples, so a run is red only when
# the code changed (a random seed once found a new bad input in a fresh-clone run, and CI
# would have gone red on code nobody touched); `make fuzz` sets HYPOTHESIS_PROFILE=fuzz: the
# same tests with far more examples from fresh random seeds, which is where new ones are found
settings.register_profile("repeatable", derandomize=True)
settings.register_profile(
    "fuzz", max_examples=int(os.environ.get("HYPOTHESIS_MAX_EXAMPLES", "2000")), deadline=None
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))
