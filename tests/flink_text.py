"""Flink's printed text of collection values (``TableResult.collect()`` of a MAP, MULTISET or
ARRAY cast to STRING) back as Python values, for tests that compare them with Python."""

from __future__ import annotations

from collections.abc import Callable


def counts(text: str | None, key: Callable[[str], object] = int) -> dict | None:
    """A MAP or MULTISET, '{k=n, ...}', as {key(k): n}; NULL as None."""
    if text is None:
        return None
    items = [item.split("=") for item in text.strip("{}").split(", ") if item]
    return {key(k): int(n) for k, n in items}


def floats(text: str | None) -> list[float | None] | None:
    """An ARRAY<DOUBLE>, '[1.5, NULL]', as a list (a double's text round-trips)."""
    if text is None:
        return None
    return [None if x == "NULL" else float(x) for x in text.strip("[]").split(", ")]
