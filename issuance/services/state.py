"""The state file of the embedded services (services.json under the state directory)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from issuance.services.broker import BrokerProcess
from issuance.services.processes import ProcessRef

STATE_FILE = "services.json"
DATABASE = "issuance"


@dataclass(frozen=True)
class StateDir:
    """Where the embedded services keep their data, logs and state file."""

    root: Path

    @property
    def state_file(self) -> Path:
        """The JSON record of what runs where."""
        return self.root / STATE_FILE

    @property
    def pgdata(self) -> Path:
        """The PostgreSQL data directory (kept across restarts)."""
        return self.root / "pg"

    @property
    def broker_log(self) -> Path:
        """The broker's log file."""
        return self.root / "kafka.log"


@dataclass(frozen=True)
class ServicesRecord:
    """What services.json records: the broker process and the database URL."""

    broker: BrokerProcess | None
    database_url: str | None


def read_state(state: StateDir) -> ServicesRecord:
    """Read services.json; a missing or unreadable file records nothing."""
    try:
        raw: dict[str, Any] = json.loads(state.state_file.read_text())
    except (OSError, ValueError):
        return ServicesRecord(broker=None, database_url=None)
    broker: BrokerProcess | None = None
    kafka = raw.get("kafka")
    if isinstance(kafka, dict):
        try:
            broker = BrokerProcess(
                ref=ProcessRef(pid=int(kafka["pid"]), create_time=float(kafka["create_time"])),
                port=int(kafka["port"]),
                log=Path(kafka["log"]),
            )
        except (KeyError, TypeError, ValueError):
            broker = None
    postgres = raw.get("postgres")
    url = postgres.get("database_url") if isinstance(postgres, dict) else None
    return ServicesRecord(broker=broker, database_url=url if isinstance(url, str) else None)


def write_state(state: StateDir, record: ServicesRecord, postgres_pid: int | None) -> None:
    """Write services.json atomically."""
    payload: dict[str, Any] = {}
    if record.broker is not None:
        payload["kafka"] = {
            **asdict(record.broker.ref),
            "port": record.broker.port,
            "bootstrap": record.broker.bootstrap,
            "log": str(record.broker.log),
        }
    if record.database_url is not None:
        payload["postgres"] = {
            "pid": postgres_pid,
            "pgdata": str(state.pgdata.resolve()),
            "database_url": record.database_url,
            "log": str(state.pgdata.resolve() / "log"),
        }
    state.root.mkdir(parents=True, exist_ok=True)
    tmp = state.state_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(tmp, state.state_file)
