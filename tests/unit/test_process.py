from __future__ import annotations

import socket
import sys

from genai_apm.stack.process import ManagedProcess, free_port, port_in_use


def test_start_stop_and_stale_pid_file(tmp_path):
    proc = ManagedProcess("sleeper", tmp_path)
    pid = proc.start([sys.executable, "-c", "import time; time.sleep(60)"])
    assert proc.pid() == pid
    assert proc.stop(timeout_s=5)
    assert proc.pid() is None and not proc.pid_file.exists()
    # a pid file whose start time does not match is someone else's process: never signalled
    proc.pid_file.write_text(f"{1} 123\n")
    assert proc.pid() is None
    assert proc.stop() is False


def test_stop_escalates_to_sigkill(tmp_path):
    proc = ManagedProcess("stubborn", tmp_path)
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    proc.start([sys.executable, "-c", code])
    assert proc.stop(timeout_s=1)
    assert proc.pid() is None


def test_port_in_use():
    port = free_port()
    assert not port_in_use(port)
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        s.listen()
        assert port_in_use(port)
