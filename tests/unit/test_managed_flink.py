"""The Managed Flink package: the paths its run options name exist, the package is complete
and self-contained, and main.py runs the job its properties name (or says why not)."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import pytest

from genai_apm.deploy import aws_templates, managed_flink
from genai_apm.errors import GenaiApmError
from genai_apm.jobs import JOBS
from genai_apm.settings import app_properties


@pytest.fixture
def package(tmp_path):
    jar = tmp_path / "connectors.jar"
    jar.write_bytes(b"PK\x05\x06" + b"\0" * 18)  # an empty zip stands in for Maven's jar
    out = managed_flink.build(tmp_path / "a.zip", jar=jar)
    return out, jar


def test_run_options_point_at_files_in_the_zip(package):
    out, _ = package
    names = set(zipfile.ZipFile(out).namelist())
    assert aws_templates.PACKAGE_MAIN in names
    assert aws_templates.PACKAGE_JAR in names
    assert any(n.startswith(aws_templates.PACKAGE_PYTHON + "genai_apm/") for n in names)
    # the jar sits where genai_apm.home looks for the flink jar group under GENAI_APM_HOME
    assert aws_templates.PACKAGE_JAR.startswith(".cache/jars/flink/")


def test_every_installed_module_and_data_file_is_packaged(package):
    from genai_apm import jobs

    out, _ = package
    names = set(zipfile.ZipFile(out).namelist())
    for module in jobs.JOBS.values():
        # a job is a module, or a package of stages that `python -m` runs by its __main__
        path = f"python/{module.replace('.', '/')}"
        assert f"{path}.py" in names or f"{path}/__main__.py" in names, module
    root = managed_flink.ROOT
    for source, target in (
        (root / "jobs", "genai_apm/jobs"),
        (root / "jobs" / "anomalies", "genai_apm/jobs/anomalies"),
        (root / "connectors", "genai_apm/connectors"),
        (root / "genai_apm" / "adapters", "genai_apm/adapters"),
    ):
        for path in source.glob("*.py"):
            assert f"python/{target}/{path.name}" in names
    assert "python/genai_apm/data/pricing.toml" in names
    json_dir = root / "schemas" / "json"
    for path in json_dir.glob("*.json"):
        assert f"python/genai_apm/schemas/json/{path.name}" in names
    assert not any("__pycache__" in n for n in names)


def test_the_zip_is_reproducible(tmp_path, package):
    out, jar = package
    again = managed_flink.build(tmp_path / "b.zip", jar=jar)
    assert out.read_bytes() == again.read_bytes()


def test_a_missing_jar_is_one_clear_error(tmp_path):
    with pytest.raises(GenaiApmError, match="make package"):
        managed_flink.build(tmp_path / "x.zip", jar=tmp_path / "absent.jar")


def _run_main(tmp_path, package, groups):
    out, _ = package
    unpacked = tmp_path / "app"
    zipfile.ZipFile(out).extractall(unpacked)
    props = tmp_path / "application_properties.json"
    props.write_text(json.dumps(groups), encoding="utf-8")
    # -S: no site-packages, so only the zip's own python/ can provide genai_apm
    return subprocess.run(
        [sys.executable, "-S", str(unpacked / "main.py")],
        env={app_properties.ENV_VAR: str(props)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_main_names_an_unknown_job_in_one_line(tmp_path, package):
    result = _run_main(
        tmp_path, package, [{"PropertyGroupId": "genai_apm", "PropertyMap": {"job": "nope"}}]
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'application_properties.json'}: unknown job 'nope' "
        f"(known: {', '.join(JOBS)})"
    ]


def test_main_without_a_job_group_says_so(tmp_path, package):
    result = _run_main(
        tmp_path, package, [{"PropertyGroupId": "genai_apm.kafka", "PropertyMap": {}}]
    )
    assert result.returncode == 1
    assert "no property group genai_apm with a key job" in result.stderr
    assert "Traceback" not in result.stderr
