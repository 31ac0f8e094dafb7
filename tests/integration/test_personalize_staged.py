"""The personalization helper against PostgreSQL: which staged applications it personalizes, with which
numbers, and that a second attempt (a resumed run) replaces the first instead of adding to it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from issuance.crypto import Vault
from issuance.domain.numbers import bank_account_number, card_identification_code, card_number
from issuance.kafka.outbox_relay import open_payload
from issuance.messages import ActivationRequested
from issuance.store.db import connect, copy_rows
from issuance.store.run_repo import STAGED_APPLICATION_COLUMNS
from pipelines.personalize_staged import personalize_staged, personalizing
from tests import factories

VAULT = Vault([("test1", bytes(range(32)))], bytes(range(32, 64)))
RUN = 5
BANK = factories.bank()
AREA = factories.AREA


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
    with connect(database_url) as conn:
        copy_rows(conn, "staged_applications", STAGED_APPLICATION_COLUMNS, rows)
        conn.commit()
    return database_url


def _personalized(database_url: str) -> dict[str, tuple[Any, ...]]:
    with connect(database_url) as conn:
        rows = conn.execute(
            "SELECT application_id, new_card_number, card_identification_code, account_number_enc,"
            " request_event_id, request_payload FROM staged_personalized WHERE run_id = %s",
            (RUN,),
        ).fetchall()
    return {str(row[0]): row[1:] for row in rows}


def test_verified_applications_are_personalized_from_the_slot_of_the_kept_record(staged: str) -> None:
    assert personalize_staged(staged, VAULT, {BANK.bank_code: BANK}, RUN) == 2

    found = _personalized(staged)
    assert set(found) == {"NEW-1", "ACTIVATE-1"}  # not the rejected one, the repeated id once
    new_card, cic, account_enc, event_id, payload = found["NEW-1"]
    assert new_card == card_number(100)
    assert cic == card_identification_code(AREA, 100)
    assert VAULT.decrypt(account_enc) == bank_account_number(BANK.bin, 100)
    request = ActivationRequested.from_bytes(open_payload(VAULT, payload))
    assert (request.event_id, request.card_number, request.attempt) == (event_id, card_number(100), 1)
    assert request.holder_name == "张三"

    no_card, no_cic, account_enc, _event, _payload = found["ACTIVATE-1"]
    assert (no_card, no_cic) == (None, None)  # the savings function of an existing card
    assert VAULT.decrypt(account_enc) == bank_account_number(BANK.bin, 103)


def test_a_second_attempt_replaces_the_first_with_the_same_numbers(staged: str) -> None:
    personalize_staged(staged, VAULT, {BANK.bank_code: BANK}, RUN)
    first = _personalized(staged)

    with personalizing(staged, VAULT, {BANK.bank_code: BANK}, RUN, in_process=False) as helper:
        assert helper.result(timeout=120) == 2  # a helper process this time

    again = _personalized(staged)
    assert set(again) == set(first)
    for application_id, (card, cic, account_enc, event_id, _payload) in again.items():
        old_card, old_cic, old_account_enc, old_event_id, _old = first[application_id]
        assert (card, cic, event_id) == (old_card, old_cic, old_event_id)
        assert VAULT.decrypt(account_enc) == VAULT.decrypt(old_account_enc)
