"""The audit log's hash chain in PostgreSQL: the database's hashes verify in Python, tampering is found by
row, concurrent writers chain correctly, and a writer cannot choose the hash, the number or the time."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from cli.main import app
from issuance.store import roles
from issuance.store.audit import record_action
from issuance.store.audit_chain import GENESIS, Head, verify
from issuance.store.db import connect

# What someone who removed rows 4 and later would also do: point the database's chain head at row 3.
REWIND_HEAD = "UPDATE audit_chain_head SET seq = 3, row_hash = (SELECT row_hash FROM audit_log WHERE seq = 3)"


def append(url: str, n: int, actor: str = "ops-1", role: str | None = roles.OPERATOR) -> None:
    with connect(url, role=role) as conn:
        for i in range(n):
            record_action(
                conn,
                actor=actor,
                action="test.act",
                entity="thing",
                entity_id=str(i),
                detail={"n": i, "k": "é"},
            )
            conn.commit()


def verdict(url: str, expect: Head | None = None) -> Any:
    with connect(url, role=roles.OPERATOR) as conn:
        return verify(conn, expect)


def problems(url: str, expect: Head | None = None) -> list[tuple[int, str]]:
    return [(p.seq, p.kind) for p in verdict(url, expect).problems]


def as_owner(url: str, statement: str, params: tuple[Any, ...] = ()) -> None:
    """What someone with the owner's rights could do: bypass the append-only trigger."""
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        conn.execute("ALTER TABLE audit_log DISABLE TRIGGER USER")
        conn.execute(statement, params)
        conn.execute("ALTER TABLE audit_log ENABLE TRIGGER USER")


def test_rows_are_numbered_chained_and_verify(database_url: str) -> None:
    append(database_url, 5)
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT seq, prev_hash, row_hash FROM audit_log ORDER BY seq").fetchall()
    assert [r[0] for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0][1] == GENESIS and all(rows[i][1] == rows[i - 1][2] for i in range(1, 5))
    found = verdict(database_url)
    assert found.ok and found.rows == 5
    assert found.head == Head(5, bytes(rows[-1][2]))


def test_a_writer_cannot_choose_number_time_or_hash(database_url: str) -> None:
    with connect(database_url, role=roles.OPERATOR, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO audit_log (seq, prev_hash, row_hash, at, actor, action, entity, entity_id)"
            " VALUES (99, '\\x00', '\\x01', '2000-01-01', 'ops-1', 'test.act', 'thing', '1')"
        )
        seq, at = conn.execute("SELECT seq, at FROM audit_log").fetchone() or (None, None)
    assert seq == 1 and at is not None and at.year >= 2025
    assert verdict(database_url).ok


def test_a_modified_row_is_found(database_url: str) -> None:
    append(database_url, 5)
    as_owner(database_url, "UPDATE audit_log SET detail = '{\"n\": 7}' WHERE seq = 3")
    assert problems(database_url) == [(3, "altered")]


def test_a_deleted_row_is_found(database_url: str) -> None:
    append(database_url, 5)
    as_owner(database_url, "DELETE FROM audit_log WHERE seq = 2")
    assert problems(database_url) == [(2, "removed")]


def test_an_inserted_row_is_found(database_url: str) -> None:
    append(database_url, 5)
    # A forged row at position 3 with a hash computed the database's way, the later rows moved up by one.
    as_owner(database_url, "UPDATE audit_log SET seq = seq + 100 WHERE seq >= 3")
    as_owner(database_url, "UPDATE audit_log SET seq = seq - 99 WHERE seq > 100")
    as_owner(
        database_url,
        "INSERT INTO audit_log (seq, prev_hash, row_hash, at, actor, action, entity, entity_id, detail)"
        " SELECT 3, p.row_hash, audit_row_hash(3, p.row_hash, %s, 'ghost', 'test.act', 'thing', 'x', '{}'),"
        " %s, 'ghost', 'test.act', 'thing', 'x', '{}' FROM audit_log p WHERE p.seq = 2",
        (datetime.now(UTC), datetime.now(UTC)),
    )
    assert problems(database_url) == [(3, "inserted")]


def test_rows_removed_from_the_end_are_found_with_the_kept_head(database_url: str) -> None:
    append(database_url, 5)
    kept = verdict(database_url).head
    as_owner(database_url, "DELETE FROM audit_log WHERE seq >= 4")
    assert problems(database_url) == [(4, "removed"), (5, "removed")]  # the database's head still says 5
    as_owner(database_url, REWIND_HEAD)
    assert problems(database_url) == []
    assert problems(database_url, expect=kept) == [(4, "removed"), (5, "removed")]


def test_nobody_but_the_owner_changes_the_log(database_url: str) -> None:
    append(database_url, 1, role=roles.CONSUMER)
    for role in (roles.CONSUMER, roles.NIGHTLY, roles.OPERATOR, roles.DASHBOARD):
        for statement in ("DELETE FROM audit_log", "UPDATE audit_log SET actor = 'x'", "TRUNCATE audit_log"):
            with (
                connect(database_url, role=role, autocommit=True) as conn,
                pytest.raises(psycopg.errors.InsufficientPrivilege),
            ):
                conn.execute(statement)
        with (
            connect(database_url, role=role, autocommit=True) as conn,
            pytest.raises(psycopg.errors.InsufficientPrivilege),
        ):
            conn.execute("UPDATE audit_chain_head SET seq = 0")
    # the owner is refused by the append-only trigger
    with (
        psycopg.connect(database_url, autocommit=True) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute("DELETE FROM audit_log")
    assert verdict(database_url).ok


def test_concurrent_writers_chain_correctly(database_url: str) -> None:
    errors: list[BaseException] = []

    def writer(i: int) -> None:
        try:
            append(
                database_url,
                25,
                actor=f"ops-{i}",
                role=(roles.OPERATOR, roles.CONSUMER, roles.NIGHTLY)[i % 3],
            )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    found = verdict(database_url)
    assert found.ok and found.rows == 150 and found.head.seq == 150


def test_a_rolled_back_append_leaves_no_gap(database_url: str) -> None:
    with connect(database_url, role=roles.OPERATOR) as conn:
        record_action(conn, actor="ops-1", action="test.act", entity="thing", entity_id="gone")
        conn.rollback()
    append(database_url, 2)
    with psycopg.connect(database_url) as conn:
        assert [r[0] for r in conn.execute("SELECT seq FROM audit_log ORDER BY seq")] == [1, 2]
    assert verdict(database_url).ok


def audit_cli(database_url: str, tmp_path: Path, *args: str) -> tuple[int, str, str]:
    env = {
        "ISSUANCE_DATABASE_URL": database_url,
        "ISSUANCE_KAFKA_BOOTSTRAP": "127.0.0.1:9",  # never reached: the audit commands use only PostgreSQL
        "ISSUANCE_STATE_DIR": str(tmp_path / "state"),
    }
    result = CliRunner().invoke(app, ["audit", *args], env=env)
    return result.exit_code, result.stdout, result.stderr


def test_audit_verify_and_show_on_the_command_line(database_url: str, tmp_path: Path) -> None:
    append(database_url, 3, actor="li.wei")
    append(database_url, 1, actor="wang.fang")
    code, out, err = audit_cli(database_url, tmp_path, "verify", "--json")
    assert code == 0, err
    verdict_now = json.loads(out)
    assert verdict_now["ok"] and verdict_now["rows"] == 4 and verdict_now["head"]["text"].startswith("4:")
    kept = verdict_now["head"]["text"]

    code, out, _ = audit_cli(database_url, tmp_path, "show", "--actor", "li.wei", "--limit", "2", "--json")
    assert code == 0 and [e["seq"] for e in json.loads(out)] == [2, 3]
    code, out, _ = audit_cli(database_url, tmp_path, "show", "--action", "test.*")
    assert code == 0 and len(out.splitlines()) == 4 and "wang.fang" in out

    as_owner(database_url, "UPDATE audit_log SET actor = 'someone' WHERE seq = 2")
    as_owner(database_url, "DELETE FROM audit_log WHERE seq = 4")
    as_owner(database_url, REWIND_HEAD)
    code, out, _ = audit_cli(database_url, tmp_path, "verify", "--expect-head", kept)
    assert code == 1
    assert "seq 2: altered" in out and "seq 4: removed" in out and "NOT intact" in out
    code, _, err = audit_cli(database_url, tmp_path, "verify", "--expect-head", "4:nothex")
    assert code == 2 and "--expect-head" in err


def test_an_open_transaction_does_not_hold_the_chain(database_url: str) -> None:
    with (
        connect(database_url, role=roles.CONSUMER) as early,
        connect(database_url, role=roles.NIGHTLY) as late,
    ):
        record_action(early, actor="service:consumer", action="test.act", entity="thing", entity_id="early")
        late.execute("SET lock_timeout = '2s'")
        record_action(late, actor="service:nightly", action="test.act", entity="thing", entity_id="late")
        late.commit()  # not waiting for `early`, still open
        early.commit()
    with psycopg.connect(database_url) as conn:
        order = conn.execute("SELECT entity_id FROM audit_log ORDER BY seq").fetchall()
    assert order == [("late",), ("early",)]
    assert verdict(database_url).ok


def test_a_row_written_around_the_chain_is_found(database_url: str) -> None:
    append(database_url, 2)
    as_owner(
        database_url, "INSERT INTO audit_log (actor, action, entity, entity_id) VALUES ('x', 'y', 'z', '1')"
    )
    assert problems(database_url) == [(0, "inserted")]
