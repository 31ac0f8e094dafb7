"""The helper beside the final transaction against PostgreSQL: which staged applications get a first bank
request, of which kind, with which agreement and account number (none allocated), and that a second attempt (a
resumed run) replaces the first rather than adding."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from issuance.bank_personal import HolderPersonal, open_holder
from issuance.crypto import Vault
from issuance.messages import (
    AccountOpeningRequested,
    ActivationRequested,
    account_opening_request_event_id,
    activation_request_event_id,
)
from issuance.store.db import connect, copy_rows
from issuance.store.party_keys_repo import register
from issuance.store.run_repo import STAGED_AGREEMENT_COLUMNS, STAGED_APPLICATION_COLUMNS
from issuance.trust.keys import PartyKeys
from issuance.trust.parties import BUREAU, bank
from issuance.trust.sealing import Unsealer
from pipelines.personalize_staged import personalize_staged, personalizing
from tests import factories

VAULT = Vault([("test1", bytes(range(32)))], bytes(range(32, 64)))
RUN = 5
BANK = factories.bank()
AREA = factories.AREA
NIGHT = date(2026, 11, 2)
WINDOW = 30
SHA = "ab" * 32
THE_BANK = PartyKeys.generate(bank(BANK.bank_code))  # registered with the staged rows
HOLDER = ("11010519491231002X", "张三")


def _staged(offset: int, application_id: str, kind: str, slot: int, reasons: list[str]) -> tuple[Any, ...]:
    by_column = {
        "run_id": RUN,
        "source_topic": "t.branch.applications",
        "source_partition": 0,
        "source_offset": offset,
        "application_id": application_id,
        "application_type": kind,
        "branch_code": "B001",
        "bank_code": BANK.bank_code,
        "channel": "COUNTER",
        "person_key": VAULT.blind_index(f"person-{offset}"),
        "id_number_enc": VAULT.encrypt("11010519491231002X"),
        "name_enc": VAULT.encrypt("张三"),
        "phone_enc": None,
        "guardian_id_enc": None,
        "card_number": "A12345678" if kind == "FINANCIAL_ACTIVATION" else None,
        "materials": ["RESIDENT_ID_CARD"],
        "submitted_at": datetime(2026, 11, 2, 9, 0, tzinfo=UTC),
        "submitted_utc_offset": 28_800,
        "area_code": AREA,
        "reasons": reasons,
        "slot": slot,
        "content_digest": VAULT.digest(application_id),
    }
    return tuple(by_column[column] for column in STAGED_APPLICATION_COLUMNS)


@pytest.fixture
def staged(database_url: str) -> str:
    rows = [
        _staged(10, "NEW-1", "NEW_CARD", 100, []),
        _staged(11, "NEW-1", "NEW_CARD", 101, []),  # the same id again: the run keeps offset 10
        _staged(12, "REJECTED-1", "NEW_CARD", 102, ["PERSON_NOT_FOUND"]),
        _staged(13, "ACTIVATE-1", "FINANCIAL_ACTIVATION", 103, []),
    ]
    signed = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
    agreements = [
        (
            RUN,
            "t.branch.agreements",
            0,
            1,
            "AGR-NEW",
            "NEW-1",
            BANK.bank_code,
            "2026.1",
            SHA,
            signed,
            "COUNTER",
        ),
        (
            RUN,
            "t.branch.agreements",
            0,
            2,
            "AGR-OLD",
            "NEW-1",
            BANK.bank_code,
            "2020.1",
            SHA,
            signed,
            "COUNTER",
        ),
    ]
    with connect(database_url) as conn:
        register(conn, THE_BANK.public(), actor="test")
        register(conn, PartyKeys.generate(BUREAU).public(), actor="test")
        conn.execute(
            "INSERT INTO runs (run_id, business_date, status, plan) VALUES (%s, %s, 'RUNNING', '[]')",
            (RUN, NIGHT),
        )
        copy_rows(conn, "staged_applications", STAGED_APPLICATION_COLUMNS, rows)
        copy_rows(conn, "staged_agreements", STAGED_AGREEMENT_COLUMNS, agreements)
        conn.execute(  # kept by an earlier night, still pending: the activation's agreement
            "INSERT INTO agreements (agreement_id, application_id, bank_code, terms_version, document_sha256,"
            " signed_at, channel) VALUES ('AGR-ACT', 'ACTIVATE-1', %s, '2026.1', %s, %s, 'COUNTER')",
            (BANK.bank_code, SHA, signed),
        )
        conn.commit()
    return database_url


def _prepared(database_url: str) -> dict[str, tuple[Any, ...]]:
    """application id -> (event id, event type, sealed at rest, agreement id, message bytes)."""
    with connect(database_url) as conn:
        rows = conn.execute(
            "SELECT application_id, request_event_id, request_type, request_sealed, agreement_id,"
            " request_payload FROM staged_personalized WHERE run_id = %s",
            (RUN,),
        ).fetchall()
    return {
        str(app): (event_id, kind, sealed, agreement, bytes(payload))
        for app, event_id, kind, sealed, agreement, payload in rows
    }


def _holder(request: AccountOpeningRequested | ActivationRequested) -> HolderPersonal:
    """The request's personal part, as its bank opens it."""
    return open_holder(request.personal, Unsealer(THE_BANK), request.event_id)


def test_a_request_carries_nothing_personal_in_clear_and_needs_no_sealing_at_rest(staged: str) -> None:
    personalize_staged(staged, VAULT, {BANK.bank_code: BANK}, RUN, NIGHT, WINDOW)

    for _event_id, _kind, sealed, _agreement, payload in _prepared(staged).values():
        assert sealed is False  # the outbox publishes it as it is: the personal part is sealed to the bank
        assert not any(clear.encode() in payload for clear in HOLDER)


def test_a_new_card_gets_an_account_opening_with_the_holder_and_the_agreement(staged: str) -> None:
    assert personalize_staged(staged, VAULT, {BANK.bank_code: BANK}, RUN, NIGHT, WINDOW) == 2

    found = _prepared(staged)
    assert set(found) == {"NEW-1", "ACTIVATE-1"}  # not the rejected one, the repeated id once
    event_id, kind, sealed, agreement_id, payload = found["NEW-1"]
    assert (event_id, kind, sealed) == (
        account_opening_request_event_id("NEW-1", 1),
        "AccountOpeningRequested",
        False,
    )
    request = AccountOpeningRequested.from_bytes(payload)
    assert (request.event_id, request.attempt) == (event_id, 1)
    assert _holder(request) == HolderPersonal(*HOLDER, None)
    assert (request.area_code, request.branch_code, request.bank_code) == (AREA, "B001", BANK.bank_code)
    # The agreement the rule accepts travels with the request (not the one on outdated terms).
    assert agreement_id == "AGR-NEW"
    assert (request.agreement_id, request.terms_version, request.document_sha256) == (
        "AGR-NEW",
        "2026.1",
        SHA,
    )


def test_an_activation_of_a_registry_card_carries_no_account_number(staged: str) -> None:
    personalize_staged(staged, VAULT, {BANK.bank_code: BANK}, RUN, NIGHT, WINDOW)

    event_id, kind, sealed, agreement_id, payload = _prepared(staged)["ACTIVATE-1"]
    assert (event_id, kind, sealed) == (
        activation_request_event_id("ACTIVATE-1", 1),
        "ActivationRequested",
        False,
    )
    request = ActivationRequested.from_bytes(payload)
    assert (request.card_number, _holder(request).account_number) == ("A12345678", None)
    assert agreement_id == request.agreement_id == "AGR-ACT"  # a pending agreement of an earlier night


def test_an_activation_of_our_card_carries_the_account_number_the_bank_assigned(staged: str) -> None:
    with connect(staged) as conn:  # the card this system issued; the bank opened its account
        conn.execute(
            "INSERT INTO runs (run_id, business_date, status, plan)"
            " VALUES (1, '2026-10-01', 'SUCCEEDED', '[]')"
        )
        conn.execute(
            "INSERT INTO applications (application_id, application_type, branch_code, bank_code, channel,"
            " person_key, id_number_enc, name_enc, materials, submitted_at, state, reasons, is_open,"
            " first_run_id, last_run_id)"
            " VALUES ('OLD-1', 'NEW_CARD', 'B001', %s, 'COUNTER', %s, %s, %s, '{}', now(), 'COMPLETED', '{}',"
            " false, 1, 1)",
            (BANK.bank_code, VAULT.blind_index("old"), VAULT.encrypt("x"), VAULT.encrypt("x")),
        )
        conn.execute(
            "INSERT INTO bank_accounts (application_id, bank_code, status, card_number, account_number_enc)"
            " VALUES ('OLD-1', %s, 'OPENED', 'A12345678', %s)",
            (BANK.bank_code, VAULT.encrypt("6222020000000000018")),
        )
        conn.commit()

    personalize_staged(staged, VAULT, {BANK.bank_code: BANK}, RUN, NIGHT, WINDOW)

    payload = _prepared(staged)["ACTIVATE-1"][4]
    request = ActivationRequested.from_bytes(payload)
    assert (request.card_number, _holder(request).account_number) == ("A12345678", "6222020000000000018")
    assert b"6222020000000000018" not in payload


def test_a_second_attempt_replaces_the_first_with_the_same_requests(staged: str) -> None:
    personalize_staged(staged, VAULT, {BANK.bank_code: BANK}, RUN, NIGHT, WINDOW)
    first = _prepared(staged)

    with personalizing(staged, VAULT, {BANK.bank_code: BANK}, RUN, NIGHT, WINDOW, in_process=False) as helper:
        assert helper.result(timeout=120) == 2  # a helper process this time

    again = _prepared(staged)
    assert {app: row[:4] for app, row in again.items()} == {app: row[:4] for app, row in first.items()}
