"""A broker of the test's own, for tests that restart it (the session broker is shared and never restarted).

The embedded broker keeps everything in memory: a restart is a broker that lost its state. The restarted
broker listens on a new port; the system keeps no broker address with its checkpoints, so to it this is the
same situation as a restart in place.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from issuance.services.broker import BrokerProcess, start_broker, stop_broker
from issuance.settings import Settings
from tests.fixtures_services import settings_env


class OwnBroker:
    """The test's broker; `restart()` replaces it with an empty one."""

    def __init__(self, log: Path) -> None:
        self._log = log
        self.process: BrokerProcess = start_broker(log)

    @property
    def bootstrap(self) -> str:
        return self.process.bootstrap

    def restart(self) -> str:
        """Stop the broker and start an empty one; its bootstrap address."""
        stop_broker(self.process)
        self.process = start_broker(self._log)
        return self.bootstrap

    def stop(self) -> None:
        stop_broker(self.process)


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[OwnBroker]:
    broker = OwnBroker(tmp_path / "broker" / "tansu.log")
    try:
        yield broker
    finally:
        broker.stop()


def on_broker(settings: Settings, bootstrap: str) -> Settings:
    """`settings` pointing at another broker."""
    return settings.model_copy(update={"kafka_bootstrap": bootstrap})


def cli(
    settings: Settings, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `issuance ARGS` as an operator would, with `settings` as its environment."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("ISSUANCE_")}
    full.update(settings_env(settings))
    full.update(env or {})
    return subprocess.run(
        [str(Path(sys.executable).parent / "issuance"), *args],
        env=full,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
