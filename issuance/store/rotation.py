"""Key rotation at rest: re-encrypt, under the current data key, the envelopes sealed under older keys.

After a new key is put first in ISSUANCE_DATA_KEYS every process encrypts with it and still decrypts with the
old ones; this rewrites the stored envelopes in batches (each committed) so that the old key can then be
retired. Rows already under the current key are skipped by the query, so a rotation can be resumed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from issuance.crypto import Vault


@dataclass(frozen=True, slots=True)
class EncryptedColumn:
    table: tuple[str, ...]  # ("schema", "table") or ("table",)
    column: str
    keys: tuple[str, ...]  # primary key columns
    where: str | None = None  # a column that must be true for the value to be an envelope


ENCRYPTED_COLUMNS: tuple[EncryptedColumn, ...] = (
    EncryptedColumn(("persons",), "id_number_enc", ("person_key",)),
    EncryptedColumn(("persons",), "name_enc", ("person_key",)),
    EncryptedColumn(("applications",), "id_number_enc", ("application_id",)),
    EncryptedColumn(("applications",), "name_enc", ("application_id",)),
    EncryptedColumn(("applications",), "phone_enc", ("application_id",)),
    EncryptedColumn(("applications",), "guardian_id_enc", ("application_id",)),
    EncryptedColumn(("bank_accounts",), "account_number_enc", ("application_id",)),
    EncryptedColumn(("dead_letters",), "payload_enc", ("id",)),
    EncryptedColumn(("outbox",), "payload", ("event_id",), where="payload_encrypted"),
    EncryptedColumn(("bank_sim", "accounts"), "account_number_enc", ("bank_code", "application_id")),
)


def rotate_column(
    conn: psycopg.Connection[TupleRow], vault: Vault, target: EncryptedColumn, *, batch_size: int = 10_000
) -> int:
    """Re-encrypt every value of one column not sealed under the current key; returns how many."""
    table = sql.Identifier(*target.table)
    column = sql.Identifier(target.column)
    keys = sql.SQL(", ").join(map(sql.Identifier, target.keys))
    condition = sql.SQL("{col} IS NOT NULL AND substring({col} FROM 1 FOR %(n)s) <> %(prefix)s").format(
        col=column
    )
    if target.where:
        condition = sql.SQL("{} AND {}").format(condition, sql.Identifier(target.where))
    select = sql.SQL("SELECT {keys}, {col} FROM {table} WHERE {cond} LIMIT %(limit)s").format(
        keys=keys, col=column, table=table, cond=condition
    )
    update = sql.SQL("UPDATE {table} SET {col} = %s WHERE ({keys}) = ({params})").format(
        table=table, col=column, keys=keys, params=sql.SQL(", ").join(sql.Placeholder() * len(target.keys))
    )
    prefix = vault.current_prefix
    params = {"n": len(prefix), "prefix": prefix, "limit": batch_size}
    done = 0
    while True:
        with conn.transaction():
            rows = conn.execute(select, params).fetchall()
            if not rows:
                return done
            with conn.cursor() as cur:
                cur.executemany(update, [(vault.reencrypt(row[-1]), *row[:-1]) for row in rows])
        done += len(rows)


def rotate_all(
    conn: psycopg.Connection[TupleRow], vault: Vault, columns: Sequence[EncryptedColumn] = ENCRYPTED_COLUMNS
) -> dict[str, int]:
    """Rotate every encrypted column of the schema; "table.column" -> values re-encrypted."""
    return {".".join((*c.table, c.column)): rotate_column(conn, vault, c) for c in columns}
