"""Background server processes owned by genai-apm: pid and log files under the state folder.

A pid file records the pid and the process start time; we only ever signal a process whose
start time still matches, so a recycled pid belonging to someone else is never killed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from genai_apm.errors import GenaiApmError


def _start_ticks(pid: int) -> str | None:
    """Field 22 of /proc/<pid>/stat (start time in ticks since boot); None if gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may contain spaces; everything after its ')' is fixed-width
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":
        with contextlib.suppress(
            ChildProcessError
        ):  # our own child that exited: reap it so it stops looking alive
            os.waitpid(pid, os.WNOHANG)
        return None
    return fields[19]


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            return e.errno == errno.EADDRINUSE or e.errno == errno.EACCES
    return False


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class ManagedProcess:
    """One named server: ``<state>/<name>.pid`` and ``<state>/<name>.log``."""

    name: str
    state_dir: Path

    @property
    def pid_file(self) -> Path:
        return self.state_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.state_dir / f"{self.name}.log"

    def pid(self) -> int | None:
        """The pid if our process is alive, else None (a stale pid file is removed)."""
        try:
            pid_text, ticks = self.pid_file.read_text().split()
            pid = int(pid_text)
        except (OSError, ValueError):
            return None
        if _start_ticks(pid) != ticks:
            self.pid_file.unlink(missing_ok=True)
            return None
        return pid

    def start(
        self, argv: Sequence[str], env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> int:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            proc = subprocess.Popen(
                list(argv),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=cwd,
                start_new_session=True,  # survives the CLI; not our tty's
            )
        ticks = _start_ticks(proc.pid)
        self.pid_file.write_text(f"{proc.pid} {ticks}\n")
        return proc.pid

    def wait_ready(self, probe: Callable[[], bool], timeout_s: float, what: str) -> None:
        """Poll ``probe`` until it passes; fail with the log path if the process dies or hangs."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.pid() is None:
                raise GenaiApmError(f"{what} exited during start-up; see {self.log_file}")
            if probe():
                return
            time.sleep(0.3)
        self.stop()
        raise GenaiApmError(f"{what} was not ready after {timeout_s:.0f}s; see {self.log_file}")

    def stop(self, timeout_s: float = 30) -> bool:
        """SIGTERM our process group, SIGKILL after ``timeout_s``. True if something was stopped."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.pid() is not None:
            time.sleep(0.2)
        if self.pid() is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            time.sleep(0.2)
        self.pid_file.unlink(missing_ok=True)
        return True
