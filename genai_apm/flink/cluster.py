"""A real standalone Flink cluster (JobManager + TaskManager) from PyFlink's own distribution.

Configuration, logs and pid files live under ``<state>/flink``, so `cluster down` stops only
the daemons this project started. Jobs are submitted with the distribution's `flink run`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from genai_apm.aws import flink_s3_options
from genai_apm.errors import GenaiApmError
from genai_apm.home import jars_dir, java_executable, plugins_dir
from genai_apm.settings.config import Settings
from genai_apm.stack.process import free_port, port_in_use, port_open


def flink_home() -> Path:
    try:
        import pyflink
    except ImportError:
        raise GenaiApmError("apache-flink is not installed; run `make install`") from None
    return Path(pyflink.__file__).resolve().parent


def split_address(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise GenaiApmError(f"{address!r} is not HOST:PORT")
    return host or "127.0.0.1", int(port)


class FlinkRest:
    """The few REST calls the CLI and the fault tests need: overview, jobs, cancel, checkpoints,
    stop with a savepoint."""

    def __init__(self, address: str):
        self.host, self.port = split_address(address)
        self.base = f"http://{self.host}:{self.port}"

    def _call(self, path: str, method: str = "GET", body: dict | None = None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.base + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"} if data else {},
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as r:
                body = r.read()
        except urllib.error.HTTPError as e:
            raise GenaiApmError(f"Flink REST {method} {path}: HTTP {e.code}") from None
        except (urllib.error.URLError, OSError):
            raise GenaiApmError(
                f"no Flink cluster answers at {self.host}:{self.port} "
                "(local cluster: `genai-apm cluster up`)"
            ) from None
        return json.loads(body) if body else None

    def overview(self) -> dict:
        return self._call("/overview")

    def jobs(self) -> list[dict]:
        return self._call("/jobs/overview")["jobs"]

    def cancel(self, job_id: str) -> None:
        self._call(f"/jobs/{_job_id(job_id)}?mode=cancel", method="PATCH")

    def checkpoints(self, job_id: str) -> dict:
        """Checkpoint statistics: counts, and the latest completed one with its path."""
        return self._call(f"/jobs/{_job_id(job_id)}/checkpoints")

    def checkpoint(self, job_id: str, timeout_s: float = 60) -> int:
        """Take a checkpoint now and wait for it; return its id. Kafka transactions and
        Parquet files written before it are committed when it completes."""
        trigger = self._call(
            f"/jobs/{_job_id(job_id)}/checkpoints", method="POST", body={"checkpointType": "FULL"}
        )["request-id"]
        status = f"/jobs/{job_id}/checkpoints/{trigger}"
        return int(self._outcome(status, "checkpointId", f"checkpoint of {job_id}", timeout_s))

    def stop_with_savepoint(self, job_id: str, target_dir: str, timeout_s: float = 120) -> str:
        """Stop the job after a final savepoint under ``target_dir``; return its path.

        The sources stop first, then the savepoint is taken and the job ends FINISHED: every
        Kafka transaction and Parquet file is committed, none is left open."""
        trigger = self._call(
            f"/jobs/{_job_id(job_id)}/stop",
            method="POST",
            body={"targetDirectory": target_dir, "drain": False},
        )["request-id"]
        status = f"/jobs/{job_id}/savepoints/{trigger}"
        return self._outcome(status, "location", f"stop-with-savepoint of {job_id}", timeout_s)

    def _outcome(self, status_path: str, result: str, what: str, timeout_s: float):
        """Poll an asynchronous operation until it completes; its ``result`` field, or one line
        naming the first line of its failure."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            status = self._call(status_path)
            if status["status"]["id"] == "COMPLETED":
                operation = status["operation"]
                if result not in operation:
                    cause = operation.get("failure-cause", {}).get("stack-trace", "")
                    first = cause.strip().splitlines()[0] if cause.strip() else "unknown cause"
                    raise GenaiApmError(f"{what} failed: {first}")
                return operation[result]
            time.sleep(0.2)
        raise GenaiApmError(f"{what} took over {timeout_s:.0f}s")


def _job_id(job_id: str) -> str:
    if not re.fullmatch(r"[0-9a-f]{32}", job_id):
        raise GenaiApmError(f"{job_id!r} is not a Flink job id (32 hex digits)")
    return job_id


class LocalFlinkCluster:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.dir = Path(settings.stack.state_dir).resolve() / "flink"
        self.host, self.rest_port = split_address(settings.flink.rest_address)

    @property
    def conf_dir(self) -> Path:
        return self.dir / "conf"

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env |= {
            "FLINK_CONF_DIR": str(self.conf_dir),
            "FLINK_LOG_DIR": str(self.dir / "log"),
            "FLINK_PID_DIR": str(self.dir),
            # flink-s3-fs-hadoop (s3:// table paths) and any later filesystem plugin
            "FLINK_PLUGINS_DIR": str(jars_dir("plugins")),
            "JAVA_HOME": str(Path(java_executable()).resolve().parents[1]),
        }
        return env

    def _write_conf(self) -> None:
        home = flink_home()
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        for item in (home / "conf").iterdir():
            if item.name != "config.yaml":
                shutil.copy(item, self.conf_dir / item.name)
        stock = (home / "conf" / "config.yaml").read_text()
        java_opts = re.search(r"^\s+all: (.*)$", stock, re.MULTILINE)
        f = self.settings.flink
        conf = {
            # the JDK 17 module opens Flink itself needs
            "env.java.opts.all": java_opts.group(1) if java_opts else "",
            "jobmanager.rpc.address": "localhost",
            "jobmanager.bind-host": "localhost",
            "taskmanager.bind-host": "localhost",
            "taskmanager.host": "localhost",
            "rest.address": self.host,
            "rest.bind-address": self.host,
            "rest.port": str(self.rest_port),
            # Flink's default is the fixed 6123: a second cluster on the machine (another
            # state dir: a test, a parallel test worker) failed to start its JobManager.
            # Clients use REST; only this cluster's TaskManagers, started from this
            # configuration, talk RPC to it
            "jobmanager.rpc.port": str(free_port()),
            "jobmanager.memory.process.size": f.jobmanager_memory,
            "taskmanager.memory.process.size": f.taskmanager_memory,
            "taskmanager.numberOfTaskSlots": str(f.task_slots),
            "parallelism.default": str(f.parallelism),
            # a loopback cluster: a lost TaskManager (killed, crashed) is noticed in seconds, not
            # after the default 50 s, so its job restarts from its last checkpoint sooner
            "heartbeat.interval": "2000",
            "heartbeat.timeout": "15000",
            # REST answers checkpoint statistics from a cache kept 3 s by default; a local
            # cluster can afford fresh ones (what `genai-apm jobs` and the fault tests read)
            "rest.cache.checkpoint-statistics.timeout": "250 ms",
            "python.executable": sys.executable,
            "python.client.executable": sys.executable,
            **flink_s3_options(self.settings.aws),
        }
        config_file = self.conf_dir / "config.yaml"
        config_file.touch(mode=0o600)  # it may hold the S3 secret key
        config_file.chmod(0o600)
        config_file.write_text(
            "# written by genai-apm cluster up; edit settings, not this file\n"
            + "".join(f"{k}: {json.dumps(v)}\n" for k, v in conf.items())
        )
        (self.conf_dir / "masters").write_text(f"localhost:{self.rest_port}\n")
        (self.conf_dir / "workers").write_text("localhost\n")

    def running(self) -> bool:
        return any(self.dir.glob("flink-*-standalonesession.pid")) and self._answers()

    def _answers(self) -> bool:
        try:
            return FlinkRest(self.settings.flink.rest_address).overview()["taskmanagers"] > 0
        except GenaiApmError:
            return False

    def up(self) -> bool:
        if self.running():
            return False
        if port_in_use(self.rest_port):
            raise GenaiApmError(
                f"port {self.rest_port} is in use; set flink.rest_address "
                "(GENAI_APM_FLINK_REST_ADDRESS) to a free HOST:PORT"
            )
        plugins_dir()  # resolved before the daemons look for them
        self._write_conf()
        (self.dir / "log").mkdir(parents=True, exist_ok=True)
        script = flink_home() / "bin" / "start-cluster.sh"
        result = subprocess.run(
            ["bash", str(script)], env=self._env(), capture_output=True, text=True
        )
        if result.returncode != 0:
            raise GenaiApmError(f"start-cluster.sh failed; see {self.dir / 'log'}")
        deadline = time.monotonic() + self.settings.stack.ready_timeout_s
        while time.monotonic() < deadline:
            if self._answers():
                return True
            time.sleep(0.5)
        self.down()
        raise GenaiApmError(f"Flink cluster did not come up; see {self.dir / 'log'}")

    def down(self) -> bool:
        if not any(self.dir.glob("flink-*.pid")):
            return False
        script = flink_home() / "bin" / "stop-cluster.sh"
        subprocess.run(["bash", str(script)], env=self._env(), capture_output=True, text=True)
        deadline = time.monotonic() + 30  # the daemons exit asynchronously after the signal
        while time.monotonic() < deadline and port_open(self.rest_port, self.host):
            time.sleep(0.3)
        return True

    def taskmanager_pids(self) -> list[int]:
        """Pids of the TaskManagers the cluster scripts started (the last one is the newest)."""
        pids = []
        for pid_file in self.dir.glob("flink-*-taskexecutor.pid"):
            pids += [int(line) for line in pid_file.read_text().split() if line.isdigit()]
        return pids

    def start_taskmanager(self) -> None:
        """Start one more TaskManager: a standalone cluster does not replace a lost one."""
        script = flink_home() / "bin" / "taskmanager.sh"
        result = subprocess.run(
            ["bash", str(script), "start"], env=self._env(), capture_output=True, text=True
        )
        if result.returncode != 0:
            raise GenaiApmError(f"taskmanager.sh start failed; see {self.dir / 'log'}")

    def status(self) -> str:
        if not self._answers():
            return "stopped"
        o = FlinkRest(self.settings.flink.rest_address).overview()
        return (
            f"running at http://{self.host}:{self.rest_port}: {o['taskmanagers']} "
            f"taskmanager(s), {o['slots-available']}/{o['slots-total']} slots free, "
            f"{o['jobs-running']} job(s) running; logs {self.dir / 'log'}"
        )


def submit_to_cluster(address: str, module: str, job_args: list[str]) -> str:
    """Detached `flink run` of a job module on the cluster at ``address``; returns the job id."""
    FlinkRest(address).overview()  # one clear line if nothing answers there
    home = flink_home()
    argv = [
        "bash",
        str(home / "bin" / "flink"),
        "run",
        "-m",
        address,
        "-d",
        "-pyclientexec",
        sys.executable,
        "-pyexec",
        sys.executable,
        "-pym",
        module,
        *job_args,
    ]
    env = dict(os.environ)
    env.setdefault("JAVA_HOME", str(Path(java_executable()).resolve().parents[1]))
    result = subprocess.run(argv, env=env, capture_output=True, text=True)
    output = result.stdout + result.stderr
    found = re.search(r"JobID ([0-9a-f]{32})", output)
    if result.returncode != 0 or not found:
        reason = next(
            (
                line
                for line in reversed(output.splitlines())
                if "Exception" in line or "Error" in line
            ),
            "see `flink run` output",
        )
        raise GenaiApmError(f"submission to {address} failed: {reason.strip()[:300]}")
    return found.group(1)
