"""One account per card: a reference load keeps what this system activated, the database refuses a second
account, and an activation is keyed by the card."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors

from issuance.crypto import Vault
from issuance.kafka.outbox_relay import open_payload
from issuance.messages import ActivationRequested
from issuance.settings import Settings
from issuance.store.db import connect
from pipelines import nightly
from tests import factories as f
from tests.fixtures_nightly import load_reference_data, publish_records


def _activated(database_url: str, application_id: str) -> None:
    """What the bureau consumer writes when the bank reports the card's account opened."""
    with connect(database_url) as conn:
        conn.execute(
            "UPDATE applications SET state = 'ACTIVE', is_open = false WHERE application_id = %s",
            (application_id,),
        )
        conn.execute("UPDATE bank_accounts SET status = 'OPEN' WHERE application_id = %s", (application_id,))
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

    assert _card_state(database_url) == ("ACTIVE", 1)


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
    assert _card_state(database_url) == ("ACTIVE", 1)


def test_a_card_with_an_open_account_is_not_activatable_whatever_the_registry_says(
    settings: Settings, database_url: str
) -> None:
    _activate_once(settings, database_url)
    with connect(database_url) as conn:  # a registry that does not know yet, loaded before this fix
        conn.execute(
            "UPDATE person_cards SET financial_status = 'INACTIVE' WHERE card_number = %s", (f.CARD,)
        )
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


@pytest.mark.parametrize("second", ["REQUESTED", "OPEN"])
def test_the_database_refuses_a_second_live_account_on_a_card(database_url: str, second: str) -> None:
    with connect(database_url) as conn:
        _account(conn, "APP-1", "OPEN")
        with pytest.raises(errors.UniqueViolation):
            _account(conn, "APP-2", second)


def test_a_refused_account_leaves_the_card_free(database_url: str) -> None:
    with connect(database_url) as conn:
        _account(conn, "APP-1", "FAILED")
        _account(conn, "APP-2", "REQUESTED")
        conn.commit()


def _requests(settings: Settings, database_url: str) -> list[ActivationRequested]:
    vault = Vault.from_settings(settings)
    with connect(database_url) as conn:
        rows = conn.execute(
            "SELECT payload FROM outbox WHERE event_type = 'ActivationRequested' ORDER BY seq"
        ).fetchall()
    return [ActivationRequested.from_bytes(open_payload(vault, bytes(r[0]))) for r in rows]


def test_an_activation_switches_on_the_cards_account_and_names_the_agreement(
    settings: Settings, database_url: str
) -> None:
    load_reference_data(settings, database_url, f.reference(persons={f.ADULT_ID: f.holder()}))
    publish_records(settings, applications=[f.activation()], agreements=[f.agreement()])

    assert nightly.run(["--business-date", "2026-11-01"], settings=settings).balanced

    [request] = _requests(settings, database_url)
    assert (request.card_number, request.account_number) == (f.CARD, None), "no new account number"
    agreement = f.agreement()
    assert (request.agreement_id, request.terms_version, request.document_sha256) == (
        agreement.agreement_id,
        agreement.terms_version,
        agreement.document_sha256,
    )
    with connect(database_url) as conn:
        row = conn.execute(
            "SELECT card_number, account_index, account_number_enc, status FROM bank_accounts"
        ).fetchone()
    assert row is not None and tuple(row) == (f.CARD, None, None, "REQUESTED")


def test_a_new_card_request_carries_its_chip_account_and_its_agreement(
    settings: Settings, database_url: str
) -> None:
    load_reference_data(settings, database_url, f.reference())
    publish_records(settings, applications=[f.application()], agreements=[f.agreement()])

    assert nightly.run(["--business-date", "2026-11-01"], settings=settings).balanced

    [request] = _requests(settings, database_url)
    assert request.account_number is not None and request.account_number.startswith(f.bank().bin)
    assert request.agreement_id == f.agreement().agreement_id


def test_a_night_that_would_open_a_second_account_on_a_card_fails_whole_and_says_why(
    settings: Settings, database_url: str
) -> None:
    from issuance.domain.numbers import card_number
    from issuance.errors import ReconciliationFailed

    load_reference_data(settings, database_url, f.reference())
    publish_records(settings, applications=[f.application()], agreements=[f.agreement()])
    with connect(database_url) as conn:  # a live account already on the card the night will personalize
        row = conn.execute("SELECT next_value FROM allocation_counters WHERE name = 'slot'").fetchone()
        first_slot = int(row[0]) if row else 1
        conn.execute(
            "INSERT INTO bank_accounts (application_id, bank_code, sequence, card_number, status)"
            " VALUES ('ELSEWHERE', 'ICBC', 0, %s, 'OPEN')",
            (card_number(first_slot),),
        )
        conn.commit()

    with pytest.raises(ReconciliationFailed, match="second live bank account"):
        nightly.run(["--business-date", "2026-11-01"], settings=settings)

    with connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM applications").fetchone() == (0,)
        assert conn.execute("SELECT status FROM runs").fetchone() == ("FAILED",)
