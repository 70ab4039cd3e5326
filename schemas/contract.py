"""The vocabulary every contract is written in; generators in this package turn it into SQL etc.

The lexical rules below are shared by every generated form (Flink SQL, the Python reference
validator, JSON Schema), so a value means the same thing wherever it is checked. Regexes are
unanchored and use only syntax common to Java, Python and ECMA-262; each user anchors them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Kind(Enum):
    STRING = "string"
    LONG = "long"
    DOUBLE = "double"
    BOOLEAN = "boolean"
    # epoch milliseconds (number) or an RFC 3339 string with a zone offset
    TIMESTAMP = "timestamp"


# The field every contract may carry to say which version of it a record was written for.
VERSION_FIELD = "schema_version"

# A long is a whole number of at most 18 digits, so it always fits a signed 64-bit integer.
LONG_DIGITS = 18
LONG_MAX = 10**LONG_DIGITS - 1
LONG_TEXT = f"-?[0-9]{{1,{LONG_DIGITS}}}"
# A double is written as a decimal number; "NaN", "Infinity", " 5" or "0x10" are not numbers,
# although Java's Double.parseDouble (behind Flink's CAST) would take them.
DOUBLE_TEXT = "-?[0-9]+([.][0-9]+)?([eE][+-]?[0-9]+)?"
# Up to 15 digits are epoch milliseconds (enough for year 9999); anything else must be RFC 3339.
EPOCH_TEXT = "[0-9]{1,15}"
# RFC 3339 date-time with a mandatory offset and a fraction of any width. Offsets stop at
# +-18:00 because Java's ZoneOffset does (real zones stay within +-14:00).
RFC3339_TEXT = (
    "[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]([.][0-9]+)?"
    "([Zz]|[+-](0[0-9]|1[0-7]):[0-5][0-9]|[+-]18:00)"
)
# Instants Flink, Arrow and Python's datetime can all hold: 0001-01-01T00:00:00.000Z to
# 9999-12-31T23:59:59.999Z (Flink's TO_TIMESTAMP_LTZ wraps year 10000 round to year 0).
MIN_TIMESTAMP_MS = -62_135_596_800_000
MAX_TIMESTAMP_MS = 253_402_300_799_999


@dataclass(frozen=True)
class Field:
    name: str
    kind: Kind
    required: bool = False
    doc: str = ""
    minimum: float | None = None
    # closed vocabularies (e.g. status) are checked in the pipeline, not just documented
    allowed: tuple[str, ...] = ()
    # the OpenTelemetry attribute this field carries, where the conventions define one
    otel: str = ""


@dataclass(frozen=True)
class Contract:
    name: str
    version: int
    fields: tuple[Field, ...]
    doc: str = ""

    def field(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def version_field(self) -> Field | None:
        """The record's own version, when the contract carries one as a long."""
        found = [f for f in self.fields if f.name == VERSION_FIELD and f.kind is Kind.LONG]
        return found[0] if found else None

    @property
    def slug(self) -> str:
        """``InvocationEvent`` -> ``invocation-event``: the stem of generated file names."""
        return "".join("-" + c.lower() if c.isupper() else c for c in self.name).lstrip("-")
