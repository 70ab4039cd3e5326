"""Identifiers drawn from a seeded generator, so they repeat with the seed."""

from __future__ import annotations

import numpy as np


def uuid4s(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` RFC 4122 version-4 UUID strings."""
    raw = rng.bytes(16 * n).hex()
    out = []
    for i in range(0, 32 * n, 32):
        h = raw[i : i + 32]
        variant = "89ab"[int(h[16], 16) & 3]
        out.append(f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{variant}{h[17:20]}-{h[20:]}")
    return out
