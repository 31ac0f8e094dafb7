"""Article 5 on every decision: a late agreement or a request due again is decided on the reference data of
its night; a re-check rejection cancels the ordered card and withdraws the account request."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from issuance.crypto import Vault
from issuance.domain.model import IssuingArea, ReferenceData
from issuance.messages import (
    AccountOpeningRequested,
    ActivationRequested,
    account_opening_request_event_id,
)
from issuance.settings import Settings
from issuance.store.db import connect
from pipelines import nightly
from tests import factories as f
from tests.fixtures_nightly import (
    bank_requests_of,
    holder_of,
    load_reference_data,
    publish_records,
    refused_with_attempts_left,
)

NIGHT_1, NIGHT_2 = "2026-11-01", "2026-11-02"


def _withdrawn(reference: ReferenceData) -> ReferenceData:
    areas = {**reference.issuing_areas, f.AREA: IssuingArea(f.AREA, "北京市朝阳区", approved=False)}
    return replace(reference, issuing_areas=areas)


def _uninsured(reference: ReferenceData) -> ReferenceData:
    return replace(reference, persons={f.ADULT_ID: f.person(insured=False)})


def _night(settings: Settings, day: str) -> dict[str, Any]:
    result = nightly.run(["--business-date", day], settings=settings)
    assert result.balanced
    return dict(result.reconciliation["run"])


def _application(database_url: str, application_id: str) -> dict[str, Any]:
    with connect(database_url) as conn:
        row = conn.execute(
            "SELECT a.state, a.reasons, a.is_open,"
            " (SELECT count(*) FROM cards c WHERE c.application_id = a.application_id"
            "   AND c.status <> 'CANCELLED'),"
            " (SELECT count(*) FROM bank_accounts b WHERE b.application_id = a.application_id),"
            " (SELECT count(*) FROM outbox o"
            "   WHERE o.event_type IN ('AccountOpeningRequested', 'ActivationRequested')"
            "   AND o.message_key = convert_to(a.application_id, 'UTF8')),"
            " (SELECT array_agg(d.to_state ORDER BY d.id) FROM application_history d"
            "   WHERE d.application_id = a.application_id)"
            " FROM applications a WHERE a.application_id = %s",
            (application_id,),
        ).fetchone()
    assert row is not None
    state, reasons, is_open, cards, accounts, requests, history = row
    return {
        "state": state,
        "reasons": sorted(reasons),
        "open": is_open,
        "live_cards": cards,
        "live_accounts": accounts,
        "requests": requests,
        "history": list(history),
    }


@pytest.mark.parametrize(
    ("change", "reason"), [(_withdrawn, "AREA_NOT_APPROVED"), (_uninsured, "NOT_INSURED")]
)
def test_a_late_agreement_is_accepted_only_on_tonights_reference_data(
    settings: Settings, database_url: str, change: Any, reason: str
) -> None:
    load_reference_data(settings, database_url, f.reference())
    publish_records(settings, applications=[f.application()])
    _night(settings, NIGHT_1)
    assert _application(database_url, "APP-000001")["state"] == "AWAITING_AGREEMENT"

    load_reference_data(settings, database_url, change(f.reference()))
    publish_records(settings, agreements=[f.agreement()])
    report = _night(settings, NIGHT_2)

    assert _application(database_url, "APP-000001") == {
        "state": "REJECTED",
        "reasons": [reason],
        "open": False,
        "live_cards": 0,
        "live_accounts": 0,
        "requests": 0,
        "history": ["SUBMITTED", "AWAITING_AGREEMENT", "REJECTED"],
    }
    assert report["reexamined"] == {"REJECTED": 1}
    with connect(database_url) as conn:
        row = conn.execute("SELECT status FROM agreements WHERE agreement_id = 'AGR-000001'").fetchone()
    assert row is not None and row[0] == "MATCHED", "the agreement was valid; the application was not"


def test_a_late_agreement_on_unchanged_reference_data_is_still_accepted(
    settings: Settings, database_url: str
) -> None:
    load_reference_data(settings, database_url, f.reference())
    publish_records(settings, applications=[f.application()])
    _night(settings, NIGHT_1)
    publish_records(settings, agreements=[f.agreement()])
    report = _night(settings, NIGHT_2)

    found = _application(database_url, "APP-000001")
    assert (found["state"], found["live_cards"], found["live_accounts"], found["requests"]) == (
        "ACCEPTED",
        1,
        1,
        1,
    )
    assert report["reexamined"] == {"ACCEPTED": 1}
    assert (report["cards_ordered"], report["accounts_requested"], report["account_opening_requests"]) == (
        1,
        1,
        1,
    )
    [request] = bank_requests_of(settings, database_url, "APP-000001")
    assert isinstance(request, AccountOpeningRequested)
    assert (request.agreement_id, request.attempt) == ("AGR-000001", 1), "the late agreement travels along"
    assert _sides(database_url, "APP-000001") == ("ORDERED", None, "REQUESTED", None)


def _sides(database_url: str, application_id: str) -> tuple[Any, ...]:
    """(card status, card number, account status, account number envelope) of a new card's application."""
    with connect(database_url) as conn:
        row = conn.execute(
            "SELECT c.status, c.card_number, b.status, b.account_number_enc FROM cards c"
            " LEFT JOIN bank_accounts b USING (application_id) WHERE c.application_id = %s",
            (application_id,),
        ).fetchone()
    assert row is not None
    return tuple(row)


def _card_history(database_url: str, application_id: str) -> list[tuple[str, str | None, str]]:
    with connect(database_url) as conn:
        rows = conn.execute(
            "SELECT side, from_status, to_status FROM card_history WHERE application_id = %s"
            " AND source = 'nightly' ORDER BY id",
            (application_id,),
        ).fetchall()
    return [(str(side), frm, str(to)) for side, frm, to in rows]


def test_a_request_due_again_is_rejected_when_the_holder_is_no_longer_insured(
    settings: Settings, database_url: str
) -> None:
    load_reference_data(settings, database_url, f.reference())
    publish_records(settings, applications=[f.application()], agreements=[f.agreement()])
    _night(settings, NIGHT_1)
    refused_with_attempts_left(database_url, "APP-000001")

    load_reference_data(settings, database_url, _uninsured(f.reference()))
    report = _night(settings, NIGHT_2)

    found = _application(database_url, "APP-000001")
    assert (found["state"], found["reasons"], found["open"]) == ("REJECTED", ["NOT_INSURED"], False)
    assert (found["live_cards"], found["live_accounts"], found["requests"]) == (0, 0, 1), (
        "no second request; the ordered card is cancelled, the account request withdrawn"
    )
    assert found["history"][-1] == "REJECTED"
    assert (report["requested_again"], report["retries_rejected"], report["cards_cancelled"]) == (0, 1, 1)
    with connect(database_url) as conn:
        row = conn.execute(
            "SELECT c.status, a.retry_due FROM cards c JOIN applications a USING (application_id)"
            " WHERE application_id = 'APP-000001'"
        ).fetchone()
        decided = conn.execute(
            "SELECT count(*) FROM outbox WHERE event_type = 'DecisionIssued' AND run_id = 2"
        ).fetchone()
    assert row is not None and tuple(row) == ("CANCELLED", False)
    assert decided is not None and decided[0] == 1, "the branch is told"
    assert _card_history(database_url, "APP-000001") == [
        ("card", None, "ORDERED"),
        ("financial", "NONE", "REQUESTED"),
        ("card", "ORDERED", "CANCELLED"),
        ("financial", "REQUESTED", "NONE"),
    ]


def test_a_request_due_again_on_unchanged_reference_data_is_requested_again(
    settings: Settings, database_url: str
) -> None:
    load_reference_data(settings, database_url, f.reference())
    publish_records(settings, applications=[f.application()], agreements=[f.agreement()])
    _night(settings, NIGHT_1)
    refused_with_attempts_left(database_url, "APP-000001")

    report = _night(settings, NIGHT_2)

    assert (report["requested_again"], report["retries_rejected"]) == (1, 0)
    assert report["account_opening_requests"] == 1
    found = _application(database_url, "APP-000001")
    assert (found["state"], found["live_cards"], found["live_accounts"]) == ("ACCEPTED", 1, 1)
    requests = bank_requests_of(settings, database_url, "APP-000001")
    assert [type(r) for r in requests] == [AccountOpeningRequested, AccountOpeningRequested]
    assert [(r.event_id, r.attempt, r.agreement_id) for r in requests] == [
        (account_opening_request_event_id("APP-000001", 1), 1, "AGR-000001"),
        (account_opening_request_event_id("APP-000001", 2), 2, "AGR-000001"),
    ]
    with connect(database_url) as conn:
        row = conn.execute(
            "SELECT retry_due FROM applications WHERE application_id = 'APP-000001'"
        ).fetchone()
    assert row is not None and row[0] is False, "asked again: no longer due"
    assert _sides(database_url, "APP-000001") == ("ORDERED", None, "REQUESTED", None)

    again = _night(settings, "2026-11-03")
    assert again["requested_again"] == 0, "asked once per refusal"


def test_a_late_agreement_for_an_existing_card_switches_on_its_account(
    settings: Settings, database_url: str
) -> None:
    load_reference_data(settings, database_url, f.reference(persons={f.ADULT_ID: f.holder()}))
    publish_records(settings, applications=[f.activation()])
    _night(settings, NIGHT_1)
    publish_records(settings, agreements=[f.agreement()])
    _night(settings, NIGHT_2)

    [request] = bank_requests_of(settings, database_url, f.activation().application_id)
    assert isinstance(request, ActivationRequested)
    holder = holder_of(settings, request)
    assert (request.card_number, holder.account_number, request.agreement_id) == (f.CARD, None, "AGR-000001")
    with connect(database_url) as conn:
        accounts = conn.execute("SELECT count(*) FROM bank_accounts").fetchone()
    assert accounts is not None and accounts[0] == 0, "an activation creates no account row"


def test_an_activation_of_a_card_this_system_issued_carries_the_banks_account_number(
    settings: Settings, database_url: str
) -> None:
    """The card's account was opened by the bank (its number stored sealed): the activation names it."""
    load_reference_data(settings, database_url, f.reference())
    publish_records(settings, applications=[f.application()], agreements=[f.agreement()])
    _night(settings, NIGHT_1)
    vault = Vault.from_settings(settings)
    account = "6222020000000000018"
    with connect(database_url) as conn:  # what the bank's answer, the vendor and the branch leave behind
        conn.execute(
            "UPDATE applications SET state = 'COMPLETED', is_open = false WHERE application_id = 'APP-000001'"
        )
        conn.execute(
            "UPDATE cards SET status = 'ISSUED', card_number = %s WHERE application_id = 'APP-000001'",
            (f.CARD,),
        )
        conn.execute(
            "UPDATE bank_accounts SET status = 'OPENED', card_number = %s, account_number_enc = %s,"
            " account_index = %s WHERE application_id = 'APP-000001'",
            (f.CARD, vault.encrypt(account), vault.blind_index(account)),
        )
        conn.commit()
    load_reference_data(settings, database_url, f.reference(persons={f.ADULT_ID: f.holder()}))
    activation = f.activation(application_id="APP-000002")
    publish_records(
        settings,
        applications=[activation],
        agreements=[f.agreement(agreement_id="AGR-000002", application_id="APP-000002")],
    )
    report = _night(settings, NIGHT_2)

    assert report["activation_requests"] == 1
    [request] = bank_requests_of(settings, database_url, "APP-000002")
    assert isinstance(request, ActivationRequested)
    holder = holder_of(settings, request)
    assert (request.card_number, holder.account_number, request.attempt) == (f.CARD, account, 1)
    with connect(database_url) as conn:
        accounts = conn.execute("SELECT count(*) FROM bank_accounts").fetchone()
    assert accounts is not None and accounts[0] == 1, "no account row of its own"
