"""The last refusal by the bank: the card in production is cancelled and the holder may apply again."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from consumers.activation_results import ActivationResults
from issuance.kafka.topics import Topics
from issuance.messages import ActivationFailed, BankRefusalReason, activation_request_event_id
from issuance.settings import Settings
from issuance.store.activation_repo import ActivationTarget

MAX_ATTEMPTS = 3


def _transition(kind: str, failures_so_far: int) -> Any:
    target = ActivationTarget(
        "APP-1", kind, "BR-1", "ICBC", "ACTIVATION_REQUESTED", 1, failures_so_far, "A1B2C3D4E"
    )
    request = activation_request_event_id("APP-1", failures_so_far + 1)
    refusal = ActivationFailed(
        "answer",
        request,
        "APP-1",
        "ICBC",
        BankRefusalReason.KYC_FAILED,
        datetime(2026, 11, 2, tzinfo=UTC),
    )
    # The transition is a rule over the result and the target: it never touches the connection or the topics.
    consumer = ActivationResults(None, None, Topics(Settings()), MAX_ATTEMPTS)  # type: ignore[arg-type]
    return consumer._transition(refusal, target)


def test_the_last_refusal_of_a_new_card_cancels_its_card_and_says_the_holder_may_apply_again() -> None:
    final = _transition("NEW_CARD", MAX_ATTEMPTS - 1)
    assert (final.is_open, final.card_cancelled, final.account_status) == (False, True, "FAILED")
    assert "card in production cancelled; the holder may apply again" in final.detail


@pytest.mark.parametrize("kind", ["NEW_CARD", "FINANCIAL_ACTIVATION"])
def test_a_refusal_with_attempts_left_keeps_the_card(kind: str) -> None:
    retry = _transition(kind, 0)
    assert (retry.is_open, retry.card_cancelled) == (True, False)
    assert "requested again by the next run" in retry.detail


def test_the_last_refusal_of_an_activation_leaves_the_existing_card_alone_and_frees_the_holder() -> None:
    final = _transition("FINANCIAL_ACTIVATION", MAX_ATTEMPTS - 1)
    assert (final.is_open, final.card_cancelled) == (False, False)
    assert "the holder may apply again" in final.detail and "card" not in final.detail
