"""Schema migrations: the numbered SQL files of this package, applied once each, in order, under a lock.

Each file runs in its own transaction and is recorded in schema_migrations with its SHA-256, so that a
migration edited after it was applied is refused instead of silently diverging. A session advisory lock
serializes concurrent `issuance setup` runs.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from importlib import resources

import psycopg
from psycopg.rows import TupleRow

from issuance.errors import IssuanceError
from issuance.store.db import connect, with_role

log = logging.getLogger(__name__)

# pg_advisory_lock key of the migration runner ("issuance" as a number).
MIGRATION_LOCK_KEY = 0x6973_7375_616E_6365

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     text PRIMARY KEY,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationError(IssuanceError):
    """The database schema cannot be brought to this version's schema."""


class MigrationChecksumMismatch(MigrationError):
    """A migration that was already applied has changed since."""


class SchemaOutdated(MigrationError):
    """The database lacks migrations this version needs: run `issuance setup`."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: str  # the file name without .sql, e.g. "0001_initial"
    sql: str
    checksum: str  # hex SHA-256 of the file's bytes


def available_migrations() -> list[Migration]:
    """Every migrations/*.sql file shipped with the package, in version order."""
    folder = resources.files("issuance.store").joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        if entry.is_file() and entry.name.endswith(".sql"):
            data = entry.read_bytes()
            found.append(Migration(entry.name[:-4], data.decode(), hashlib.sha256(data).hexdigest()))
    return sorted(found, key=lambda m: m.version)


def applied_migrations(conn: psycopg.Connection[TupleRow]) -> dict[str, str]:
    """version -> checksum of what the database has applied (empty when never migrated)."""
    exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return {}
    rows = conn.execute("SELECT version, checksum FROM schema_migrations").fetchall()
    return {str(version): str(checksum) for version, checksum in rows}


def _check_checksums(applied: dict[str, str], available: list[Migration]) -> None:
    for migration in available:
        recorded = applied.get(migration.version)
        if recorded is not None and recorded != migration.checksum:
            raise MigrationChecksumMismatch(
                f"migration {migration.version} was applied with checksum {recorded[:12]}… but the file now "
                f"has {migration.checksum[:12]}…; add a new migration instead of editing an applied one"
            )


def apply_migrations(conninfo: str) -> list[str]:
    """Apply the migrations the database lacks; returns the versions applied now (empty when current)."""
    newly: list[str] = []
    available = available_migrations()
    # Migrations run as the login itself (the schema's owner), never in a process's role.
    owner = with_role(conninfo, None)
    with connect(owner, autocommit=True, lock_timeout="5min", application_name="issuance-migrate") as conn:
        try:
            conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        except psycopg.errors.LockNotAvailable as exc:
            raise MigrationError("another `issuance setup` held the migration lock for 5 minutes") from exc
        try:
            conn.execute(_CREATE_TABLE)
            applied = applied_migrations(conn)
            _check_checksums(applied, available)
            unknown = sorted(set(applied) - {m.version for m in available})
            if unknown:
                log.warning("database has migrations this version does not know: %s", ", ".join(unknown))
            for migration in available:
                if migration.version in applied:
                    continue
                with conn.transaction():
                    conn.execute(migration.sql.encode())
                    conn.execute(
                        "INSERT INTO schema_migrations (version, checksum) VALUES (%s, %s)",
                        (migration.version, migration.checksum),
                    )
                log.info("applied migration %s", migration.version)
                newly.append(migration.version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
    return newly


def ensure_current(conn: psycopg.Connection[TupleRow]) -> None:
    """Raise SchemaOutdated (or MigrationChecksumMismatch) unless every shipped migration is applied."""
    available = available_migrations()
    applied = applied_migrations(conn)
    _check_checksums(applied, available)
    missing = [m.version for m in available if m.version not in applied]
    if missing:
        raise SchemaOutdated(f"the database lacks migrations {', '.join(missing)}: run `issuance setup`")
