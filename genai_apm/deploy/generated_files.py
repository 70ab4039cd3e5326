"""Files the code generates and the repo commits (schemas, Athena DDL, infra/aws): compare a
fresh generation with the checkout, or write what differs. One copy for every generator."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def stale(files: Mapping[Path, str], root: Path) -> list[Path]:
    """Paths (relative to ``root``) that are missing or differ from ``files``."""
    return [
        path
        for path, text in files.items()
        if not (root / path).is_file() or (root / path).read_text(encoding="utf-8") != text
    ]


def write(files: Mapping[Path, str], root: Path) -> list[Path]:
    """Write the stale ones; the paths written."""
    written = stale(files, root)
    for path in written:
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(files[path], encoding="utf-8")
    return written
