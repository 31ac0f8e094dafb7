"""`issuance keys rotate`: data-key rotation leaves every envelope readable under the new key only,
blind-index rotation keeps every lookup working, both resume after an interruption and end as an
uninterrupted run does, and the night and the consumers refuse to start while a blind-index rotation is
unfinished."""

from __future__ import annotations

import base64
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pydantic import SecretStr

from consumers.serve import GROUP_LOCK_CLASS, only_member
from issuance.crypto import DecryptionFailed, Vault
from issuance.domain.duplicates import content_parts
from issuance.domain.model import Person
from issuance.settings import Settings
from issuance.store.blind_index_rotation import _stored_application, rotate_blind_index_key
from issuance.store.consumer_repo import DeadLetter, add_dead_letter
from issuance.store.db import connect
from issuance.store.key_rotation_repo import BlindIndexRotationUnfinished, RotationRefused
from issuance.store.reference_load import load_reference
from issuance.store.reference_repo import lookup_persons
from issuance.store.rotation import ENCRYPTED_COLUMNS, rotate_data_key
from issuance.store.run_repo import NIGHTLY_LOCK
from pipelines import nightly
from tests import factories as f
from tests.fixtures_nightly import load_reference_file, make_generated, publish_night

OLD, NEW, BLIND, NEW_BLIND = (bytes([n]) * 32 for n in (1, 2, 3, 4))
PEOPLE = 12

# bytea columns that hold no Vault envelope, and why (a new column must be sorted into one of the lists).
NOT_SEALED = {
    "persons.person_key": "blind index (blind-index rotation)",
    "persons.fingerprint": "keyed digest (blind-index rotation)",
    "applications.person_key": "blind index (blind-index rotation)",
    "applications.content_digest": "keyed digest (blind-index rotation)",
    "cards.person_key": "blind index (blind-index rotation)",
    "person_cards.person_key": "blind index (follows persons by ON UPDATE CASCADE)",
    "bank_accounts.account_index": "blind index (blind-index rotation)",
    "bank_sim.accounts.account_index": "blind index (blind-index rotation)",
    "outbox.message_key": "a Kafka message key, no personal data",
    "bank_sim.inbox.answer_payload": "the bank's answer as sent, no personal data",
    "card_event_inbox.digest": "SHA-256 of an event's encoding",
    "branch_sim.cards.receipt_payload": "an event as sent, no personal data",
    "party_keys.public_key": "a party's public key",
    "audit_log.prev_hash": "the audit chain's SHA-256 link",
    "audit_log.row_hash": "the audit chain's SHA-256 of the row",
    "audit_chain_head.row_hash": "the audit chain's head",
    "dashboard_sessions.session_hash": "SHA-256 of a session id",
    "branch_sim.cards.collection_payload": "an event as sent, no personal data",
}


def test_every_sealed_column_of_the_schema_is_rotated(database_url: str) -> None:
    with connect(database_url) as conn:
        rows = conn.execute(
            "SELECT table_schema, table_name, column_name FROM information_schema.columns"
            " JOIN information_schema.tables USING (table_schema, table_name)"
            " WHERE data_type = 'bytea' AND table_type = 'BASE TABLE'"
            " AND table_schema NOT IN ('pg_catalog', 'information_schema')"
        ).fetchall()
    found = {
        (f"{table}.{column}" if schema == "public" else f"{schema}.{table}.{column}")
        for schema, table, column in rows
        if not table.startswith(
            "staged_"
        )  # a run's staging: emptied before a run, rotation refuses beside one
    }
    rotated = {c.name for c in ENCRYPTED_COLUMNS}
    assert found - rotated - set(NOT_SEALED) == set()
    assert rotated <= found


def _fill(conn: psycopg.Connection[Any], vault: Vault) -> None:
    """A value in every encrypted column, as the writers store them."""
    persons = {
        f.id_number(sequence=200 + i): Person(f.id_number(sequence=200 + i), f"张{i}", True)
        for i in range(PEOPLE)
    }
    load_reference(conn, vault, replace(f.reference(), persons=persons), actor="test", source="test")
    for i, id_number in enumerate(persons):
        app_id = f"APP-{i:04d}"
        id_enc, name_enc, phone_enc, guardian_enc = vault.encrypt_many(
            [id_number, f"张{i}", f"1390000{i:04d}", id_number]
        )
        conn.execute(
            "INSERT INTO applications (application_id, application_type, branch_code, bank_code, channel,"
            " person_key, id_number_enc, name_enc, phone_enc, guardian_id_enc, materials, submitted_at,"
            " state, is_open)"
            " VALUES (%s, 'NEW_CARD', %s, %s, 'COUNTER', %s, %s, %s, %s, %s, %s, %s, 'ACCEPTED', false)",
            (
                app_id,
                f.BRANCH,
                f.BANK,
                vault.blind_index(id_number),
                id_enc,
                name_enc,
                phone_enc,
                guardian_enc,
                ["RESIDENT_ID_CARD"],
                datetime(2026, 11, 1, tzinfo=UTC),
            ),
        )
        conn.execute(
            "INSERT INTO cards (application_id, person_key, area_code, bank_code, status, holder_sex_enc,"
            " holder_birth_date_enc) VALUES (%s, %s, %s, %s, 'ORDERED', %s, %s)",
            (
                app_id,
                vault.blind_index(id_number),
                f.AREA,
                f.BANK,
                vault.encrypt("M"),
                vault.encrypt("1980-01-01"),
            ),
        )
        account = f"62220200000000{i:04d}"
        conn.execute(
            "INSERT INTO bank_accounts (application_id, bank_code, sequence, account_index,"
            " account_number_enc) VALUES (%s, %s, %s, %s, %s)",
            (app_id, f.BANK, i, vault.blind_index(account), vault.encrypt(account)),
        )
        conn.execute(
            "INSERT INTO bank_sim.accounts (bank_code, application_id, account_index, account_number_enc,"
            " request_event_id) VALUES (%s, %s, %s, %s, %s)",
            (f.BANK, app_id, vault.blind_index(account), vault.encrypt(account), f"req-{i}"),
        )
        conn.execute(
            "INSERT INTO outbox (event_id, topic, payload, event_type, payload_encrypted)"
            " VALUES (%s, 't', %s, 'ActivationRequested', true), (%s, 't', %s, 'ApplicationDecided', false)",
            (f"ev-{i}", vault.encrypt_bytes(b"avro"), f"plain-{i}", b"\x00plain avro"),
        )
        add_dead_letter(
            conn,
            DeadLetter(
                "t",
                0,
                i,
                "decode",
                "MALFORMED_MESSAGE",
                "x",
                vault.encrypt_bytes(b"raw"),
                headers_enc=vault.encrypt_bytes(b"headers"),
            ),
        )
    conn.commit()


def _envelopes(conn: psycopg.Connection[Any]) -> dict[str, list[bytes]]:
    out = {}
    for c in ENCRYPTED_COLUMNS:
        where = f" AND {c.where}" if c.where else ""
        table = ".".join(c.table)
        rows = conn.execute(f"SELECT {c.column} FROM {table} WHERE {c.column} IS NOT NULL{where}").fetchall()
        out[c.name] = [bytes(r[0]) for r in rows]
    return out


class Stop(Exception):
    """Stands for a kill between two committed batches."""


def stop_after(batches: int) -> Any:
    seen = [0]

    def progress(column: str, done: int, total: int) -> None:
        seen[0] += 1
        if seen[0] >= batches:
            raise Stop

    return progress


def test_data_key_rotation_resumes_and_leaves_nothing_under_the_old_key(database_url: str) -> None:
    old = Vault([("old", OLD)], BLIND)
    rotating = Vault([("new", NEW), ("old", OLD)], BLIND)
    new_only = Vault([("new", NEW)], BLIND)
    with connect(database_url) as conn:
        _fill(conn, old)
        before = {
            name: sorted(old.decrypt_bytes(e) for e in values) for name, values in _envelopes(conn).items()
        }
        with pytest.raises(Stop):
            rotate_data_key(conn, rotating, operator="ops-anna", batch_size=5, progress=stop_after(4))
        conn.rollback()
        # Stopped part way: the first column's first batches are under the new key, the rest not yet.
        partial = _envelopes(conn)
        assert any(not rotating.needs_rotation(e) for e in partial["persons.id_number_enc"])
        assert all(rotating.needs_rotation(e) for e in partial["dead_letters.payload_enc"])
        first = rotate_data_key(conn, rotating, operator="ops-anna", batch_size=5)
        again = rotate_data_key(conn, rotating, operator="ops-anna", batch_size=5)
        after = _envelopes(conn)
        actions = [
            r[0] for r in conn.execute("SELECT action FROM audit_log WHERE actor = 'ops-anna' ORDER BY id")
        ]
        progress_rows = conn.execute("SELECT count(*), sum(rows_done) FROM key_rotation_progress").fetchone()
    assert all(values for values in after.values()), "every encrypted column holds values in this test"
    for name, values in after.items():
        assert sorted(new_only.decrypt_bytes(e) for e in values) == before[name], name
        for envelope in values:
            with pytest.raises(DecryptionFailed):
                old.decrypt_bytes(envelope)
    total = sum(len(v) for v in after.values())
    assert sum(first.values()) == total  # counted over both runs of the rotation, each value once
    assert set(again.values()) == {0}
    assert actions == [
        "keys.rotate.start",
        "keys.rotate.resume",
        "keys.rotate.finish",
        "keys.rotate.start",
        "keys.rotate.finish",
    ]
    assert progress_rows is not None and progress_rows[1] == total


def test_data_key_rotation_refuses_beside_a_night(database_url: str) -> None:
    vault = Vault([("new", NEW)], BLIND)
    with connect(database_url) as night, connect(database_url) as conn:
        night.execute("SELECT pg_advisory_lock(%s)", (NIGHTLY_LOCK,))
        with pytest.raises(RotationRefused, match="nightly run is in progress"):
            rotate_data_key(conn, vault, operator="ops")
        night.execute("SELECT pg_advisory_unlock(%s)", (NIGHTLY_LOCK,))
        night.execute("INSERT INTO runs (business_date, status, plan) VALUES ('2026-11-01', 'RUNNING', '[]')")
        night.commit()
        with pytest.raises(RotationRefused, match="issuance batch run"):
            rotate_data_key(conn, vault, operator="ops")


def _key(raw: bytes) -> SecretStr:
    return SecretStr(base64.b64encode(raw).decode())


def test_blind_index_rotation_keeps_lookups_resumes_and_blocks_the_night_until_finished(
    database_url: str, settings: Settings, tmp_path: Path
) -> None:
    generated = make_generated(tmp_path / "data", 60, seed=11)
    load_reference_file(settings, database_url, generated)
    publish_night(settings, generated, 1)
    nightly.run(["--business-date", generated.business_date(1)], settings=settings)
    old = Vault.from_settings(settings)
    new_settings = settings.model_copy(
        update={"blind_index_key": _key(NEW_BLIND), "previous_blind_index_key": settings.blind_index_key}
    )
    new = Vault.from_settings(new_settings)
    previous = new.with_blind_index_key(old._blind_index_key)
    with connect(database_url) as conn:
        persons = [
            (bytes(k), old.decrypt(e))
            for k, e in conn.execute("SELECT person_key, id_number_enc FROM persons")
        ]
        apps = conn.execute(
            "SELECT application_id, person_key, id_number_enc, application_type, branch_code, bank_code,"
            " channel, name_enc, phone_enc, guardian_id_enc, card_number, materials, submitted_at,"
            " submitted_utc_offset, content_digest FROM applications ORDER BY application_id"
        ).fetchall()
        # The stored application rebuilds the digest the night made: what the rotation recomputes is the same.
        assert all(
            bytes(r[14]) == old.digest(*content_parts(_stored_application(old, r))) for r in apps if r[14]
        )
        assert sum(1 for r in apps if r[14]) > 10
        with pytest.raises(Stop):
            rotate_blind_index_key(
                conn, new, previous, operator="ops-li", batch_size=7, progress=stop_after(3)
            )
        conn.rollback()
        # Unfinished: the night and the consumers refuse to start, naming the command that finishes it.
        with pytest.raises(BlindIndexRotationUnfinished, match="issuance keys rotate --blind-index-key"):
            nightly.run(["--business-date", generated.business_date(2)], settings=new_settings)
        with pytest.raises(BlindIndexRotationUnfinished), only_member(database_url, "some-group"):
            pass
        # A rotation to yet another key is refused while this one is unfinished.
        with pytest.raises(RotationRefused, match="unfinished blind-index rotation"):
            rotate_blind_index_key(
                conn, new.with_blind_index_key(bytes([9]) * 32), previous, operator="ops-li"
            )
        rewritten = rotate_blind_index_key(conn, new, previous, operator="ops-li", batch_size=7)
        for key, id_number in persons:
            found = lookup_persons(conn, new, [new.blind_index(id_number)])
            assert found[new.blind_index(id_number)].id_number == id_number
            assert lookup_persons(conn, new, [key]) == {}
        for r in apps:
            id_number = old.decrypt(r[2])
            row = conn.execute(
                "SELECT application_id, content_digest FROM applications"
                " WHERE person_key = %s AND application_id = %s",
                (new.blind_index(id_number), r[0]),
            ).fetchone()
            assert row is not None, "the application's person is found by ID number under the new key"
            if r[14]:
                assert bytes(row[1]) == new.digest(*content_parts(_stored_application(old, r)))
        stale = conn.execute(
            "SELECT count(*) FROM cards c JOIN applications a USING (application_id)"
            " WHERE c.person_key <> a.person_key"
        ).fetchone()
        registry_cards = conn.execute(
            "SELECT count(*) FROM person_cards pc LEFT JOIN persons p USING (person_key)"
            " WHERE p.person_key IS NULL"
        ).fetchone()
    assert rewritten["persons.person_key"] == len(persons)
    assert rewritten["applications.person_key"] == len(apps)
    assert stale == (0,) and registry_cards == (0,)
    # Finished: the next night runs with the new key.
    publish_night(new_settings, generated, 2)
    result = nightly.run(["--business-date", generated.business_date(2)], settings=new_settings)
    assert result.run_id > 0


def test_blind_index_rotation_refuses_a_wrong_previous_key_and_running_consumers(database_url: str) -> None:
    old = Vault([("k", OLD)], BLIND)
    with connect(database_url) as conn:
        _fill(conn, old)
        new = old.with_blind_index_key(NEW_BLIND)
        with pytest.raises(Exception, match="neither"):
            rotate_blind_index_key(conn, new, old.with_blind_index_key(bytes([7]) * 32), operator="ops")
        with connect(database_url) as consumer:
            consumer.execute("SELECT pg_advisory_lock(%s, 1)", (GROUP_LOCK_CLASS,))
            with pytest.raises(RotationRefused, match="consumer"):
                rotate_blind_index_key(
                    conn, new, old, operator="ops", lookup_lock_classes=(GROUP_LOCK_CLASS,)
                )
        assert (
            rotate_blind_index_key(conn, new, old, operator="ops")["bank_sim.accounts.account_index"]
            == PEOPLE
        )
        assert lookup_persons(conn, new, [new.blind_index(f.id_number(sequence=200))]) != {}


def test_cli_rotates_with_the_operator_audited(database_url: str, cli_env: dict[str, str]) -> None:
    old = Vault([("old", OLD)], BLIND)
    with connect(database_url) as conn:
        _fill(conn, old)
    env = {
        **cli_env,
        "ISSUANCE_DATA_KEYS": f"new:{base64.b64encode(NEW).decode()},old:{base64.b64encode(OLD).decode()}",
        "ISSUANCE_BLIND_INDEX_KEY": base64.b64encode(BLIND).decode(),
    }
    command = [str(Path(sys.executable).with_name("issuance")), "keys", "rotate", "--data-key", "--json"]
    refused = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "--operator" in refused.stderr
    done = subprocess.run(
        [*command, "--operator", "ops-wang"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert '"persons.id_number_enc": ' + str(PEOPLE) in done.stdout
    with connect(database_url) as conn:
        actors = conn.execute(
            "SELECT DISTINCT actor FROM audit_log WHERE action LIKE 'keys.rotate.%'"
        ).fetchall()
    assert actors == [("ops-wang",)]
