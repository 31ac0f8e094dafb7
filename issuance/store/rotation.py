"""Data-key rotation at rest: re-encrypt, under the current (first) data key, every envelope sealed under an
older one, so that the old key can then be removed from ISSUANCE_DATA_KEYS.

Each column is walked in primary-key order in batches; a batch rewrites the envelopes of its rows that are not
under the current key and records its last primary key in the rotation's progress row, in one transaction. A
killed rotation started again continues after that row and ends in the same state as an uninterrupted one.
`walk` is the engine the blind-index rotation (blind_index_rotation.py) shares.

The staging tables of the night are not listed: they hold only the run in flight (a rotation refuses to start
while one is) and are emptied before a run stages.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import Connection, sql

from issuance.crypto import Vault
from issuance.store import key_rotation_repo as repo

Conn = Connection[Any]
# (column, rows walked, rows in the table): called after each committed batch.
Progress = Callable[[str, int, int], None]


def _quiet(column: str, done: int, total: int) -> None:
    return None


@dataclass(frozen=True, slots=True)
class EncryptedColumn:
    table: tuple[str, ...]  # ("schema", "table") or ("table",)
    column: str
    keys: tuple[str, ...]  # primary key columns
    where: str | None = None  # a column that must be true for the value to be an envelope

    @property
    def name(self) -> str:
        return ".".join((*self.table, self.column))


# Every column of the schema that holds a Vault envelope (tests/integration/test_key_rotation.py checks the
# list against the bytea columns of the migrated schema).
ENCRYPTED_COLUMNS: tuple[EncryptedColumn, ...] = (
    EncryptedColumn(("persons",), "id_number_enc", ("person_key",)),
    EncryptedColumn(("persons",), "name_enc", ("person_key",)),
    EncryptedColumn(("applications",), "id_number_enc", ("application_id",)),
    EncryptedColumn(("applications",), "name_enc", ("application_id",)),
    EncryptedColumn(("applications",), "phone_enc", ("application_id",)),
    EncryptedColumn(("applications",), "guardian_id_enc", ("application_id",)),
    EncryptedColumn(("cards",), "holder_sex_enc", ("application_id",)),
    EncryptedColumn(("cards",), "holder_birth_date_enc", ("application_id",)),
    EncryptedColumn(("bank_accounts",), "account_number_enc", ("application_id",)),
    EncryptedColumn(("dead_letters",), "payload_enc", ("id",)),
    EncryptedColumn(("dead_letters",), "headers_enc", ("id",)),
    EncryptedColumn(("outbox",), "payload", ("event_id",), where="payload_encrypted"),
    EncryptedColumn(("bank_sim", "accounts"), "account_number_enc", ("bank_code", "application_id")),
)


@dataclass(frozen=True, slots=True)
class Walk:
    """One pass over a table in primary-key order: `select` reads the rows after a position (its first
    `len(keys)` columns are the primary key), `rewrite` rewrites those of a batch that need it (how many)."""

    name: str  # the progress row, "table.column"
    table: tuple[str, ...]
    keys: tuple[str, ...]
    columns: sql.Composable  # what `rewrite` needs after the keys
    rewrite: Callable[[Conn, list[tuple[Any, ...]]], int]
    where: sql.Composable | None = None


def walk(
    conn: Conn, rotation_id: int, w: Walk, *, batch_size: int = 1_000, progress: Progress = _quiet
) -> int:
    """Run one pass to its end (or on from where an earlier run of it stopped); rows rewritten in all."""
    state = repo.column_progress(conn, rotation_id, w.name)
    conn.commit()
    if state.finished:
        return state.rows_done
    table = sql.Identifier(*w.table)
    keys = sql.SQL(", ").join(map(sql.Identifier, w.keys))
    after = sql.SQL("({}) > ({})").format(keys, sql.SQL(", ").join(sql.Placeholder() * len(w.keys)))
    conditions = [c for c in (w.where,) if c is not None]
    first = _select(table, keys, w.columns, conditions)
    following = _select(table, keys, w.columns, [*conditions, after])
    total_row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(table)).fetchone()
    total = int(total_row[0]) if total_row else 0
    position, done, walked = state.position, state.rows_done, 0
    while True:
        if position is None:
            rows = conn.execute(first, (batch_size,)).fetchall()
        else:
            rows = conn.execute(following, (*position, batch_size)).fetchall()
        if not rows:
            repo.finish_column(conn, rotation_id, w.name)
            conn.commit()
            return done
        rewritten = w.rewrite(conn, rows)
        position = [_position_text(value) for value in rows[-1][: len(w.keys)]]
        repo.advance(conn, rotation_id, w.name, position, rewritten)
        conn.commit()
        done += rewritten
        walked += len(rows)
        progress(w.name, walked, total)


def _select(
    table: sql.Composable, keys: sql.Composable, columns: sql.Composable, conditions: Sequence[sql.Composable]
) -> sql.Composed:
    where = sql.SQL(" WHERE {}").format(sql.SQL(" AND ").join(conditions)) if conditions else sql.SQL("")
    return sql.SQL("SELECT {keys}, {columns} FROM {table}{where} ORDER BY {keys} LIMIT %s").format(
        keys=keys, columns=columns, table=table, where=where
    )


def _position_text(value: object) -> str:
    """A primary-key value as text PostgreSQL reads back as the column's type (bytea in hex form)."""
    if isinstance(value, bytes | memoryview):
        return "\\x" + bytes(value).hex()
    return str(value)


def data_key_walk(vault: Vault, target: EncryptedColumn) -> Walk:
    """The pass that re-seals one column's envelopes not under the vault's current key."""
    table = sql.Identifier(*target.table)
    update = sql.SQL("UPDATE {table} SET {col} = %s WHERE ({keys}) = ({params})").format(
        table=table,
        col=sql.Identifier(target.column),
        keys=sql.SQL(", ").join(map(sql.Identifier, target.keys)),
        params=sql.SQL(", ").join(sql.Placeholder() * len(target.keys)),
    )
    n = len(target.keys)

    def rewrite(conn: Conn, rows: list[tuple[Any, ...]]) -> int:
        changes = [
            (vault.reencrypt(row[n]), *row[:n])
            for row in rows
            if row[n] is not None and vault.needs_rotation(row[n])
        ]
        if changes:
            with conn.cursor() as cur:
                cur.executemany(update, changes)
        return len(changes)

    where = sql.Identifier(target.where) if target.where else None
    return Walk(target.name, target.table, target.keys, sql.Identifier(target.column), rewrite, where)


def rotate_data_key(
    conn: Conn,
    vault: Vault,
    *,
    operator: str,
    columns: Sequence[EncryptedColumn] = ENCRYPTED_COLUMNS,
    batch_size: int = 1_000,
    progress: Progress = _quiet,
) -> dict[str, int]:
    """Re-seal every envelope of every encrypted column under the current data key; "table.column" -> values
    rewritten (over every run of this rotation). Holds the nightly lock; audited with the operator."""
    with repo.beside_no_night(conn):
        rotation = repo.begin(conn, repo.DATA_KEY, vault.primary_key_id, operator=operator)
        rewritten = {
            c.name: walk(
                conn, rotation.rotation_id, data_key_walk(vault, c), batch_size=batch_size, progress=progress
            )
            for c in columns
        }
        repo.finish(conn, rotation, operator=operator, rewritten=rewritten)
    return rewritten
