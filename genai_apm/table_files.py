"""The versioned TOML tables (pricing.toml, quotas.toml): one reader, the same checks and the
same one-line errors for both.

A file is ``format = 1``, a ``version`` string and an array of tables (``[[price]]``,
``[[quota]]``); ``origin`` (the path, or ``package:...`` for the shipped table) starts every
message so a user knows which file to fix.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

from genai_apm.errors import GenaiApmError

FORMAT = 1


def packaged_origin(name: str) -> str:
    return f"package:genai_apm/data/{name}"


def read(path: str | Path | None, name: str, what: str) -> tuple[str, str]:
    """(text, origin) of the file at ``path``; without one, the table shipped as ``name``."""
    if not path:
        return resources.files("genai_apm.data").joinpath(name).read_text("utf-8"), (
            packaged_origin(name)
        )
    try:
        return Path(path).read_text("utf-8"), str(path)
    except FileNotFoundError:
        raise GenaiApmError(f"{what} file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise GenaiApmError(f"{what} file {path} is unreadable: {e}") from None


def parse(text: str, origin: str, what: str, array: str) -> tuple[str, list]:
    """(version, the rows of ``[[array]]``) of a table file, its header checked."""
    where = f"{what} file {origin}"
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise GenaiApmError(f"{where}: not valid TOML: {e}") from None
    if doc.get("format") != FORMAT:
        raise GenaiApmError(f"{where}: format {doc.get('format')!r}, expected {FORMAT}")
    unknown = sorted(doc.keys() - {"format", "version", array})
    if unknown:
        raise GenaiApmError(f"{where}: unknown keys {', '.join(unknown)}")
    version = doc.get("version")
    if not isinstance(version, str) or not version:
        raise GenaiApmError(f"{where}: version must be a non-empty string")
    rows = doc.get(array, [])
    if not isinstance(rows, list):
        raise GenaiApmError(f"{where}: {array} must be an array of [[{array}]] tables")
    return version, rows


def check_row(raw: object, where: str, array: str, required, optional, texts) -> dict:
    """``raw`` as a ``[[array]]`` row: a table with every ``required`` key, no key beyond
    ``required`` and ``optional``, and a non-empty string under each of ``texts``."""
    if not isinstance(raw, dict):
        raise GenaiApmError(f"{where}: a [[{array}]] row must be a table")
    missing = [k for k in required if k not in raw]
    if missing:
        raise GenaiApmError(f"{where}: missing {', '.join(missing)}")
    unknown = sorted(raw.keys() - {*required, *optional})
    if unknown:
        raise GenaiApmError(f"{where}: unknown keys {', '.join(unknown)}")
    for key in texts:
        if not isinstance(raw[key], str) or not raw[key].strip():
            raise GenaiApmError(f"{where}: {key} must be a non-empty string")
    return raw
