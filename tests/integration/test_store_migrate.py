"""Migrations apply once, in order, each in its own transaction, safely from concurrent `setup`s."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from issuance.store import migrate
from issuance.store.db import connect
from issuance.store.migrate import (
    Migration,
    MigrationChecksumMismatch,
    SchemaOutdated,
    apply_migrations,
    available_migrations,
    ensure_current,
)


@pytest.fixture
def empty_database_url(database_url: str) -> Iterator[str]:
    """A database with nothing in it, on the same server as `database_url`."""
    name = f"empty_{uuid.uuid4().hex[:12]}"
    with connect(database_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield make_conninfo(database_url, dbname=name)
    with connect(database_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def versions() -> list[str]:
    return [m.version for m in available_migrations()]


def recorded(url: str) -> list[str]:
    with connect(url) as conn:
        return [str(r[0]) for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]


def test_shipped_migrations_are_numbered_and_start_with_the_initial_schema() -> None:
    found = versions()
    assert found[0] == "0001_initial"
    assert found == sorted(found) and len(set(found)) == len(found)


def test_applies_everything_once_then_nothing(empty_database_url: str) -> None:
    assert apply_migrations(empty_database_url) == versions()
    assert apply_migrations(empty_database_url) == []
    assert recorded(empty_database_url) == versions()
    with connect(empty_database_url) as conn:
        ensure_current(conn)


def test_the_test_database_is_already_current(database_url: str) -> None:
    assert apply_migrations(database_url) == []


def test_concurrent_setups_apply_each_migration_once(empty_database_url: str) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: apply_migrations(empty_database_url), range(4)))
    assert sorted(results, key=len) == [[], [], [], versions()]
    assert recorded(empty_database_url) == versions()


def test_an_edited_applied_migration_is_refused(database_url: str) -> None:
    with connect(database_url) as conn:
        conn.execute("UPDATE schema_migrations SET checksum = 'edited' WHERE version = '0001_initial'")
    with pytest.raises(MigrationChecksumMismatch, match="0001_initial"):
        apply_migrations(database_url)
    with connect(database_url) as conn, pytest.raises(MigrationChecksumMismatch):
        ensure_current(conn)


def test_an_unmigrated_database_is_reported_as_outdated(empty_database_url: str) -> None:
    with connect(empty_database_url) as conn, pytest.raises(SchemaOutdated, match="issuance setup"):
        ensure_current(conn)


def test_a_failing_migration_leaves_no_trace_and_releases_the_lock(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = Migration("9999_broken", "CREATE TABLE half_done (a int); SELECT 1 / 0;", "0" * 64)
    shipped = available_migrations()
    monkeypatch.setattr(migrate, "available_migrations", lambda: [*shipped, broken])
    with pytest.raises(psycopg.errors.DivisionByZero):
        apply_migrations(database_url)
    with connect(database_url) as conn:
        assert conn.execute("SELECT to_regclass('half_done')").fetchone() == (None,)
    assert "9999_broken" not in recorded(database_url)
    monkeypatch.setattr(migrate, "available_migrations", lambda: shipped)
    assert apply_migrations(database_url) == []
