"""Blind-index key rotation: recompute every blind index and keyed digest of the schema under a new key.

A blind index cannot be converted from one key to another; each is recomputed from the value it indexes,
opened from its envelope (the data keys do not change). The new key is ISSUANCE_BLIND_INDEX_KEY, the one
being replaced ISSUANCE_PREVIOUS_BLIND_INDEX_KEY: the old key tells a row not yet rotated from one already
rotated and, checked on the first person before anything is written, proves the configuration is the one the
stored indexes were made with. A row whose stored value already is the new one is skipped, which keeps a
person's row (keyed by its index) from being rotated twice when its new key sorts after the walk's position.

What is recomputed, in this order:
- persons: person_key (the index of the ID number; the registry's person_cards follow by ON UPDATE CASCADE)
  and fingerprint (the digest of ID number and name);
- applications: person_key and content_digest (the digest of the record's content, rebuilt from the row);
- cards: person_key, copied from its application;
- bank_accounts and bank_sim.accounts: account_index (the index of the account number).

Until the rotation finishes, the night and the consumers refuse to start (key_rotation_repo's guard).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta, timezone
from typing import Any

from psycopg import sql

from issuance.crypto import Vault
from issuance.domain.duplicates import content_parts
from issuance.domain.model import Applicant, Application, ApplicationType, Channel, Material
from issuance.errors import ConfigurationError
from issuance.store import key_rotation_repo as repo
from issuance.store.rotation import Conn, Progress, Walk, _quiet, walk


def rotate_blind_index_key(
    conn: Conn,
    vault: Vault,
    previous: Vault,
    *,
    operator: str,
    lookup_lock_classes: Sequence[int] = (),
    batch_size: int = 1_000,
    progress: Progress = _quiet,
) -> dict[str, int]:
    """Recompute every blind index and keyed digest under `vault`'s blind-index key (`previous` holds the
    old one); "table.column" -> rows rewritten. Holds the nightly lock; audited with the operator.

    `lookup_lock_classes`: classes of the advisory locks held by running processes that look blind indexes
    up (the consumers' group locks). They are checked after the rotation is marked started, and those
    processes check the mark after taking their lock, so neither starts beside the other."""
    if previous.blind_index_key_id == vault.blind_index_key_id:
        raise ConfigurationError(
            "ISSUANCE_PREVIOUS_BLIND_INDEX_KEY equals ISSUANCE_BLIND_INDEX_KEY: set the new key as "
            "ISSUANCE_BLIND_INDEX_KEY and the old one as ISSUANCE_PREVIOUS_BLIND_INDEX_KEY"
        )
    with repo.beside_no_night(conn):
        _check_previous_key(conn, vault, previous)
        rotation = repo.begin(conn, repo.BLIND_INDEX_KEY, vault.blind_index_key_id, operator=operator)
        repo.refuse_beside_lock_holders(conn, lookup_lock_classes)
        rewritten = {
            w.name: walk(conn, rotation.rotation_id, w, batch_size=batch_size, progress=progress)
            for w in _walks(vault)
        }
        repo.finish(conn, rotation, operator=operator, rewritten=rewritten)
    return rewritten


def _check_previous_key(conn: Conn, vault: Vault, previous: Vault) -> None:
    """Refuse before writing anything when a stored person index matches neither key."""
    row = conn.execute("SELECT person_key, id_number_enc FROM persons LIMIT 1").fetchone()
    conn.commit()
    if row is None:
        return
    id_number = vault.decrypt(row[1])
    if bytes(row[0]) not in (previous.blind_index(id_number), vault.blind_index(id_number)):
        raise ConfigurationError(
            "the stored blind indexes were made with neither ISSUANCE_BLIND_INDEX_KEY nor "
            "ISSUANCE_PREVIOUS_BLIND_INDEX_KEY: set the key they were made with as the previous one"
        )


def _columns(*names: str) -> sql.Composable:
    return sql.SQL(", ").join(map(sql.Identifier, names))


def _update(conn: Conn, statement: str, changes: list[tuple[Any, ...]]) -> int:
    if changes:
        with conn.cursor() as cur:
            cur.executemany(statement, changes)
    return len(changes)


def _walks(vault: Vault) -> list[Walk]:
    def persons(conn: Conn, rows: list[tuple[Any, ...]]) -> int:
        changes = []
        for key, id_enc, name_enc, fingerprint in rows:
            id_number = vault.decrypt(id_enc)
            new_key = vault.blind_index(id_number)
            if bytes(key) == new_key:
                continue  # rotated already (its new key sorts after the walk's position)
            digest = vault.digest(id_number, vault.decrypt(name_enc)) if fingerprint is not None else None
            changes.append((new_key, digest, key))
        return _update(
            conn, "UPDATE persons SET person_key = %s, fingerprint = %s WHERE person_key = %s", changes
        )

    def applications(conn: Conn, rows: list[tuple[Any, ...]]) -> int:
        changes = []
        for row in rows:
            application_id, key, id_enc, has_digest = row[0], row[1], row[2], row[-1]
            new_key = vault.blind_index(vault.decrypt(id_enc))
            if bytes(key) == new_key:
                continue
            digest = vault.digest(*content_parts(_stored_application(vault, row))) if has_digest else None
            changes.append((new_key, digest, application_id))
        return _update(
            conn,
            "UPDATE applications SET person_key = %s, content_digest = %s WHERE application_id = %s",
            changes,
        )

    def cards(conn: Conn, rows: list[tuple[Any, ...]]) -> int:
        result = conn.execute(
            "UPDATE cards c SET person_key = a.person_key FROM applications a"
            " WHERE a.application_id = c.application_id AND c.application_id = ANY(%s)"
            " AND c.person_key <> a.person_key",
            ([row[0] for row in rows],),
        )
        return result.rowcount

    def accounts(table: str, n_keys: int) -> Any:
        where = " AND ".join(f"{k} = %s" for k in ("bank_code", "application_id")[2 - n_keys :])

        def rewrite(conn: Conn, rows: list[tuple[Any, ...]]) -> int:
            changes = []
            for row in rows:
                index, enc = row[n_keys], row[n_keys + 1]
                new_index = vault.blind_index(vault.decrypt(enc))
                if index is None or bytes(index) != new_index:
                    changes.append((new_index, *row[:n_keys]))
            return _update(conn, f"UPDATE {table} SET account_index = %s WHERE {where}", changes)

        return rewrite

    application_columns = _columns(
        "person_key",
        "id_number_enc",
        "application_type",
        "branch_code",
        "bank_code",
        "channel",
        "name_enc",
        "phone_enc",
        "guardian_id_enc",
        "card_number",
        "materials",
        "submitted_at",
        "submitted_utc_offset",
    )
    has_digest = sql.SQL("content_digest IS NOT NULL")
    return [
        Walk(
            "persons.person_key",
            ("persons",),
            ("person_key",),
            sql.SQL("{}, fingerprint").format(_columns("id_number_enc", "name_enc")),
            persons,
        ),
        Walk(
            "applications.person_key",
            ("applications",),
            ("application_id",),
            sql.SQL("{}, {}").format(application_columns, has_digest),
            applications,
        ),
        Walk("cards.person_key", ("cards",), ("application_id",), _columns("person_key"), cards),
        Walk(
            "bank_accounts.account_index",
            ("bank_accounts",),
            ("application_id",),
            _columns("account_index", "account_number_enc"),
            accounts("bank_accounts", 1),
            sql.SQL("account_number_enc IS NOT NULL"),
        ),
        Walk(
            "bank_sim.accounts.account_index",
            ("bank_sim", "accounts"),
            ("bank_code", "application_id"),
            _columns("account_index", "account_number_enc"),
            accounts("bank_sim.accounts", 2),
        ),
    ]


def _stored_application(vault: Vault, row: tuple[Any, ...]) -> Application:
    """The application of an `applications` row as the night read it (for its content digest)."""
    (application_id, _key, id_enc, kind, branch, bank, channel, name_enc, phone_enc, guardian_enc) = row[:10]
    card_number, materials, submitted_at, utc_offset = row[10:14]
    local = submitted_at.astimezone(timezone(timedelta(seconds=int(utc_offset or 0))))
    return Application(
        application_id,
        ApplicationType(kind),
        branch,
        bank,
        Channel(channel),
        Applicant(
            vault.decrypt(id_enc),
            vault.decrypt(name_enc),
            vault.decrypt(phone_enc) if phone_enc is not None else "",
        ),
        tuple(Material(m) for m in materials),
        local,
        card_number,
        vault.decrypt(guardian_enc) if guardian_enc is not None else None,
    )
