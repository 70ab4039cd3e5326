"""The vocabulary every contract is written in; generators in this package turn it into SQL etc."""

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

    def field(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)
