"""`genai-apm`: one command for the local stack, Flink jobs, traffic and derived topics.

The commands live by what they act on (stack, jobs, traffic, outputs); parser.py puts them
together; ``main`` turns every input error into one line.
"""

from __future__ import annotations

import sys

from genai_apm.errors import GenaiApmError


def _flink_failure(e: BaseException) -> str | None:
    """The root cause of a Py4J-wrapped Flink failure, as one line."""
    text = str(e)
    causes = [line.strip() for line in text.splitlines() if line.strip().startswith("Caused by:")]
    if "py4j" not in type(e).__module__ and not causes:
        return None
    last = causes[-1] if causes else text.strip().splitlines()[0]
    return "Flink job failed: " + last.removeprefix("Caused by:").strip()[:400]


def main(argv: list[str] | None = None) -> int:
    from genai_apm.cli.parser import parser

    args = parser().parse_args(argv)
    try:
        return args.fn(args)
    except GenaiApmError as e:
        print(f"genai-apm: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("genai-apm: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        summary = _flink_failure(e)
        if summary is None:
            raise
        print(f"genai-apm: error: {summary}", file=sys.stderr)
        return 1
