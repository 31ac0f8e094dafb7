"""The bank requests of accepted applications, as a pure step: an account opening for a new card (no number of
any kind), an activation for an existing card (the bank's account number when the card is ours); both name the
agreement and carry the holder only sealed to the bank."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from issuance.bank_personal import BankSealers, HolderPersonal, open_holder
from issuance.domain.lifecycle import Trigger, starts
from issuance.domain.model import ApplicationType
from issuance.messages import (
    AccountOpeningRequested,
    ActivationRequested,
    account_opening_request_event_id,
    activation_request_event_id,
    decode_event,
)
from issuance.trust.errors import TrustFailure
from issuance.trust.keys import Directory, PartyKeys
from issuance.trust.parties import BUREAU, bank
from issuance.trust.sealing import Unsealer
from pipelines.personalize import BankRequest, Candidate, SignedAgreement, bank_requests, outbox_rows
from tests import factories as f

THE_BANK = PartyKeys.generate(bank(f.BANK))
OTHER_BANK = PartyKeys.generate(bank("OTHER"))
BUREAU_KEYS = PartyKeys.generate(BUREAU)
DIRECTORY = Directory([THE_BANK.public(), OTHER_BANK.public(), BUREAU_KEYS.public()])
AGREEMENT = SignedAgreement("AGR-000001", f.TERMS, "ab" * 32)
AT = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
ACCOUNT = "6222020000000000018"


def _candidate(kind: ApplicationType, **overrides: object) -> Candidate:
    base = Candidate(
        "APP-1", kind, f.BANK, f.BRANCH, f.AREA, None, None, f.ADULT_ID, f.ADULT_NAME, 1, AGREEMENT
    )
    return replace(base, **overrides)


def _requests(candidates: list[Candidate]) -> list[BankRequest]:
    return bank_requests(candidates, BankSealers(DIRECTORY), 3, AT)


def _opened(request: BankRequest) -> object:
    return decode_event(request.payload)


def _holder(request: BankRequest) -> HolderPersonal:
    message = decode_event(request.payload)
    assert isinstance(message, AccountOpeningRequested | ActivationRequested)
    return open_holder(message.personal, Unsealer(THE_BANK), message.event_id)


@pytest.mark.parametrize("kind", list(ApplicationType))
def test_a_request_has_nothing_personal_in_clear_and_only_its_bank_opens_it(kind: ApplicationType) -> None:
    [r] = _requests([_candidate(kind, card_number=f.CARD, account_number=ACCOUNT)])
    for clear in (f.ADULT_ID, f.ADULT_NAME, ACCOUNT):
        assert clear.encode() not in r.payload
    message = decode_event(r.payload)
    assert isinstance(message, AccountOpeningRequested | ActivationRequested)
    for other in (OTHER_BANK, BUREAU_KEYS):
        with pytest.raises(TrustFailure):
            open_holder(message.personal, Unsealer(other), message.event_id)
    # Sealed to the bank already: the outbox does not seal it at rest again.
    [row] = outbox_rows([r], {f.BANK: "bank.requests"}, 3)
    assert row[-2] is False
    assert row[-1] == f"bank:{f.BANK}"  # the party the relay authenticates it to


def test_a_new_card_is_an_account_opening_with_the_holder_and_the_agreement_and_no_number() -> None:
    [r] = _requests([_candidate(ApplicationType.NEW_CARD)])
    message = _opened(r)
    assert isinstance(message, AccountOpeningRequested)
    assert (r.event_id, r.event_type) == (
        account_opening_request_event_id("APP-1", 1),
        "AccountOpeningRequested",
    )
    assert _holder(r) == HolderPersonal(f.ADULT_ID, f.ADULT_NAME, None)
    assert (message.area_code, message.branch_code, message.bank_code) == (f.AREA, f.BRANCH, f.BANK)
    assert (message.agreement_id, message.terms_version, message.document_sha256) == (
        "AGR-000001",
        f.TERMS,
        "ab" * 32,
    )
    assert not hasattr(message, "card_number")


def test_an_activation_of_our_card_carries_the_banks_account_number() -> None:
    candidate = _candidate(ApplicationType.FINANCIAL_ACTIVATION, card_number=f.CARD, account_number=ACCOUNT)
    [r] = _requests([candidate])
    message = _opened(r)
    assert isinstance(message, ActivationRequested)
    assert r.event_id == activation_request_event_id("APP-1", 1)
    assert (message.card_number, _holder(r)) == (f.CARD, HolderPersonal(f.ADULT_ID, f.ADULT_NAME, ACCOUNT))
    assert (message.agreement_id, message.attempt) == ("AGR-000001", 1)


def test_an_activation_of_a_registry_card_carries_no_account_number() -> None:
    candidate = _candidate(ApplicationType.FINANCIAL_ACTIVATION, card_number=f.CARD)
    [r] = _requests([candidate])
    message = _opened(r)
    assert isinstance(message, ActivationRequested)
    assert (message.card_number, _holder(r).account_number) == (f.CARD, None)


def test_a_mixed_batch_keeps_its_order_and_the_attempt_names_the_event() -> None:
    batch = [
        _candidate(
            ApplicationType.FINANCIAL_ACTIVATION, application_id="APP-A", card_number=f.CARD, attempt=2
        ),
        _candidate(ApplicationType.NEW_CARD, application_id="APP-B", attempt=3),
    ]
    requests = _requests(batch)
    assert [r.event_id for r in requests] == [
        activation_request_event_id("APP-A", 2),
        account_opening_request_event_id("APP-B", 3),
    ]
    assert [getattr(_opened(r), "attempt") for r in requests] == [2, 3]  # noqa: B009


def test_an_account_opening_needs_its_agreement() -> None:
    with pytest.raises(ValueError, match="APP-1"):
        _requests([_candidate(ApplicationType.NEW_CARD, agreement=None)])


def test_a_request_due_again_starts_from_the_same_application_state_for_both_types() -> None:
    """The night's set-based re-check and retry read one list of states for both application types."""
    assert starts(Trigger.REQUESTED_AGAIN, ApplicationType.NEW_CARD, "application") == starts(
        Trigger.REQUESTED_AGAIN, ApplicationType.FINANCIAL_ACTIVATION, "application"
    )
