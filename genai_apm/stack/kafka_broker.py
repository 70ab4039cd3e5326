"""A real single-node Apache Kafka 4 broker in KRaft combined mode, run from the Maven jars."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from genai_apm.errors import GenaiApmError
from genai_apm.home import jars as resolve_group
from genai_apm.home import jars_dir, java_executable, project_root
from genai_apm.settings.config import StackSettings
from genai_apm.stack.process import ManagedProcess, port_in_use, port_open

NAME = "kafka"
LOG_CONFIG_DIR = project_root() / "infra" / "kafka"


SCRAM_MECHANISM = "SCRAM-SHA-512"


@dataclass(frozen=True)
class SecuredListener:
    """An extra SASL_SSL listener with SCRAM-SHA-512 users (opt-in: tests of secured clients).

    The PLAINTEXT and CONTROLLER listeners stay as they are, on loopback: broker-internal
    traffic and readiness checks need no credentials.
    """

    port: int
    # server certificate chain + PKCS#8 private key in one PEM file, the key encrypted with
    # key_password (the only form of PEM key file Kafka's own TLS code loads)
    keystore_pem: Path
    key_password: str
    # (name, password) pairs, created when the storage is formatted
    scram_users: tuple[tuple[str, str], ...]


def _secured_properties(secured: SecuredListener) -> dict[str, str]:
    prefix = "listener.name.sasl_ssl."
    return {
        "sasl.enabled.mechanisms": SCRAM_MECHANISM,
        prefix + "sasl.enabled.mechanisms": SCRAM_MECHANISM,
        # credentials are checked against the SCRAM users in the cluster metadata
        prefix + SCRAM_MECHANISM.lower() + ".sasl.jaas.config": (
            "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        ),
        prefix + "ssl.keystore.type": "PEM",
        prefix + "ssl.keystore.location": str(secured.keystore_pem),
        prefix + "ssl.key.password": secured.key_password,
    }


def server_properties(
    stack: StackSettings, data_dir: Path, secured: SecuredListener | None = None
) -> str:
    """Broker + controller on loopback; replication 1 everywhere or consumer groups hang."""
    plain = f"PLAINTEXT://127.0.0.1:{stack.kafka_port}"
    sasl = f",SASL_SSL://127.0.0.1:{secured.port}" if secured else ""
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "listeners": f"{plain}{sasl},CONTROLLER://127.0.0.1:{stack.controller_port}",
        "advertised.listeners": f"{plain}{sasl}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
        + (",SASL_SSL:SASL_SSL" if secured else ""),
        # with `format --standalone` the quorum is bootstrapped, not a static voter list
        "controller.quorum.bootstrap.servers": f"127.0.0.1:{stack.controller_port}",
        "log.dirs": str(data_dir),
        "num.partitions": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "4",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "4",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "true",
        # Flink's exactly-once sink holds transactions open across checkpoints
        "transaction.max.timeout.ms": "3600000",
        "log.retention.hours": "168",
    }
    if secured:
        props |= _secured_properties(secured)
    return "".join(f"{k}={v}\n" for k, v in props.items())


class KafkaBroker:
    def __init__(
        self, stack: StackSettings, state_dir: Path, secured: SecuredListener | None = None
    ):
        self.stack = stack
        self.secured = secured
        self.dir = state_dir / NAME
        self.process = ManagedProcess(NAME, state_dir)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.stack.kafka_port}"

    def _java(self, main_class: str, *args: str, heap: str) -> list[str]:
        classpath = str(jars_dir("kafka") / "*")
        return [
            java_executable(),
            f"-Xmx{heap}",
            "-Xss1m",
            "-XX:+UseG1GC",
            f"-Dkafka.logs.dir={self.dir}",
            f"-Dlog4j2.configurationFile={LOG_CONFIG_DIR / 'log4j2.properties'}",
            "-cp",
            classpath,
            main_class,
            *args,
        ]

    def _format_storage(self, props: Path, data: Path) -> None:
        import subprocess

        if (data / "meta.properties").is_file():
            return
        argv = self._java(
            "kafka.tools.StorageTool",
            "format",
            "-t",
            _cluster_id(),
            "-c",
            str(props),
            "--standalone",
            *self._scram_arguments(),
            heap="256m",
        )
        result = subprocess.run(argv, capture_output=True, text=True)
        if result.returncode != 0:
            lines = (result.stdout + result.stderr).strip().splitlines() or ["(no output)"]
            raise GenaiApmError(f"Kafka storage format failed: {lines[-1]}")

    def _scram_arguments(self) -> list[str]:
        if self.secured is None:
            return []
        args = []
        for name, password in self.secured.scram_users:
            args += ["--add-scram", f'{SCRAM_MECHANISM}=[name="{name}",password="{password}"]']
        return args

    @property
    def secured_bootstrap(self) -> str:
        if self.secured is None:
            raise GenaiApmError("this broker has no SASL_SSL listener")
        return f"127.0.0.1:{self.secured.port}"

    def up(self) -> bool:
        """Start the broker unless ours is running; wait until it answers. True if started."""
        if self.process.pid() is not None:
            return False
        ports = [self.stack.kafka_port, self.stack.controller_port]
        for port in ports + ([self.secured.port] if self.secured else []):
            if port_in_use(port):
                raise GenaiApmError(
                    f"port {port} on 127.0.0.1 is in use; set stack.kafka_port / "
                    "stack.controller_port (or GENAI_APM_STACK_KAFKA_PORT) to free ones"
                )
        resolve_group("kafka")
        self.dir.mkdir(parents=True, exist_ok=True)
        data = self.dir / "data"
        props = self.dir / "server.properties"
        props.write_text(server_properties(self.stack, data, self.secured))
        self._format_storage(props, data)
        self.process.start(self._java("kafka.Kafka", str(props), heap=self.stack.kafka_heap))
        self.process.wait_ready(self._ready, self.stack.ready_timeout_s, "Kafka broker")
        return True

    def _ready(self) -> bool:
        if not port_open(self.stack.kafka_port):
            return False
        log = self.dir / "server.log"
        return log.is_file() and "Kafka Server started" in log.read_text(errors="replace")

    def down(self) -> bool:
        return self.process.stop()

    def status(self) -> str:
        pid = self.process.pid()
        if pid is None:
            return "stopped"
        return f"running (pid {pid}) on {self.bootstrap}; log {self.dir / 'server.log'}"


def _cluster_id() -> str:
    # KRaft cluster ids are 16 random bytes in URL-safe base64 without padding; one in 64
    # starts with '-', which the storage tool's argument parser takes for an option (Kafka's
    # own Uuid.randomUuid draws again for the same reason)
    import base64

    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id
