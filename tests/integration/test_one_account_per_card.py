"""One savings function per card: a reference load keeps what this system activated, the database refuses a
second live account on a card, an activation is keyed by the card and creates no account, and a new card's
account is requested without a number."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors

from issuance.messages import AccountOpeningRequested, ActivationRequested
from issuance.settings import Settings
from issuance.store.db import connect
from pipelines import nightly
from tests import factories as f
from tests.fixtures_nightly import bank_requests_of, holder_of, load_reference_data, publish_records


def _activated(database_url: str, application_id: str) -> None:
    """What the bureau consumer writes when the bank reports a registry card's account active."""
    with connect(database_url) as conn:
        conn.execute(
            "UPDATE applications SET state = 'COMPLETED', is_open = false WHERE application_id = %s",
            (application_id,),
        )
        conn.execute("UPDATE person_cards SET financial_status = 'ACTIVE' WHERE card_number = %s", (f.CARD,))
        conn.commit()


def _card_state(database_url: str) -> tuple[str, int]:
    with connect(database_url) as conn:
        row = conn.execute(
            "SELECT financial_status, (SELECT count(*) FROM bank_accounts WHERE card_number = %(card)s)"
            " FROM person_cards WHERE card_number = %(card)s",
            {"card": f.CARD},
        ).fetchone()
    assert row is not None
    return str(row[0]), int(row[1])


def _activate_once(settings: Settings, database_url: str) -> None:
    reference = f.reference(persons={f.ADULT_ID: f.holder()})
    load_reference_data(settings, database_url, reference)
    publish_records(settings, applications=[f.activation()], agreements=[f.agreement()])
    assert nightly.run(["--business-date", "2026-11-01"], settings=settings).balanced
    _activated(database_url, "APP-000001")


def test_reloading_the_same_registry_keeps_the_savings_function_this_system_activated(
    settings: Settings, database_url: str
) -> None:
    _activate_once(settings, database_url)

    load_reference_data(settings, database_url, f.reference(persons={f.ADULT_ID: f.holder()}))

    assert _card_state(database_url) == ("ACTIVE", 0)


def test_a_second_activation_of_an_activated_card_is_refused_after_a_reload(
    settings: Settings, database_url: str
) -> None:
    _activate_once(settings, database_url)
    load_reference_data(settings, database_url, f.reference(persons={f.ADULT_ID: f.holder()}))
    again = f.activation(application_id="APP-000002", submitted_at=f.SUBMITTED_AT.replace(day=2))
    publish_records(
        settings,
        applications=[again],
        agreements=[
            f.agreement(agreement_id="AGR-2", application_id="APP-000002", signed_at=again.submitted_at)
        ],
    )

    assert nightly.run(["--business-date", "2026-11-02"], settings=settings).balanced

    with connect(database_url) as conn:
        row = conn.execute(
            "SELECT state, reasons FROM applications WHERE application_id = 'APP-000002'"
        ).fetchone()
    assert row is not None and (row[0], list(row[1])) == ("REJECTED", ["CARD_NOT_ELIGIBLE"])
    assert _card_state(database_url) == ("ACTIVE", 0)


def test_a_card_with_an_active_account_is_not_activatable_whatever_the_registry_says(
    settings: Settings, database_url: str
) -> None:
    _activate_once(settings, database_url)
    with connect(database_url) as conn:  # the card's account active at the bank; the registry does not know
        conn.execute(
            "UPDATE person_cards SET financial_status = 'INACTIVE' WHERE card_number = %s", (f.CARD,)
        )
        _account(conn, "APP-000001", "ACTIVE")
        conn.commit()
    again = f.activation(application_id="APP-000002", submitted_at=f.SUBMITTED_AT.replace(day=2))
    publish_records(
        settings,
        applications=[again],
        agreements=[
            f.agreement(agreement_id="AGR-2", application_id="APP-000002", signed_at=again.submitted_at)
        ],
    )

    assert nightly.run(["--business-date", "2026-11-02"], settings=settings).balanced

    with connect(database_url) as conn:
        row = conn.execute(
            "SELECT state, reasons FROM applications WHERE application_id = 'APP-000002'"
        ).fetchone()
    assert row is not None and (row[0], list(row[1])) == ("REJECTED", ["CARD_NOT_ELIGIBLE"])


def _account(conn: psycopg.Connection[tuple[object, ...]], application_id: str, status: str) -> None:
    conn.execute(
        "INSERT INTO bank_accounts (application_id, bank_code, sequence, card_number, status)"
        " VALUES (%s, 'ICBC', 1, %s, %s)",
        (application_id, f.CARD, status),
    )


@pytest.mark.parametrize("second", ["REQUESTED", "OPENED", "ACTIVE"])
def test_the_database_refuses_a_second_live_account_on_a_card(database_url: str, second: str) -> None:
    with connect(database_url) as conn:
        _account(conn, "APP-1", "OPENED")
        with pytest.raises(errors.UniqueViolation):
            _account(conn, "APP-2", second)


def test_a_refused_account_leaves_the_card_free(database_url: str) -> None:
    with connect(database_url) as conn:
        _account(conn, "APP-1", "REFUSED")
        _account(conn, "APP-2", "REQUESTED")
        conn.commit()


def test_an_activation_creates_no_account_and_names_the_card_and_the_agreement(
    settings: Settings, database_url: str
) -> None:
    load_reference_data(settings, database_url, f.reference(persons={f.ADULT_ID: f.holder()}))
    publish_records(settings, applications=[f.activation()], agreements=[f.agreement()])

    assert nightly.run(["--business-date", "2026-11-01"], settings=settings).balanced

    [request] = bank_requests_of(settings, database_url, f.activation().application_id)
    assert isinstance(request, ActivationRequested)
    holder = holder_of(settings, request)
    assert (request.card_number, holder.account_number) == (f.CARD, None), "a registry card: no number"
    agreement = f.agreement()
    assert (request.agreement_id, request.terms_version, request.document_sha256) == (
        agreement.agreement_id,
        agreement.terms_version,
        agreement.document_sha256,
    )
    with connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM bank_accounts").fetchone() == (0,)


def test_an_accepted_new_card_gets_one_account_opening_and_no_number_anywhere(
    settings: Settings, database_url: str
) -> None:
    load_reference_data(settings, database_url, f.reference())
    publish_records(settings, applications=[f.application()], agreements=[f.agreement()])

    result = nightly.run(["--business-date", "2026-11-01"], settings=settings)
    assert result.balanced

    [request] = bank_requests_of(settings, database_url, "APP-000001")
    assert isinstance(request, AccountOpeningRequested)
    holder = holder_of(settings, request)
    assert (request.attempt, holder.holder_id_number, holder.holder_name) == (1, f.ADULT_ID, f.ADULT_NAME)
    assert (request.agreement_id, request.area_code, request.branch_code) == (
        f.agreement().agreement_id,
        f.AREA,
        f.BRANCH,
    )
    with connect(database_url) as conn:
        card = conn.execute(
            "SELECT status, card_number, card_identification_code, sequence, issue_date, branch_code"
            " FROM cards WHERE application_id = 'APP-000001'"
        ).fetchone()
        account = conn.execute(
            "SELECT status, card_number, account_number_enc, account_index, sequence FROM bank_accounts"
            " WHERE application_id = 'APP-000001'"
        ).fetchone()
        state = conn.execute("SELECT state FROM applications WHERE application_id = 'APP-000001'").fetchone()
        kinds = conn.execute("SELECT event_type, count(*) FROM outbox GROUP BY 1 ORDER BY 1").fetchall()
    assert state == ("ACCEPTED",)
    assert card is not None and tuple(card) == ("ORDERED", None, None, None, None, f.BRANCH)
    assert account is not None and tuple(account) == ("REQUESTED", None, None, None, None)
    assert kinds == [("AccountOpeningRequested", 1), ("DecisionIssued", 1)]
    assert result.reconciliation["total"]["accepted"] == 1
