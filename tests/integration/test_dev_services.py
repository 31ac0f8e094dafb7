"""The embedded services as `issuance dev` drives them: idempotent start, stale pid records, clean stop."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from issuance.kafka.client_config import KafkaClientConfig
from issuance.services import embedded
from issuance.services.broker import probe_kafka
from issuance.services.postgres import probe_database, running_postgres
from issuance.services.state import StateDir
from tests.fixtures_services import PREFIX, leftover_processes, private_dir, reap_orphans, stop_services


@pytest.fixture
def root() -> Iterator[Path]:
    """A private state directory whose services are always stopped afterwards."""
    path = private_dir(f"{PREFIX}dev-")
    yield path
    stop_services(path)
    assert leftover_processes(path) == []
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def stranger() -> Iterator[psutil.Process]:
    """A process that is not ours, standing in for a pid reused by another program."""
    popen = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    yield psutil.Process(popen.pid)
    popen.kill()
    popen.wait()


def service_family(root: Path) -> list[psutil.Process]:
    """The broker and the postmaster with every PostgreSQL child process."""
    procs = leftover_processes(root)
    server = running_postgres(StateDir(root).pgdata)
    assert server is not None
    postmaster = psutil.Process(server.pid)
    return [*procs, *postmaster.children(recursive=True)]


def test_up_is_idempotent_healthy_and_down_leaves_nothing(root: Path) -> None:
    first = embedded.up(root)
    assert [(c.name, c.outcome) for c in first] == [("kafka", "started"), ("postgres", "started")]
    second = embedded.up(root)
    assert [(c.name, c.outcome) for c in second] == [
        ("kafka", "already running"),
        ("postgres", "already running"),
    ]
    assert [c.address for c in first] == [c.address for c in second]

    running = embedded.running(root)
    assert running.kafka_bootstrap is not None and running.database_url is not None
    probe_kafka(KafkaClientConfig.plaintext(running.kafka_bootstrap))
    probe_database(running.database_url)
    family = service_family(root)
    assert len(family) >= 3  # broker, postmaster, backends

    stopped = embedded.down(root)
    assert [(c.name, c.outcome) for c in stopped] == [("kafka", "stopped"), ("postgres", "stopped")]
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in family)
    assert leftover_processes(root) == []
    assert embedded.running(root) == embedded.Embedded(None, None)
    assert [c.outcome for c in embedded.down(root)] == ["not running", "not running"]


def test_up_survives_pid_records_of_other_programs(root: Path, stranger: psutil.Process) -> None:
    state = StateDir(root)
    state.pgdata.mkdir(parents=True)
    # services.json names the stranger's pid with a different start time (a reused pid) ...
    record = {
        "kafka": {"pid": stranger.pid, "create_time": stranger.create_time() - 100, "port": 1, "log": "x"}
    }
    state.state_file.write_text(json.dumps(record))
    # ... and a postmaster.pid left by a crash names it too; PostgreSQL would refuse to start on it.
    (state.pgdata / "postmaster.pid").write_text(f"{stranger.pid}\n{state.pgdata}\n0\n5432\n\n\n\n")

    changes = embedded.up(root)

    assert [c.outcome for c in changes] == ["started", "started"]
    assert stranger.is_running()
    recorded = json.loads(state.state_file.read_text())
    assert recorded["kafka"]["pid"] != stranger.pid


def test_a_live_pid_of_another_program_is_not_taken_for_the_broker(
    root: Path, stranger: psutil.Process
) -> None:
    record = {"kafka": {"pid": stranger.pid, "create_time": stranger.create_time(), "port": 1, "log": "x"}}
    StateDir(root).state_file.write_text(json.dumps(record))
    assert embedded.running(root).kafka_bootstrap is None
    embedded.down(root)
    assert stranger.is_running()


def test_a_dead_pid_is_not_running(root: Path) -> None:
    popen = subprocess.Popen([sys.executable, "-c", "pass"])
    popen.wait()
    record = {"kafka": {"pid": popen.pid, "create_time": 0.0, "port": 1, "log": "x"}}
    StateDir(root).state_file.write_text(json.dumps(record))
    assert embedded.running(root) == embedded.Embedded(None, None)
    assert [c.outcome for c in embedded.down(root)] == ["not running", "not running"]


def test_services_of_a_killed_session_are_reaped() -> None:
    script = (
        "import sys\n"
        "from issuance.services import embedded\n"
        "from tests.fixtures_services import PREFIX, private_dir\n"
        "root = private_dir(f'{PREFIX}killed-')\n"
        "embedded.up(root)\n"
        "print(root, flush=True)\n"
        "sys.stdin.read()\n"
    )
    session = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert session.stdout is not None
    root = Path(session.stdout.readline().strip())
    try:
        assert len(leftover_processes(root)) >= 2
        session.kill()
        session.wait()
        reap_orphans(PREFIX)
        assert leftover_processes(root) == []
        assert not root.exists()
    finally:
        session.kill()
        session.wait()
        stop_services(root)
        shutil.rmtree(root, ignore_errors=True)
