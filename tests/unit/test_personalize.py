"""Personalization as a pure step: a new card gets the account on its chip, an existing card none; the
request names the agreement."""

from __future__ import annotations

from datetime import UTC, datetime

from issuance.crypto import Vault
from issuance.domain.numbers import bank_account_number, card_number
from issuance.kafka.outbox_relay import open_payload
from issuance.messages import ActivationRequested
from pipelines.personalize import Candidate, SignedAgreement, personalize
from tests import factories as f

VAULT = Vault([("test1", bytes(range(32)))], bytes(range(32, 64)))
AGREEMENT = SignedAgreement("AGR-000001", f.TERMS, "ab" * 32)
AT = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)


def _candidate(kind: str, existing_card: str | None = None) -> Candidate:
    return Candidate("APP-1", kind, f.BANK, f.AREA, existing_card, f.ADULT_ID, f.ADULT_NAME, 7, 1, AGREEMENT)


def _request(payload: bytes) -> ActivationRequested:
    return ActivationRequested.from_bytes(open_payload(VAULT, payload))


def test_a_new_card_carries_the_account_personalized_on_its_chip() -> None:
    [p] = personalize([_candidate("NEW_CARD")], {f.BANK: f.bank()}, VAULT, 3, AT)
    assert p.account_number_enc is not None and VAULT.decrypt(p.account_number_enc) == bank_account_number(
        f.bank().bin, 7
    )
    request = _request(p.request_payload)
    assert (request.card_number, request.account_number) == (
        card_number(7),
        bank_account_number(f.bank().bin, 7),
    )


def test_activating_an_existing_card_allocates_no_account_number() -> None:
    [p] = personalize([_candidate("FINANCIAL_ACTIVATION", f.CARD)], {f.BANK: f.bank()}, VAULT, 3, AT)
    assert (p.new_card_number, p.account_index, p.account_number_enc) == (None, None, None)
    request = _request(p.request_payload)
    assert (request.card_number, request.account_number) == (f.CARD, None)


def test_the_request_names_the_agreement_it_was_accepted_on() -> None:
    [p] = personalize([_candidate("FINANCIAL_ACTIVATION", f.CARD)], {f.BANK: f.bank()}, VAULT, 3, AT)
    request = _request(p.request_payload)
    assert p.agreement_id == "AGR-000001"
    assert (request.agreement_id, request.terms_version, request.document_sha256) == (
        "AGR-000001",
        f.TERMS,
        "ab" * 32,
    )
