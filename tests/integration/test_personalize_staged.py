"""The personalization helper against PostgreSQL: which staged applications it personalizes, with which
numbers and agreement, and that a second attempt (a resumed run) replaces the first rather than adding."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from issuance.crypto import Vault
from issuance.domain.numbers import bank_account_number, card_identification_code, card_number
from issuance.kafka.outbox_relay import open_payload
from issuance.messages import ActivationRequested
from issuance.store.db import connect, copy_rows
from issuance.store.run_repo import STAGED_AGREEMENT_COLUMNS, STAGED_APPLICATION_COLUMNS
from pipelines.personalize_staged import personalize_staged, personalizing
from tests import factories

VAULT = Vault([("test1", bytes(range(32)))], bytes(range(32, 64)))
RUN = 5
BANK = factories.bank()
AREA = factories.AREA
NIGHT = date(2026, 11, 2)
WINDOW = 30
SHA = "ab" * 32


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


def _personalized(database_url: str) -> dict[str, tuple[Any, ...]]:
    with connect(database_url) as conn:
        rows = conn.execute(
            "SELECT application_id, new_card_number, card_identification_code, account_number_enc,"
            " request_event_id, request_payload, agreement_id FROM staged_personalized WHERE run_id = %s",
            (RUN,),
        ).fetchall()
    return {str(row[0]): row[1:] for row in rows}


def test_verified_applications_are_personalized_from_the_slot_of_the_kept_record(staged: str) -> None:
    assert personalize_staged(staged, VAULT, {BANK.bank_code: BANK}, RUN, NIGHT, WINDOW) == 2

    found = _personalized(staged)
    assert set(found) == {"NEW-1", "ACTIVATE-1"}  # not the rejected one, the repeated id once
    new_card, cic, account_enc, event_id, payload, agreement_id = found["NEW-1"]
    assert new_card == card_number(100)
    assert cic == card_identification_code(AREA, 100)
    assert VAULT.decrypt(account_enc) == bank_account_number(BANK.bin, 100)
    request = ActivationRequested.from_bytes(open_payload(VAULT, payload))
    assert (request.event_id, request.card_number, request.attempt) == (event_id, card_number(100), 1)
    assert request.holder_name == "张三"
    assert request.account_number == bank_account_number(BANK.bin, 100)
    # The agreement the rule accepts travels with the request (not the one on outdated terms).
    assert agreement_id == "AGR-NEW"
    assert (request.agreement_id, request.terms_version, request.document_sha256) == (
        "AGR-NEW",
        "2026.1",
        SHA,
    )


def test_an_existing_card_is_activated_without_a_new_account_number(staged: str) -> None:
    personalize_staged(staged, VAULT, {BANK.bank_code: BANK}, RUN, NIGHT, WINDOW)

    no_card, no_cic, account_enc, _event, payload, agreement_id = _personalized(staged)["ACTIVATE-1"]
    assert (no_card, no_cic, account_enc) == (None, None, None)  # the card carries its account already
    request = ActivationRequested.from_bytes(open_payload(VAULT, payload))
    assert (request.card_number, request.account_number) == ("A12345678", None)
    assert agreement_id == request.agreement_id == "AGR-ACT"  # a pending agreement of an earlier night


def test_a_second_attempt_replaces_the_first_with_the_same_numbers(staged: str) -> None:
    personalize_staged(staged, VAULT, {BANK.bank_code: BANK}, RUN, NIGHT, WINDOW)
    first = _personalized(staged)

    with personalizing(staged, VAULT, {BANK.bank_code: BANK}, RUN, NIGHT, WINDOW, in_process=False) as helper:
        assert helper.result(timeout=120) == 2  # a helper process this time

    again = _personalized(staged)
    assert set(again) == set(first)
    for application_id, (card, cic, account_enc, event_id, _payload, agreement) in again.items():
        old_card, old_cic, old_account_enc, old_event_id, _old, old_agreement = first[application_id]
        assert (card, cic, event_id, agreement) == (old_card, old_cic, old_event_id, old_agreement)
        assert _opened(account_enc) == _opened(old_account_enc)


def _opened(envelope: bytes | None) -> str | None:
    return None if envelope is None else VAULT.decrypt(envelope)
