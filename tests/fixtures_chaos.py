"""Helpers of the chaos test: a world of its own (broker, PostgreSQL, settings) whose services can be killed.

The session's broker and PostgreSQL are shared by every test and are never killed; the chaos test kills and
restarts its own. The broker keeps its topics in memory only: a killed broker comes back empty, on a new port.
PostgreSQL keeps its data directory: a killed server comes back after crash recovery.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest
from pydantic import SecretStr

from issuance.services.postgres import ensure_database, running_postgres, start_postgres
from issuance.services.state import StateDir
from issuance.settings import Settings
from issuance.store.db import connect
from tests.fixtures_broker import OwnBroker
from tests.fixtures_processes import run, start
from tests.fixtures_services import (
    PREFIX,
    TEST_BLIND_INDEX_KEY,
    TEST_BUREAU_KEY,
    TEST_DATA_KEYS,
    leftover_processes,
    private_dir,
    settings_env,
    stop_services,
)

GRACE_S = 10  # how long a command may take to give up after its service was killed (then it is killed too)


@dataclass
class ChaosWorld:
    """A broker and a PostgreSQL of the test's own, the settings that point at them, and what was started."""

    root: Path
    broker: OwnBroker
    pgdata: Path
    database_url: str
    workdir: Path
    broker_generation: int = 0
    commands: list[subprocess.Popen[str]] = field(default_factory=list)

    @property
    def settings(self) -> Settings:
        return Settings(
            kafka_bootstrap=self.broker.bootstrap,
            database_url=SecretStr(self.database_url),
            topic_prefix="chaos.",
            state_dir=self.workdir / "state",
            personalization_dir=self.workdir / "personalization",
            data_keys=SecretStr(TEST_DATA_KEYS),
            blind_index_key=SecretStr(TEST_BLIND_INDEX_KEY),
            keys_dir=self.workdir / "keys",  # the simulated partners' key files
            bureau_key=SecretStr(TEST_BUREAU_KEY),  # configured servers: keys are never generated
        )

    def env(self) -> dict[str, str]:
        """The CLI's environment: no inherited ISSUANCE_* variable, the current broker and PostgreSQL."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("ISSUANCE_")}
        env.update(settings_env(self.settings))
        return env

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run `issuance ARGS` to the end (no chaos)."""
        return run(list(args), self.env())

    def start(self, *args: str) -> subprocess.Popen[str]:
        """Start `issuance ARGS` in the background; it is killed at the end if still running."""
        proc = start(list(args), self.env())
        self.commands.append(proc)
        return proc

    def kill_broker(self) -> None:
        """SIGKILL the broker and start an empty one (a new port: the next commands are told its address)."""
        os.kill(self.broker.process.ref.pid, signal.SIGKILL)
        self.broker.restart()
        self.broker_generation += 1

    def kill_postgres(self) -> None:
        """SIGKILL the postmaster and every backend (a crash, not a shutdown), then start it again."""
        server = running_postgres(self.pgdata)
        assert server is not None, "the test's PostgreSQL is not running"
        postmaster = psutil.Process(server.pid)
        procs = [postmaster, *postmaster.children(recursive=True)]
        for proc in procs:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                continue
        psutil.wait_procs(procs, timeout=30)
        restarted = start_postgres(self.pgdata)
        assert restarted.url("issuance") == self.database_url, "PostgreSQL came back elsewhere"

    def rows(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with connect(self.database_url, autocommit=True) as conn:
            return [tuple(r) for r in conn.execute(query, params or None).fetchall()]

    def scalar(self, query: str, *params: Any) -> int:
        (row,) = self.rows(query, *params)
        return int(row[0])

    def stop(self) -> None:
        """Stop every command, the broker and PostgreSQL, and check that nothing of theirs is left."""
        for proc in self.commands:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
        self.broker.stop()
        stop_services(self.root)
        deadline = time.monotonic() + 30
        while leftover_processes(self.root) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = [p.info for p in leftover_processes(self.root)] + _tansu_left(self.broker)
        assert left == [], f"processes left behind: {left}"


def _tansu_left(broker: OwnBroker) -> list[dict[str, Any]]:
    proc = broker.process.ref.process("tansu")
    return [] if proc is None else [{"pid": proc.pid, "cmdline": proc.cmdline()}]


@pytest.fixture
def chaos_world(tmp_path: Path) -> Iterator[ChaosWorld]:
    """A private broker and PostgreSQL (killed and restarted by the test), stopped at the end."""
    root = private_dir(f"{PREFIX}chaos-")
    broker: OwnBroker | None = None
    world: ChaosWorld | None = None
    try:
        broker = OwnBroker(root / "broker" / "tansu.log")
        pgdata = StateDir(root).pgdata
        url = ensure_database(start_postgres(pgdata), "issuance")
        world = ChaosWorld(root=root, broker=broker, pgdata=pgdata, database_url=url, workdir=tmp_path)
        yield world
    finally:
        if world is not None:
            world.stop()
        else:
            if broker is not None:
                broker.stop()
            stop_services(root)
        shutil.rmtree(root, ignore_errors=True)


def raw_payloads(directory: Path) -> list[bytes]:
    """The bytes of every generated raw message published verbatim (a null record as empty bytes, as its
    dead letter has it); a raw message given as a record is encoded and sealed at submit, its bytes unknown
    here."""
    out = []
    for line in (directory / "raw_messages.jsonl").read_text(encoding="utf-8").splitlines():
        message = json.loads(line) if line.strip() else None
        if message is not None and "record" not in message:
            encoded = message["value_b64"]
            out.append(b"" if encoded is None else base64.b64decode(encoded))
    return out


def file_ids(path: Path, key: str = "application_id") -> set[str]:
    """The ids of a JSON-lines file."""
    if not path.exists():
        return set()
    return {
        str(json.loads(line)[key]) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    }
