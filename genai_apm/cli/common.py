"""What every `genai-apm` command shares: its settings, and number types for its options."""

from __future__ import annotations

import argparse

from genai_apm.settings import config


def load_settings(args) -> config.Settings:
    """The settings of ``--config`` (or the default file), then the environment."""
    return config.load(args.config)


def number(kind: type = float, *, minimum: float | None = None, positive: bool = False):
    """An argparse type: a number of ``kind``, > 0 when ``positive``, >= ``minimum``."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if positive and not value > 0:
            raise argparse.ArgumentTypeError(f"must be positive, not {text}")
        if minimum is not None and value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {text}")
        return value

    return parse


AT_LEAST_ONE = number(int, minimum=1)
POSITIVE = number(positive=True)
NON_NEGATIVE = number(minimum=0)
