"""What every job's ``main`` shares: arguments, settings, submission, and waiting when attached."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from genai_apm.config import Settings


def execute(t_env, statements, job: str, *, wait: bool | None = None) -> str:
    """Execute a statement set; wait for the end unless detached (``flink run -d``)."""
    result = statements.execute()
    client = result.get_job_client()
    job_id = str(client.get_job_id()) if client is not None else "?"
    print(f"submitted {job} job {job_id}", flush=True)
    if wait is None:
        # `flink run -d` sets execution.attached=false: submit and return
        wait = t_env.get_config().get("execution.attached", "true") != "false"
    if wait:
        result.wait()
    return job_id


def job_main(job: str, run: Callable[..., str], argv: list[str] | None) -> int:
    from genai_apm import config

    parser = argparse.ArgumentParser(prog=f"genai-apm submit {job}")
    parser.add_argument(
        "--bounded",
        action="store_true",
        help="stop at the offsets that are latest when the job starts",
    )
    parser.add_argument("--config", help="config file (TOML); env vars still override it")
    args = parser.parse_args(argv)
    settings: Settings = config.load(args.config)
    run(settings, bounded=args.bounded)
    return 0
