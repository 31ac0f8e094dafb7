"""Rotating the data key re-encrypts stored envelopes so that the old key can be retired."""

from __future__ import annotations

import os

from issuance.crypto import Vault
from issuance.store.consumer_repo import DeadLetter, add_dead_letter
from issuance.store.db import connect
from issuance.store.reference_load import load_reference
from issuance.store.reference_repo import lookup_persons
from issuance.store.rotation import rotate_all
from tests import factories as f

OLD, NEW, BLIND = os.urandom(32), os.urandom(32), os.urandom(32)


def test_rotation_rewrites_old_envelopes_once(database_url: str) -> None:
    old = Vault([("old", OLD)], BLIND)
    rotating = Vault([("new", NEW), ("old", OLD)], BLIND)
    new_only = Vault([("new", NEW)], BLIND)
    with connect(database_url) as conn:
        load_reference(conn, old, f.reference(), actor="test", source="test")
        add_dead_letter(
            conn,
            DeadLetter("t", 0, 1, "decode", "MALFORMED_MESSAGE", "not Avro", old.encrypt_bytes(b"\x00raw")),
        )
        conn.commit()
        first = rotate_all(conn, rotating)
        again = rotate_all(conn, rotating)
        key = new_only.blind_index(f.ADULT_ID)
        assert lookup_persons(conn, new_only, [key]) == {key: f.person()}
        row = conn.execute("SELECT payload_enc FROM dead_letters").fetchone()
    assert first["persons.id_number_enc"] == 1 and first["persons.name_enc"] == 1
    assert first["dead_letters.payload_enc"] == 1
    assert set(again.values()) == {0}
    assert row is not None and new_only.decrypt_bytes(row[0]) == b"\x00raw"
