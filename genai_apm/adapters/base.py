"""What every adapter shares: the formats, the error they raise, JSON and number reading.

A leaf module (stdlib only), so bedrock, otlp and bodies import it and the package's
``decode`` imports them, with no circle through ``genai_apm.adapters`` itself.
"""

from __future__ import annotations

import json
import math

FORMATS = ("native", "bedrock", "otlp-json")
INVOCATION = "InvocationEvent"
SPAN = "SpanEvent"
BODY = "BodyEvent"


class AdapterError(ValueError):
    """A record the adapter cannot turn into events; ``str(e)`` is a short, payload-free reason."""


def finite_number(value: object) -> float | None:
    """A JSON number as a float, or None when it cannot be one: not a number (a bool is not),
    infinite (json reads 1e400 as infinity), or an integer too large for a float."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _reject_constant(name: str):
    # Python's json accepts NaN and Infinity, which no other JSON reader does
    raise AdapterError(f"payload is not JSON: bare {name}")


def parse_json(payload: bytes) -> object:
    """The JSON value in ``payload``, or AdapterError saying why there is none."""
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise AdapterError(f"payload must be bytes, got {type(payload).__name__}")
    try:
        text = bytes(payload).decode("utf-8")
    except UnicodeDecodeError as e:
        raise AdapterError(f"payload is not UTF-8 (bad byte at offset {e.start})") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except AdapterError:
        raise
    except json.JSONDecodeError as e:
        raise AdapterError(f"payload is not JSON: {e.msg} at offset {e.pos}") from None
    except RecursionError:
        raise AdapterError("payload is not JSON we can read: nested too deeply") from None
    except ValueError:
        # an integer literal beyond Python's digit limit; its message would quote the input
        raise AdapterError("payload is not JSON we can read: a number is too long") from None
