"""``python -m genai_apm.deploy.aws_templates [--check]``: write the generated files, or fail
while a committed one differs from a fresh generation."""

from __future__ import annotations

import argparse
import sys

from genai_apm.deploy import aws_templates
from genai_apm.deploy.aws_templates.constants import COMMAND
from genai_apm.deploy.aws_templates.files import stale, write


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=COMMAND, description=aws_templates.__doc__.splitlines()[0]
    )
    parser.add_argument("--check", action="store_true", help="fail if a file is out of date")
    args = parser.parse_args(argv)
    if args.check:
        out_of_date = stale()
        for path in out_of_date:
            print(f"out of date: {path} (run `{COMMAND}`)", file=sys.stderr)
        return 1 if out_of_date else 0
    for path in write():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
