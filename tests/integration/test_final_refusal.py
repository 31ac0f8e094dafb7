"""A bank's last refusal is not a dead end: nothing of the refused application blocks the holder from applying
again, and its history says so."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from consumers.serve import consume_results
from issuance.kafka.topics import Topics
from issuance.messages import ActivationFailed, BankRefusalReason, activation_answer_event_id
from issuance.messages import activation_request_event_id as request_id
from issuance.services.endpoints import resolve
from issuance.settings import Settings
from issuance.store.db import connect
from pipelines import nightly
from tests import factories as f
from tests.fixtures_activation import produce
from tests.fixtures_nightly import load_reference_data, publish_records


def _refused_for_the_last_time(settings: Settings, application_id: str) -> None:
    """The bank refuses the only attempt the bureau allows; the bureau's consumer applies it."""
    refusal = ActivationFailed(
        activation_answer_event_id(request_id(application_id, 1)),
        request_id(application_id, 1),
        application_id,
        f.BANK,
        BankRefusalReason.KYC_FAILED,
        datetime(2026, 11, 1, 12, 0, tzinfo=UTC),
    )
    produce(settings.kafka_bootstrap or "", Topics(settings).bank_results, [refusal.to_bytes()])
    consume_results(settings, resolve(settings), 1.5, threading.Event())


def test_the_holder_of_a_finally_refused_new_card_may_apply_again(
    settings: Settings, database_url: str
) -> None:
    settings = settings.model_copy(update={"max_activation_attempts": 1})
    load_reference_data(settings, database_url, f.reference())
    publish_records(settings, applications=[f.application()], agreements=[f.agreement()])
    assert nightly.run(["--business-date", "2026-11-01"], settings=settings).balanced

    _refused_for_the_last_time(settings, "APP-000001")

    with connect(database_url) as conn:
        row = conn.execute(
            "SELECT a.state, a.is_open, c.status, b.status, h.detail FROM applications a"
            " JOIN cards c USING (application_id) JOIN bank_accounts b USING (application_id)"
            " JOIN application_history h USING (application_id)"
            " WHERE a.application_id = 'APP-000001' AND h.to_state = 'ACTIVATION_FAILED'"
        ).fetchone()
    assert row is not None
    state, is_open, card, account, detail = row
    assert (state, is_open, card, account) == ("ACTIVATION_FAILED", False, "CANCELLED", "FAILED")
    assert "the holder may apply again" in detail

    again = f.application(application_id="APP-000002", submitted_at=f.SUBMITTED_AT.replace(day=2))
    agreement = f.agreement(agreement_id="AGR-2", application_id="APP-000002", signed_at=again.submitted_at)
    publish_records(settings, applications=[again], agreements=[agreement])
    assert nightly.run(["--business-date", "2026-11-02"], settings=settings).balanced

    with connect(database_url) as conn:
        row = conn.execute(
            "SELECT state, reasons FROM applications WHERE application_id = 'APP-000002'"
        ).fetchone()
    assert row is not None and (row[0], list(row[1])) == ("ACTIVATION_REQUESTED", [])


def test_the_holder_of_a_finally_refused_activation_may_apply_again(
    settings: Settings, database_url: str
) -> None:
    settings = settings.model_copy(update={"max_activation_attempts": 1})
    load_reference_data(settings, database_url, f.reference(persons={f.ADULT_ID: f.holder()}))
    publish_records(settings, applications=[f.activation()], agreements=[f.agreement()])
    assert nightly.run(["--business-date", "2026-11-01"], settings=settings).balanced

    _refused_for_the_last_time(settings, "APP-000001")

    again = f.activation(application_id="APP-000002", submitted_at=f.SUBMITTED_AT.replace(day=2))
    agreement = f.agreement(agreement_id="AGR-2", application_id="APP-000002", signed_at=again.submitted_at)
    publish_records(settings, applications=[again], agreements=[agreement])
    assert nightly.run(["--business-date", "2026-11-02"], settings=settings).balanced

    with connect(database_url) as conn:
        row = conn.execute(
            "SELECT state, reasons FROM applications WHERE application_id = 'APP-000002'"
        ).fetchone()
        accounts = conn.execute(
            "SELECT status FROM bank_accounts WHERE card_number = %s ORDER BY application_id", (f.CARD,)
        ).fetchall()
    assert row is not None and (row[0], list(row[1])) == ("ACTIVATION_REQUESTED", [])
    assert [a[0] for a in accounts] == ["FAILED", "REQUESTED"], "the refused account left the card free"
