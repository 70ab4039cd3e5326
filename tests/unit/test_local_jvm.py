"""The local Flink JVM's options (flink/env._prepare_local_jvm): heap and collector (bounded
runs only) from the settings, a caller's own JVM_ARGS winning, a bad collector refused."""

from __future__ import annotations

import os

import pytest

from genai_apm.errors import GenaiApmError
from genai_apm.flink import env
from genai_apm.settings import config


def _jvm_args(monkeypatch, tmp_path, theirs: str, bounded: bool = True, **flink) -> list[str]:
    monkeypatch.delenv("PYFLINK_GATEWAY_PORT", raising=False)
    # set, not deleted: monkeypatch then restores what the function writes there
    monkeypatch.setenv("JVM_ARGS", theirs or "")
    monkeypatch.setenv("FLINK_LOG_DIR", str(tmp_path))
    monkeypatch.setenv("LOG4J_PROPERTIES", str(tmp_path / "log4j.properties"))
    settings = config.load(path=None, environ={}).replace(
        stack={"state_dir": str(tmp_path)},
        flink={"codesplit_cache": False, **flink},
    )
    env._prepare_local_jvm(settings, bounded=bounded)
    return os.environ["JVM_ARGS"].split()


def test_parallel_collector_by_default_in_bounded_runs(monkeypatch, tmp_path):
    args = _jvm_args(monkeypatch, tmp_path, "")
    assert "-XX:+UseParallelGC" in args and "-Xmx1024m" in args


def test_streaming_keeps_the_jvm_default(monkeypatch, tmp_path):
    args = _jvm_args(monkeypatch, tmp_path, "", bounded=False)
    assert "-Xmx1024m" in args and not [a for a in args if a.startswith("-XX:+Use")]


def test_the_callers_collector_wins(monkeypatch, tmp_path):
    args = _jvm_args(monkeypatch, tmp_path, "-XX:+UseG1GC -Dx=1")
    assert [a for a in args if a.endswith("GC")] == ["-XX:+UseG1GC"]


def test_empty_leaves_the_jvm_default(monkeypatch, tmp_path):
    args = _jvm_args(monkeypatch, tmp_path, "", local_gc="")
    assert not [a for a in args if a.startswith("-XX:+Use")]


def test_unknown_collector_is_refused():
    with pytest.raises(GenaiApmError, match="flink.local_gc"):
        config.load(path=None, environ={}).replace(flink={"local_gc": "Shenandoah!"})
