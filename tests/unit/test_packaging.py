"""pyproject lists packages by hand (jobs/, schemas/, connectors/ map under genai_apm);
every package directory must be in that list or a wheel would silently leave it out."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_package_directory_is_listed():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapping = config["package-dir"]
    listed = set(config["packages"])
    found = set()
    for name, directory in mapping.items():
        base = ROOT / directory
        for init in base.rglob("__init__.py"):
            relative = init.parent.relative_to(base)
            found.add(".".join([name, *relative.parts]))
    # sub-packages of a mapped package that is itself mapped elsewhere are counted once
    assert found - listed == set(), "add these to [tool.setuptools] packages"
    # data folders are listed as packages (no __init__.py) so setuptools does not warn
    # "Package would be ignored"; each must exist and have its own package-data entry
    data = {name for name in listed - found if name in config["package-data"]}
    assert listed - found - data == set(), "these listed packages do not exist"
    for name in data:
        parent, _, leaf = name.rpartition(".")
        assert (ROOT / mapping[parent] / leaf).is_dir(), f"{name}: no such data folder"
