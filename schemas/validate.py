"""The contract checks in plain Python: the same rules and messages as the generated Flink SQL.

The SQL is what runs in production; this is its reference, for producers, tools and tests
(tests/unit/test_validate_vs_flink.py compares the two on hundreds of payloads). It reads a
record the way Flink does: JSON is parsed as Jackson parses it (see ``parse``) and each field
is judged by its text as JSON_VALUE returns it, so a number in quotes counts as a number,
1.5e1 is the long 15 and 1.0 is not a long. Timestamps come out as epoch milliseconds.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Mapping
from datetime import date
from decimal import Decimal

from genai_apm.schemas.contract import (
    DOUBLE_TEXT,
    EPOCH_TEXT,
    LONG_TEXT,
    MAX_TIMESTAMP_MS,
    MIN_TIMESTAMP_MS,
    RFC3339_TEXT,
    Contract,
    Field,
    Kind,
)

NOT_JSON = object()  # what ``parse`` returns for a payload Flink would not read as JSON

# Jackson's default StreamReadConstraints, which Flink's JSON functions inherit
MAX_DEPTH = 1000
MAX_INT_DIGITS = 1000
MAX_FLOAT_CHARS = 1001  # measured on Flink 2.2; exact for literals without leading zeros

_LONG = re.compile(LONG_TEXT)
_DOUBLE = re.compile(DOUBLE_TEXT)
_EPOCH = re.compile(EPOCH_TEXT)
_RFC3339 = re.compile(RFC3339_TEXT)
_FRACTION = re.compile("[.]([0-9]+)")
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")
_NEWER = re.compile(r"[a-z_]+: (-?[0-9]+) is newer than supported v[0-9]+")
_INT_LIMIT = 10**MAX_INT_DIGITS
_EPOCH_DAY = date(1970, 1, 1).toordinal()
_DAY_MS = 86_400_000


# --- reading JSON as Flink does --------------------------------------------------------


def _int(literal: str) -> int:
    if len(literal.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError("number too long")
    return int(literal)


def _float(literal: str) -> Decimal:
    # Decimal keeps the literal as written, as Jackson's BigDecimal does
    if len(literal.lstrip("-")) > MAX_FLOAT_CHARS:
        raise ValueError("number too long")
    return Decimal(literal)


def _no_constant(literal: str):
    raise ValueError(f"{literal} is not JSON")


_DECODER = json.JSONDecoder(parse_int=_int, parse_float=_float, parse_constant=_no_constant)


def _first_value_depth(text: str) -> int:
    """Deepest nesting of the first JSON value in ``text`` (what Jackson reads of it)."""
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_STRINGS.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
        if depth <= 0:
            break
    return deepest


def parse(payload: str | bytes | None) -> object:
    """The payload as Flink reads it, or ``NOT_JSON``.

    Like Jackson: leading JSON whitespace is skipped and anything after the first value is
    ignored ('{"a": 1} junk' is an object); NaN and Infinity are refused; numbers keep their
    literal (as ``Decimal`` when they have a fraction or exponent); at most 1000 levels of
    nesting and 1000-digit numbers. Undecodable UTF-8 bytes become U+FFFD.
    """
    if payload is None:
        return NOT_JSON
    if isinstance(payload, bytes | bytearray):
        payload = bytes(payload).decode("utf-8", errors="replace")
    text = payload.lstrip(" \t\r\n")
    depth = _first_value_depth(text)
    if depth > MAX_DEPTH:
        return NOT_JSON
    # the C scanner recurses once per level; leave room for the caller's own frames
    if sys.getrecursionlimit() < depth + 200:
        sys.setrecursionlimit(depth + 200)
    try:
        value, _end = _DECODER.raw_decode(text)
    except ValueError:
        return NOT_JSON
    return value


def _is_json(value: object) -> bool:
    """Whether json.dumps(value) is JSON Flink reads: finite, not too deep, not too long."""
    pending = [(value, 1)]  # iterative: a recursive walk would outgrow Python's stack first
    while pending:
        item, depth = pending.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return False
        if isinstance(item, Decimal) and not item.is_finite():
            return False
        if isinstance(item, int) and not isinstance(item, bool) and abs(item) >= _INT_LIMIT:
            return False
        if isinstance(item, Mapping | list | tuple):
            if depth > MAX_DEPTH:
                return False
            children = item.values() if isinstance(item, Mapping) else item
            pending.extend((child, depth + 1) for child in children)
    return True


def _is_object(obj: object) -> bool:
    return isinstance(obj, Mapping) and _is_json(obj)


def text(value: object) -> str | None:
    """The field's text as JSON_VALUE gives it: NULL for null, objects and arrays."""
    if value is None or isinstance(value, Mapping | list | tuple):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        # json.dumps writes repr(value); Jackson reads that literal as a BigDecimal
        value = Decimal(repr(value))
    if isinstance(value, Decimal):
        # the same scientific-notation rule as BigDecimal.toString, which has no -0
        return str(value.copy_abs() if value.is_zero() else value)
    return str(value)


# --- typed values ------------------------------------------------------------------------


def timestamp_ms(raw: str) -> int | None:
    """Epoch milliseconds for up to 15 digits or an RFC 3339 date-time, else None."""
    if _EPOCH.fullmatch(raw):
        ms = int(raw)
        return ms if ms <= MAX_TIMESTAMP_MS else None
    if not _RFC3339.fullmatch(raw):
        return None
    try:
        day = date(int(raw[0:4]), int(raw[5:7]), int(raw[8:10]))
    except ValueError:  # 2026-02-30, year 0
        return None
    seconds = int(raw[11:13]) * 3600 + int(raw[14:16]) * 60 + int(raw[17:19])
    # the fraction's first three digits, truncated; the rest is the zone (Z or +-HH:MM)
    fraction = _FRACTION.match(raw, 19)
    millis = int(fraction.group(1)[:3].ljust(3, "0")) if fraction else 0
    zone = raw[fraction.end() if fraction else 19 :]
    offset_s = 0
    if zone[0] in "+-":
        offset_s = (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60) * (1 if zone[0] == "+" else -1)
    ms = (day.toordinal() - _EPOCH_DAY) * _DAY_MS + (seconds - offset_s) * 1000 + millis
    return ms if MIN_TIMESTAMP_MS <= ms <= MAX_TIMESTAMP_MS else None


def convert(kind: Kind, raw: str | None) -> object:
    """The typed value of a field's text, as the generated SQL's ``typed`` computes it."""
    if raw is None:
        return None
    match kind:
        case Kind.STRING:
            return raw
        case Kind.LONG:
            return int(raw) if _LONG.fullmatch(raw) else None
        case Kind.DOUBLE:
            return float(raw) if _DOUBLE.fullmatch(raw) else None
        case Kind.BOOLEAN:
            return {"true": True, "false": False}.get(raw.lower())
        case Kind.TIMESTAMP:
            return timestamp_ms(raw)
    raise AssertionError(kind)


def value(field: Field, obj: object) -> object:
    """The field's typed value in a record (timestamps as epoch ms); None if unusable."""
    if not _is_object(obj):
        return None
    return convert(field.kind, text(obj.get(field.name)))


def record(contract: Contract, obj: object) -> dict[str, object]:
    """Every field's typed value, in contract order (the row the pipeline would emit)."""
    if not _is_object(obj):
        return dict.fromkeys(contract.names)
    return {f.name: convert(f.kind, text(obj.get(f.name))) for f in contract.fields}


# --- checks ------------------------------------------------------------------------------


def field_problem(field: Field, raw: str | None) -> str | None:
    """The first rule the field's text breaks, worded as the SQL words it."""
    typed = convert(field.kind, raw)
    if field.required and raw is None:
        return f"{field.name}: required"
    if field.kind is not Kind.STRING and raw is not None and typed is None:
        return f"{field.name}: not a valid {field.kind.value}"
    if field.kind is Kind.DOUBLE and typed is not None and math.isinf(typed):
        return f"{field.name}: not finite"
    if field.minimum is not None and typed is not None and typed < field.minimum:
        return f"{field.name}: below {field.minimum:g}"
    if field.allowed and raw is not None and raw not in field.allowed:
        return f"{field.name}: not one of {'|'.join(field.allowed)}"
    return None


def problems(contract: Contract, obj: object) -> list[str]:
    """Every way ``obj`` breaks the contract, in field order; empty when it honours it.

    ``obj`` is a parsed record (``parse``'s result, or a dict as json.dumps would send it).
    """
    if not _is_object(obj):
        return ["not a JSON object"]
    version_field = contract.version_field
    if version_field is not None:
        version = value(version_field, obj)
        if version is not None and version > contract.version:
            # a later version may rename or retype fields: this version's rules do not apply
            return [f"{version_field.name}: {version} is newer than supported v{contract.version}"]
    found = (field_problem(f, text(obj.get(f.name))) for f in contract.fields)
    return [p for p in found if p is not None]


def reason(contract: Contract, obj: object) -> str | None:
    """The dead-letter reason the pipeline would give ``obj``, or None if it is accepted."""
    return "; ".join(problems(contract, obj)) or None


def newer_version(reason: str | None) -> int | None:
    """The version a record was refused for being newer than, from its dead-letter reason.

    Replay tooling uses it to pick the records a newly deployed job can now read.
    """
    found = _NEWER.fullmatch(reason or "")
    return int(found.group(1)) if found else None
