"""A datum on its way to CloudWatch and the Kafka record it came from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Source:
    """The record a datum came from: what a dead letter carries."""

    topic: str
    partition: int
    offset: int
    payload: bytes

    @property
    def name(self) -> str:
        return f"{self.topic}/{self.partition}@{self.offset}"


@dataclass
class Pending:
    datum: dict
    source: Source
