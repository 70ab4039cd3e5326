"""``python -m genai_apm.deploy [--check]``: every file the deploy wing generates into the
checkout (infra/aws and infra/k8s templates, infra/athena DDL and queries), written in one
go, or a failure naming each committed file that differs from a fresh generation."""

from __future__ import annotations

import argparse
import sys

from genai_apm.deploy import athena
from genai_apm.deploy.aws_templates import files as templates

COMMAND = "python -m genai_apm.deploy"
GENERATORS = (templates, athena)  # each: stale() and write() over the checkout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a file is out of date")
    args = parser.parse_args(argv)
    if args.check:
        out_of_date = [path for generator in GENERATORS for path in generator.stale()]
        for path in out_of_date:
            print(f"out of date: {path} (run `{COMMAND}`)", file=sys.stderr)
        return 1 if out_of_date else 0
    for generator in GENERATORS:
        for path in generator.write():
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
