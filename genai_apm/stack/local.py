"""The whole local stack as one unit: what `genai-apm stack up|down|status` drives."""

from __future__ import annotations

from pathlib import Path

from genai_apm.settings.config import Settings
from genai_apm.stack.kafka_broker import KafkaBroker
from genai_apm.stack.moto_server import MotoServer


class LocalStack:
    def __init__(self, settings: Settings):
        self.state_dir = Path(settings.stack.state_dir).resolve()
        self.kafka = KafkaBroker(settings.stack, self.state_dir)
        self.moto = MotoServer(settings.stack, self.state_dir)

    def services(self) -> dict[str, KafkaBroker | MotoServer]:
        return {"kafka": self.kafka, "moto": self.moto}

    def up(self) -> list[str]:
        """Start what is not running; return the names of the services this call started."""
        started = []
        try:
            for name, service in self.services().items():
                if service.up():
                    started.append(name)
        except BaseException:
            for name in reversed(started):  # leave nothing half-up behind a failure
                self.services()[name].down()
            raise
        return started

    def down(self, only: list[str] | None = None) -> list[str]:
        stopped = []
        for name, service in reversed(list(self.services().items())):
            if (only is None or name in only) and service.down():
                stopped.append(name)
        return stopped

    def status(self) -> dict[str, str]:
        return {name: service.status() for name, service in self.services().items()}
