"""The night's set-based statements against their Python twin: what each leaves in PostgreSQL is what
`lifecycle.step` says the trigger does, and no forbidden combination is reached."""

from __future__ import annotations

from dataclasses import replace

from issuance.domain.lifecycle import (
    ApplicationState,
    CardStatus,
    FinancialStatus,
    Lifecycle,
    Trigger,
    registry_card,
    step,
    violations,
)
from issuance.domain.model import ApplicationType, RegistryCardStatus, RegistryFinancialStatus
from issuance.settings import Settings
from issuance.store.db import connect
from pipelines import nightly
from tests import factories as f
from tests.fixtures_nightly import load_reference_data, publish_records, refused_with_attempts_left

NIGHTS = ("2026-11-01", "2026-11-02")


def _stored(database_url: str, application_id: str) -> Lifecycle:
    """An application and its card's two sides as stored (an activation: its registry card's)."""
    with connect(database_url) as conn:
        row = conn.execute(
            "SELECT a.application_type, a.state, a.retry_due, c.status, b.status, p.status,"
            " p.financial_status"
            " FROM applications a LEFT JOIN cards c ON c.application_id = a.application_id"
            " LEFT JOIN bank_accounts b ON b.application_id = a.application_id"
            " LEFT JOIN person_cards p ON p.card_number = a.card_number"
            " WHERE a.application_id = %s",
            (application_id,),
        ).fetchone()
    assert row is not None
    kind, state, retry_due, card, account, registry_status, registry_financial = row
    lifecycle = Lifecycle(ApplicationType(kind), ApplicationState(state), retry_due=bool(retry_due))
    if kind == ApplicationType.FINANCIAL_ACTIVATION.value:
        on_card, on_account = registry_card(
            RegistryCardStatus(registry_status), RegistryFinancialStatus(registry_financial)
        )
        return replace(lifecycle, card=on_card, financial=on_account)
    return replace(
        lifecycle,
        card=None if card is None else CardStatus(card),
        financial=FinancialStatus.NONE if account is None else FinancialStatus(account),
    )


def _night(settings: Settings, day: str) -> None:
    assert nightly.run(["--business-date", day], settings=settings).balanced


def _agrees(database_url: str, application_id: str, before: Lifecycle, trigger: Trigger) -> Lifecycle:
    after = _stored(database_url, application_id)
    assert after == step(before, trigger).after, trigger
    assert violations(after) == []
    return after


def test_a_new_card_accepted_then_requested_again(settings: Settings, database_url: str) -> None:
    load_reference_data(settings, database_url, f.reference())
    publish_records(settings, applications=[f.application()], agreements=[f.agreement()])
    _night(settings, NIGHTS[0])
    accepted = _agrees(database_url, "APP-000001", Lifecycle(ApplicationType.NEW_CARD), Trigger.ACCEPTED)

    refused_with_attempts_left(database_url, "APP-000001")
    _night(settings, NIGHTS[1])
    _agrees(database_url, "APP-000001", replace(accepted, retry_due=True), Trigger.REQUESTED_AGAIN)


def test_a_new_card_due_again_rejected_on_the_recheck(settings: Settings, database_url: str) -> None:
    load_reference_data(settings, database_url, f.reference())
    publish_records(settings, applications=[f.application()], agreements=[f.agreement()])
    _night(settings, NIGHTS[0])
    accepted = _stored(database_url, "APP-000001")

    refused_with_attempts_left(database_url, "APP-000001")
    load_reference_data(settings, database_url, f.reference(persons={f.ADULT_ID: f.person(insured=False)}))
    _night(settings, NIGHTS[1])
    _agrees(database_url, "APP-000001", replace(accepted, retry_due=True), Trigger.RECHECK_REJECTED)


def test_an_activation_accepted_then_requested_again(settings: Settings, database_url: str) -> None:
    load_reference_data(settings, database_url, f.reference(persons={f.ADULT_ID: f.holder()}))
    application_id = f.activation().application_id
    publish_records(settings, applications=[f.activation()], agreements=[f.agreement()])
    before = Lifecycle(
        ApplicationType.FINANCIAL_ACTIVATION, card=CardStatus.ISSUED, financial=FinancialStatus.OPENED
    )
    _night(settings, NIGHTS[0])
    accepted = _agrees(database_url, application_id, before, Trigger.ACCEPTED)

    refused_with_attempts_left(database_url, application_id)
    _night(settings, NIGHTS[1])
    _agrees(database_url, application_id, replace(accepted, retry_due=True), Trigger.REQUESTED_AGAIN)
