"""The `genai-apm` argument parser: the global options, then each command module's
subcommands (``add_commands``), in the order `genai-apm --help` lists them."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from genai_apm.cli.jobs import add_commands as job_commands
from genai_apm.cli.outputs import add_commands as output_commands
from genai_apm.cli.stack import add_commands as stack_commands
from genai_apm.cli.traffic import add_commands as traffic_commands

COMMANDS = (stack_commands, job_commands, traffic_commands, output_commands)


class OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line, like every other input error (``--help`` shows the usage)."""

    def error(self, message: str):
        command = self.prog.removeprefix("genai-apm").strip()
        where = f"{command}: " if command else ""
        self.exit(2, f"genai-apm: error: {where}{message} (see `{self.prog} --help`)\n")


def parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="genai-apm",
        description="Streaming monitoring for generative-AI applications on Apache Flink.",
    )
    p.add_argument(
        "--config",
        help="config file (TOML); default $GENAI_APM_CONFIG or "
        "./genai-apm.toml; GENAI_APM_<SECTION>_<KEY> env vars override it",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, fn: Callable, help: str) -> argparse.ArgumentParser:
        s = sub.add_parser(name, help=help, description=help)
        s.set_defaults(fn=fn)
        return s

    for add_commands in COMMANDS:
        add_commands(add)
    return p
