"""Start, stop and inspect the embedded broker and PostgreSQL that `issuance dev` and the tests share."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from issuance.services.broker import start_broker, stop_broker
from issuance.services.postgres import (
    ensure_database,
    running_postgres,
    start_postgres,
    stop_postgres,
)
from issuance.services.state import DATABASE, ServicesRecord, StateDir, read_state, write_state

STARTED = "started"
ALREADY_RUNNING = "already running"
STOPPED = "stopped"
NOT_RUNNING = "not running"


@dataclass(frozen=True)
class ServiceChange:
    """What one command did to one service."""

    name: str
    outcome: str
    address: str | None


@dataclass(frozen=True)
class Embedded:
    """The addresses of the embedded services that are alive right now (None when one is not)."""

    kafka_bootstrap: str | None
    database_url: str | None


@contextmanager
def _locked(state: StateDir) -> Iterator[None]:
    """Serialize up/down on one state directory across processes."""
    state.root.mkdir(parents=True, exist_ok=True)
    with (state.root / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def up(root: Path) -> list[ServiceChange]:
    """Start whatever is not running (a stale or reused pid counts as not running) and record it."""
    state = StateDir(root.resolve())
    with _locked(state):
        record = read_state(state)
        changes: list[ServiceChange] = []
        broker = record.broker if record.broker is not None and record.broker.alive() else None
        if broker is None:
            broker = start_broker(state.broker_log)
            changes.append(ServiceChange("kafka", STARTED, broker.bootstrap))
        else:
            changes.append(ServiceChange("kafka", ALREADY_RUNNING, broker.bootstrap))
        server = running_postgres(state.pgdata)
        outcome = ALREADY_RUNNING
        if server is None:
            server = start_postgres(state.pgdata)
            outcome = STARTED
        url = ensure_database(server, DATABASE)
        changes.append(ServiceChange("postgres", outcome, url))
        write_state(state, ServicesRecord(broker=broker, database_url=url), postgres_pid=server.pid)
        return changes


def down(root: Path) -> list[ServiceChange]:
    """Stop both services and wait until no process of theirs is left; the database files stay."""
    state = StateDir(root.resolve())
    with _locked(state):
        record = read_state(state)
        changes: list[ServiceChange] = []
        broker_alive = record.broker is not None and record.broker.alive()
        if record.broker is not None:
            stop_broker(record.broker)
        changes.append(ServiceChange("kafka", STOPPED if broker_alive else NOT_RUNNING, None))
        stopped = stop_postgres(state.pgdata) if state.pgdata.exists() else False
        changes.append(ServiceChange("postgres", STOPPED if stopped else NOT_RUNNING, None))
        state.state_file.unlink(missing_ok=True)
        return changes


def running(root: Path) -> Embedded:
    """The embedded services recorded under root that are still alive (cheap: no network)."""
    state = StateDir(root.resolve())
    record = read_state(state)
    bootstrap = record.broker.bootstrap if record.broker is not None and record.broker.alive() else None
    server = running_postgres(state.pgdata) if state.pgdata.exists() else None
    database_url = record.database_url if server is not None else None
    return Embedded(kafka_bootstrap=bootstrap, database_url=database_url)
