"""What the rule strings in the settings share (alert and budget rules in rules.py, SLOs and
burn alerts in objectives.py): ``name:field:...`` specs, split on colons, each field checked
with a message that names it, and every error reported as one line naming the setting.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable

from genai_apm.errors import GenaiApmError

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class SpecError(GenaiApmError):
    """One field of one spec is wrong; parse_all adds which setting and entry."""


def number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SpecError(f"{what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise SpecError(f"{what} {text!r} is not finite")
    return value


def name(text: str, what: str = "name") -> str:
    if not NAME.match(text):
        raise SpecError(f"{what} {text!r} must be letters, digits, '.', '_' or '-'")
    return text


def scope(text: str, allowed: Iterable[str]) -> tuple[str, str | None]:
    """``level`` or ``level=key`` -> (level, key or None); keys may contain colons."""
    allowed = tuple(allowed)
    level, sep, key = text.partition("=")
    if level not in allowed:
        raise SpecError(f"scope {level!r} is not one of {', '.join(allowed)}")
    if sep and not key:
        raise SpecError(f"scope {text!r} names no key after '='")
    return level, (key if sep else None)


def parse_all(texts: Iterable[str], parse: Callable, where: str, syntax: str) -> list:
    parsed = []
    for i, text in enumerate(texts):
        try:
            parsed.append(parse(text))
        except SpecError as e:
            raise GenaiApmError(f"config {where}[{i}] {text!r}: {e}; expected {syntax}") from None
    return parsed
