"""A moto server emulating S3, CloudWatch and Kinesis on loopback, for tests and the demo."""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from pathlib import Path

from genai_apm.errors import GenaiApmError
from genai_apm.settings.config import StackSettings
from genai_apm.stack.process import ManagedProcess, port_in_use

NAME = "moto"


class MotoServer:
    def __init__(self, stack: StackSettings, state_dir: Path):
        self.stack = stack
        self.process = ManagedProcess(NAME, state_dir)

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.stack.moto_port}"

    def up(self) -> bool:
        if self.process.pid() is not None:
            return False
        if port_in_use(self.stack.moto_port):
            raise GenaiApmError(
                f"port {self.stack.moto_port} on 127.0.0.1 is in use; set stack.moto_port "
                "(or GENAI_APM_STACK_MOTO_PORT) to a free one"
            )
        try:
            import moto.server  # noqa: F401  (dev extra; say so instead of a traceback)
        except ImportError:
            raise GenaiApmError("moto[server] is not installed; run `make install`") from None
        self.process.start(
            [
                sys.executable,
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                str(self.stack.moto_port),
            ]
        )
        self.process.wait_ready(self._ready, self.stack.ready_timeout_s, "moto server")
        return True

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.endpoint_url + "/moto-api/", timeout=1) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def down(self) -> bool:
        return self.process.stop()

    def status(self) -> str:
        pid = self.process.pid()
        if pid is None:
            return "stopped"
        return f"running (pid {pid}) at {self.endpoint_url}; log {self.process.log_file}"
