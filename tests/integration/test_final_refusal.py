"""A bank's last refusal is not a dead end: nothing of the refused application blocks the holder from applying
again (the night's duplicate check reads `is_open`; a card's live account is unique only while it is live),
and its history says so."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from consumers.serve import consume_results
from issuance.kafka.topics import Topics
from issuance.messages import (
    AccountRefused,
    ActivationFailed,
    BankRefusalReason,
    account_answer_event_id,
    activation_answer_event_id,
)
from issuance.services.endpoints import resolve
from issuance.settings import Settings
from issuance.store.db import connect
from issuance.trust.parties import BUREAU, bank
from tests.factories import BANK
from tests.fixtures_activation import (
    activation_request_for,
    opening_request_for,
    publish_signed,
    seed_accepted,
    seed_activations,
)

AT = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def _consume(settings: Settings, payload: bytes) -> None:
    publish_signed(settings, Topics(settings).bank_results(BANK), [payload], bank(BANK), BUREAU)
    consume_results(settings, resolve(settings), 1.5, threading.Event())


def test_the_holder_of_a_finally_refused_new_card_may_apply_again(
    settings: Settings, database_url: str
) -> None:
    settings = settings.model_copy(update={"max_activation_attempts": 1})
    [accepted] = seed_accepted(settings, 1)
    request = opening_request_for(accepted).event_id
    refusal = AccountRefused(
        account_answer_event_id(request),
        request,
        accepted.application_id,
        accepted.bank_code,
        BankRefusalReason.KYC_FAILED,
        AT,
    )

    _consume(settings, refusal.to_bytes())

    with connect(database_url) as conn:
        row = conn.execute(
            "SELECT a.state, a.is_open, c.status, b.status, h.detail FROM applications a"
            " JOIN cards c USING (application_id) JOIN bank_accounts b USING (application_id)"
            " JOIN application_history h USING (application_id)"
            " WHERE a.application_id = %s AND h.to_state = 'FAILED'",
            (accepted.application_id,),
        ).fetchone()
    assert row is not None
    state, is_open, card, account, detail = row
    assert (state, is_open, card, account) == ("FAILED", False, "CANCELLED", "REFUSED")
    assert "the holder may apply again" in detail


def test_the_holder_of_a_finally_refused_activation_may_apply_again(
    settings: Settings, database_url: str
) -> None:
    settings = settings.model_copy(update={"max_activation_attempts": 1})
    [activating] = seed_activations(settings, 1)
    request = activation_request_for(activating).event_id
    refusal = ActivationFailed(
        activation_answer_event_id(request),
        request,
        activating.application_id,
        activating.bank_code,
        BankRefusalReason.KYC_FAILED,
        AT,
    )

    _consume(settings, refusal.to_bytes())

    with connect(database_url) as conn:
        app = conn.execute(
            "SELECT state, is_open FROM applications WHERE application_id = %s", (activating.application_id,)
        ).fetchone()
        card = conn.execute(
            "SELECT c.status, b.status, p.financial_status FROM cards c"
            " JOIN bank_accounts b USING (application_id)"
            " JOIN person_cards p ON p.card_number = c.card_number WHERE c.card_number = %s",
            (activating.card_number,),
        ).fetchone()
    assert app == ("FAILED", False)
    assert card == ("ISSUED", "OPENED", "INACTIVE"), "the card and its account are left as they were"
