"""The registered public keys of every party (table party_keys): register, revoke, list, and the Directory
that senders seal to and verifiers check signatures against."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from psycopg import Connection
from psycopg.rows import TupleRow

from issuance.errors import ConfigurationError, InputError
from issuance.settings import Settings
from issuance.store.audit import record_action
from issuance.trust.keys import Directory, PublicKeys
from issuance.trust.keystore import bureau_keys, generate_partner_keys
from issuance.trust.parties import BUREAU, Party, bank, branch, vendor


@dataclass(frozen=True, slots=True)
class RegisteredKey:
    """One row of party_keys, without the key bytes (what `issuance keys list` shows)."""

    key_id: str
    party: str
    purpose: str
    registered_at: datetime
    registered_by: str
    revoked_at: datetime | None


def register(conn: Connection[TupleRow], public: PublicKeys, *, actor: str) -> list[str]:
    """Register a party's two public keys; the ids newly registered (none when both already were).

    Refused (ConfigurationError): a key id registered with other key bytes or for another party, a key that
    was revoked (generate a new one), the same public key registered for another party."""
    added: list[str] = []
    with conn.transaction():
        for kid, party, purpose, raw in public.entries():
            row = conn.execute(
                "SELECT party, purpose, public_key, revoked_at FROM party_keys WHERE key_id = %s", (kid,)
            ).fetchone()
            if row is not None:
                if (row[0], row[1], bytes(row[2])) != (str(party), purpose.value, raw):
                    raise ConfigurationError(
                        f"key id {kid} is already registered for {row[0]} with another key"
                    )
                if row[3] is not None:
                    raise ConfigurationError(
                        f"key {kid} was revoked; generate a new key pair for {party} and register that"
                    )
                continue
            other = conn.execute(
                "SELECT party FROM party_keys WHERE public_key = %s AND purpose = %s", (raw, purpose.value)
            ).fetchone()
            if other is not None:
                raise ConfigurationError(
                    f"the {purpose.value} key of {kid} is already registered for {other[0]}"
                )
            conn.execute(
                "INSERT INTO party_keys (key_id, party, purpose, public_key, registered_by) "
                "VALUES (%s, %s, %s, %s, %s)",
                (kid, str(party), purpose.value, raw, actor),
            )
            record_action(
                conn,
                actor=actor,
                action="party_key.registered",
                entity="party_key",
                entity_id=kid,
                detail={"party": str(party), "purpose": purpose.value},
            )
            added.append(kid)
    return added


def revoke(conn: Connection[TupleRow], key_id: str, *, actor: str) -> bool:
    """Revoke a key from now on (verifiers built afterwards refuse it); False when it already was.

    InputError when no such key is registered."""
    with conn.transaction():
        row = conn.execute(
            "SELECT party, purpose, revoked_at FROM party_keys WHERE key_id = %s", (key_id,)
        ).fetchone()
        if row is None:
            raise InputError(f"no key {key_id} is registered (issuance keys list shows the key ids)")
        if row[2] is not None:
            return False
        conn.execute("UPDATE party_keys SET revoked_at = now() WHERE key_id = %s", (key_id,))
        record_action(
            conn,
            actor=actor,
            action="party_key.revoked",
            entity="party_key",
            entity_id=key_id,
            detail={"party": row[0], "purpose": row[1]},
        )
    return True


def load_directory(conn: Connection[TupleRow]) -> Directory:
    """Every unrevoked key, oldest first (so a party's newest seal key is the one sealed to)."""
    rows = conn.execute(
        "SELECT key_id, party, purpose, public_key FROM party_keys WHERE revoked_at IS NULL "
        "ORDER BY registered_at, key_id"
    ).fetchall()
    return Directory((str(kid), str(party), str(purpose), bytes(raw)) for kid, party, purpose, raw in rows)


def list_keys(conn: Connection[TupleRow]) -> list[RegisteredKey]:
    """Every registered key, revoked ones included, by party."""
    rows = conn.execute(
        "SELECT key_id, party, purpose, registered_at, registered_by, revoked_at FROM party_keys "
        "ORDER BY party, purpose, registered_at, key_id"
    ).fetchall()
    return [RegisteredKey(*row) for row in rows]


def reference_parties(conn: Connection[TupleRow]) -> list[Party]:
    """The branches, banks and card vendors of the loaded reference data."""
    rows = conn.execute(
        "SELECT 'branch', branch_code FROM branches UNION ALL SELECT 'bank', bank_code FROM banks "
        "UNION ALL SELECT 'vendor', vendor_code FROM vendors"
    ).fetchall()
    make = {"branch": branch, "bank": bank, "vendor": vendor}
    return sorted((make[kind](str(code)) for kind, code in rows), key=str)


def provision_simulated_partners(
    settings: Settings, conn: Connection[TupleRow], parties: Iterable[Party], *, actor: str
) -> Directory:
    """Keys for the bureau and every given partner, generated into keys_dir where missing and registered:
    the simulated partners of the embedded services, the demo and the tests. The Directory afterwards."""
    for party in sorted({BUREAU, *parties}, key=str):
        keys = bureau_keys(settings) if party == BUREAU else generate_partner_keys(settings, party)
        register(conn, keys.public(), actor=actor)
    return load_directory(conn)
