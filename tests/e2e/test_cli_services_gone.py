"""PostgreSQL shutting down in the middle of a command, or a broker that does not answer: one line that says
what failed and what to do, exit 1, the traceback only behind `issuance --debug`.

The test starts its own PostgreSQL (never the session's server, which other tests use), holds a row lock so
that `dead-letters redrive` is provably inside its transaction, and stops the server under it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from issuance.codec.avro import encode
from issuance.crypto import Vault
from issuance.domain.contract import application_to_record
from issuance.kafka.topics import Topics
from issuance.services.postgres import PostgresProcess, ensure_database, start_postgres, stop_postgres
from issuance.services.state import StateDir
from issuance.settings import Settings
from issuance.store.db import connect
from issuance.store.migrate import apply_migrations
from tests import factories
from tests.fixtures_services import PREFIX, private_dir, settings_env, stop_services

CLI = [sys.executable, "-c", "from cli.main import main; main()"]
WAIT_S = 120  # a guard against a hung test, not an assertion on time


@pytest.fixture
def own_postgres() -> Iterator[PostgresProcess]:
    root = private_dir(f"{PREFIX}pg-stopped-")
    try:
        yield start_postgres(StateDir(root).pgdata)
    finally:
        stop_services(root)
        shutil.rmtree(root, ignore_errors=True)


def _waiting_on_a_lock(url: str, application_name: str) -> bool:
    with connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND wait_event_type = 'Lock'",
            (application_name,),
        ).fetchone()
    return row is not None and row[0] > 0


def test_postgresql_stopped_mid_command_is_one_line_and_exit_1(
    own_postgres: PostgresProcess, settings: Settings, cli_env: dict[str, str]
) -> None:
    url = ensure_database(own_postgres, "issuance")
    apply_migrations(url)
    private = settings.model_copy(update={"database_url": SecretStr(url)})
    env = {**cli_env, **settings_env(private), "ISSUANCE_LANGUAGE": "en"}  # the English hints checked below
    vault = Vault.from_settings(private)
    payload = encode("ApplicationSubmitted", application_to_record(factories.application()), version=2)
    holder = connect(url)
    dead_letter_id = holder.execute(
        "INSERT INTO dead_letters (source_topic, source_partition, source_offset, stage, reason, detail,"
        " payload_enc) VALUES (%s, 0, 7, 'decode', 'UNKNOWN_SCHEMA', 'unknown writer schema', %s)"
        " RETURNING id",
        (Topics(private).applications, vault.encrypt_bytes(payload)),
    ).fetchone()[0]  # type: ignore[index]
    holder.commit()
    holder.execute("SELECT 1 FROM dead_letters WHERE id = %s FOR UPDATE", (dead_letter_id,))

    command = subprocess.Popen(
        [*CLI, "dead-letters", "redrive", str(dead_letter_id), "--operator", "ops.li"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + WAIT_S
        while not _waiting_on_a_lock(url, "issuance-dead-letters"):
            assert command.poll() is None, command.communicate()
            assert time.monotonic() < deadline, "the command never reached its transaction"
            time.sleep(0.2)
        stop_postgres(own_postgres.pgdata)
        _, stderr = command.communicate(timeout=WAIT_S)
    finally:
        if command.poll() is None:
            command.kill()
        holder.close()

    assert command.returncode == 1, stderr
    assert stderr.splitlines() == [
        "error: PostgreSQL closed the connection during issuance dead-letters redrive: check the server at "
        "ISSUANCE_DATABASE_URL and re-run; nothing was committed by the interrupted step"
    ]

    again = subprocess.run(
        [*CLI, "--debug", "dead-letters", "list"], env=env, capture_output=True, text=True, timeout=WAIT_S
    )
    assert again.returncode == 1
    lines = again.stderr.splitlines()
    assert lines[0].startswith("Traceback") and lines[-1].startswith("error: cannot connect to PostgreSQL")
    quiet = subprocess.run(
        [*CLI, "dead-letters", "list"], env=env, capture_output=True, text=True, timeout=WAIT_S
    )
    assert quiet.returncode == 1 and len(quiet.stderr.splitlines()) == 1 and "Traceback" not in quiet.stderr


def test_an_unreachable_broker_is_one_line_and_exit_1(cli_env: dict[str, str]) -> None:
    env = {**cli_env, "ISSUANCE_KAFKA_BOOTSTRAP": "127.0.0.1:9", "ISSUANCE_LANGUAGE": "en"}  # nothing answers
    done = subprocess.run(
        [*CLI, "dead-letters", "redrive", "1", "--operator", "ops.li", "--timeout", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=WAIT_S,
    )
    assert done.returncode == 1
    (line,) = done.stderr.splitlines()
    assert line.startswith("error: Kafka at 127.0.0.1:9 did not answer")
    assert line.endswith("check the broker at ISSUANCE_KAFKA_BOOTSTRAP and re-run")
