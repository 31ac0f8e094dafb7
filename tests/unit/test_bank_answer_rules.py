"""The rules of the bureau's consumer of bank answers, without a database: which trigger an answer is, the
snapshot an application gives, and what a refusal leaves (the last one cancels a new card's ordered card)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from consumers.bank_answer_trust import Answer, TrustedAnswer
from consumers.bank_results import BankResults, _number_problem, current_request_id, lifecycle_of, trigger_of
from issuance.domain.lifecycle import ApplicationState, CardStatus, FinancialStatus, Trigger, step
from issuance.domain.numbers import bank_account_number, is_valid_assigned_account
from issuance.kafka.topics import Topics
from issuance.messages import (
    AccountOpened,
    AccountRefused,
    ActivationFailed,
    BankRefusalReason,
    account_opening_request_event_id,
    activation_request_event_id,
)
from issuance.settings import Settings
from issuance.store.bank_answers_repo import ActivatedCard, ApplicationRow, OwnCard

MAX_ATTEMPTS = 3
AT = datetime(2026, 11, 2, tzinfo=UTC)


def _new_card(refusals: int = 0) -> ApplicationRow:
    return ApplicationRow("APP-1", "NEW_CARD", "BR-1", "ICBC", "ACCEPTED", False, refusals, None)


def _activation(refusals: int = 0) -> ApplicationRow:
    return ApplicationRow(
        "ACT-1", "FINANCIAL_ACTIVATION", "BR-1", "ICBC", "ACCEPTED", False, refusals, "A1B2C3D4E"
    )


def _refusal(refusals: int) -> AccountRefused:
    request = account_opening_request_event_id("APP-1", refusals + 1)
    return AccountRefused("answer", request, "APP-1", "ICBC", BankRefusalReason.KYC_FAILED, AT)


def _consumer() -> BankResults:
    # The rules never touch the connection, the vault or the keys.
    return BankResults(None, None, Topics(Settings()), MAX_ATTEMPTS, None)  # type: ignore[arg-type]


def _trusted(answer: Answer, number: str | None = None) -> TrustedAnswer:
    return TrustedAnswer(None, answer, number)  # type: ignore[arg-type]


def test_a_new_cards_snapshot_is_its_own_card_and_account_and_its_request_an_account_opening() -> None:
    target = lifecycle_of(_new_card(1), OwnCard("APP-1", "ORDERED", "REQUESTED"), None)
    assert (target.lifecycle.card, target.lifecycle.financial, target.sides_of) == (
        CardStatus.ORDERED,
        FinancialStatus.REQUESTED,
        "APP-1",
    )
    assert current_request_id(target) == account_opening_request_event_id("APP-1", 2)


def test_an_activations_snapshot_is_the_card_it_activates_ours_or_the_registrys() -> None:
    ours = ActivatedCard("A1B2C3D4E", "APP-1", "ISSUED", "OPENED", "VALID", "INACTIVE")
    target = lifecycle_of(_activation(), None, ours)
    assert (target.lifecycle.card, target.lifecycle.financial, target.sides_of) == (
        CardStatus.ISSUED,
        FinancialStatus.OPENED,
        "APP-1",
    )
    assert current_request_id(target) == activation_request_event_id("ACT-1", 1)
    registry = ActivatedCard("A1B2C3D4E", None, None, None, "VALID", "INACTIVE")
    target = lifecycle_of(_activation(), None, registry)
    assert (target.lifecycle.card, target.lifecycle.financial, target.sides_of) == (
        CardStatus.ISSUED,
        FinancialStatus.OPENED,
        None,
    )


def test_the_last_refusal_of_a_new_card_cancels_its_ordered_card_and_says_the_holder_may_apply_again() -> (
    None
):
    target = lifecycle_of(_new_card(MAX_ATTEMPTS - 1), OwnCard("APP-1", "ORDERED", "REQUESTED"), None)
    answer = _refusal(MAX_ATTEMPTS - 1)
    assert trigger_of(answer, target, MAX_ATTEMPTS) is Trigger.ACCOUNT_REFUSED_FINAL
    outcome = step(target.lifecycle, trigger_of(answer, target, MAX_ATTEMPTS))
    applied = _consumer()._applied(_trusted(answer), target, outcome)
    assert (applied.to_state, applied.is_open, applied.card_to, applied.financial_to) == (
        ApplicationState.FAILED,
        False,
        CardStatus.CANCELLED,
        FinancialStatus.REFUSED,
    )
    assert applied.bank_refusals == MAX_ATTEMPTS
    assert "ordered card cancelled; the holder may apply again" in applied.detail


@pytest.mark.parametrize("kind", ["NEW_CARD", "FINANCIAL_ACTIVATION"])
def test_a_refusal_with_attempts_left_is_due_again_and_moves_no_side(kind: str) -> None:
    if kind == "NEW_CARD":
        target = lifecycle_of(_new_card(), OwnCard("APP-1", "ORDERED", "REQUESTED"), None)
        answer: AccountRefused | ActivationFailed = _refusal(0)
    else:
        target = lifecycle_of(
            _activation(), None, ActivatedCard("A1B2C3D4E", None, None, None, "VALID", "INACTIVE")
        )
        request = activation_request_event_id("ACT-1", 1)
        answer = ActivationFailed("answer", request, "ACT-1", "ICBC", BankRefusalReason.KYC_FAILED, AT)
    outcome = step(target.lifecycle, trigger_of(answer, target, MAX_ATTEMPTS))
    applied = _consumer()._applied(_trusted(answer), target, outcome)
    assert (applied.is_open, applied.retry_due, applied.bank_refusals) == (True, True, 1)
    assert (applied.card_to, applied.financial_to) == (None, None)
    assert "requested again by a later night" in applied.detail


def test_an_opened_account_is_stored_sealed_and_its_history_shows_it_masked() -> None:
    from issuance.crypto import Vault

    number = bank_account_number("622202", 42)
    vault = Vault([("k1", b"\x01" * 32)], b"\x02" * 32)
    consumer = BankResults(None, vault, Topics(Settings()), MAX_ATTEMPTS, None)  # type: ignore[arg-type]
    target = lifecycle_of(_new_card(), OwnCard("APP-1", "ORDERED", "REQUESTED"), None)
    answer = AccountOpened(
        "answer", account_opening_request_event_id("APP-1", 1), "APP-1", "ICBC", b"sealed", AT
    )
    trusted = _trusted(answer, number)
    applied = consumer._applied(trusted, target, step(target.lifecycle, Trigger.ACCOUNT_OPENED))
    assert applied.financial_to == FinancialStatus.OPENED and applied.to_state == ApplicationState.ACCEPTED
    assert applied.account_number_enc is not None and number.encode() not in applied.account_number_enc
    assert number not in applied.detail and number[-4:] in applied.detail


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        (bank_account_number("622202", 7), True),
        ("6222020000000008", False),  # 16 digits, wrong check digit
        (bank_account_number("621700", 7), False),  # another bank's BIN
        ("62220200000000000000", False),  # 20 digits
        ("622202000000000007X", False),
    ],
)
def test_a_number_a_bank_may_assign(number: str, valid: bool) -> None:
    assert is_valid_assigned_account(number, "622202") is valid
    from stdnum import luhn

    sixteen = "622202000000007"
    assert is_valid_assigned_account(sixteen + luhn.calc_check_digit(sixteen), "622202")


def test_a_banks_requests_and_answers_round_trip_through_the_wire_with_their_personal_parts_sealed() -> None:
    from issuance.bank_personal import HolderPersonal, open_account, open_holder, seal_account, seal_holder
    from issuance.messages import AccountOpeningRequested, decode_event
    from issuance.trust.keys import Directory, PartyKeys
    from issuance.trust.parties import BUREAU, bank
    from issuance.trust.sealing import Sealer, Unsealer

    bureau, icbc = PartyKeys.generate(BUREAU), PartyKeys.generate(bank("ICBC"))
    directory = Directory([bureau.public(), icbc.public()])
    request_id = account_opening_request_event_id("APP-1", 1)
    holder = HolderPersonal("110105198001011238", "张伟")
    request = AccountOpeningRequested(
        request_id,
        "APP-1",
        "ICBC",
        1,
        seal_holder(holder, Sealer.to(directory, bank("ICBC")), request_id),
        "110105",
        "BR-1",
        "AGR-1",
        "2026.1",
        "ab" * 32,
        AT,
        run_id=4,
    )
    number = bank_account_number("622202", 1)
    answer = AccountOpened(
        "answer",
        request.event_id,
        "APP-1",
        "ICBC",
        seal_account(number, Sealer.to(directory, BUREAU), "answer"),
        AT,
    )
    assert decode_event(request.to_bytes()) == request
    assert decode_event(answer.to_bytes()) == answer
    assert decode_event(_refusal(0).to_bytes()) == _refusal(0)
    # Nothing personal in clear on the wire; each side opens only what is sealed to it, under its event id.
    for wire in (request.to_bytes(), answer.to_bytes()):
        assert (
            b"110105198001011238" not in wire and "张伟".encode() not in wire and number.encode() not in wire
        )
    assert open_holder(request.personal, Unsealer(icbc), request_id).holder_id_number == "110105198001011238"
    assert open_account(answer.personal, Unsealer(bureau), "answer") == number
    from issuance.trust.errors import TrustFailure

    with pytest.raises(TrustFailure):
        open_holder(request.personal, Unsealer(bureau), request_id)  # sealed to the bank, not the bureau
    with pytest.raises(TrustFailure):
        open_account(answer.personal, Unsealer(bureau), "another answer")  # moved into another message


def test_an_activations_account_must_be_the_card_it_activates_or_no_other_applications() -> None:
    number = bank_account_number("622202", 9)
    ours = lifecycle_of(
        _activation(), None, ActivatedCard("A1B2C3D4E", "APP-1", "ISSUED", "OPENED", "VALID", "INACTIVE")
    )
    registry = lifecycle_of(
        _activation(), None, ActivatedCard("A1B2C3D4E", None, None, None, "VALID", "INACTIVE")
    )
    request = activation_request_event_id("ACT-1", 1)
    from issuance.messages import ActivationCompleted

    done = _trusted(ActivationCompleted("answer", request, "ACT-1", "ICBC", b"sealed", AT), number)
    assert _number_problem(done, "622202", "APP-1", ours) is None
    assert _number_problem(done, "622202", None, ours) == (
        "account_number: not the account of the card the activation names"
    )
    assert _number_problem(done, "622202", "APP-7", ours) is not None
    assert _number_problem(done, "622202", None, registry) is None
    assert (
        _number_problem(done, "622202", "APP-7", registry)
        == "account_number: the account of another application"
    )
    assert _number_problem(done, "621700", "APP-1", ours) is not None  # another bank's BIN
    free_text = _trusted(
        ActivationCompleted("answer", request, "ACT-1", "ICBC", b"sealed", AT), "622202****0011"
    )
    assert _number_problem(free_text, "622202", None, registry) is not None
