"""Article 5 on every decision: a late agreement or a retry is decided on the reference data of its night."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from issuance.crypto import Vault
from issuance.domain.model import IssuingArea, ReferenceData
from issuance.kafka.outbox_relay import open_payload
from issuance.messages import ActivationRequested
from issuance.settings import Settings
from issuance.store.db import connect
from pipelines import nightly
from tests import factories as f
from tests.fixtures_nightly import load_reference_data, publish_records

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
            " (SELECT count(*) FROM bank_accounts b WHERE b.application_id = a.application_id"
            "   AND b.status <> 'FAILED'),"
            " (SELECT count(*) FROM outbox o WHERE o.event_type = 'ActivationRequested'"
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
        "ACTIVATION_REQUESTED",
        1,
        1,
        1,
    )
    assert report["reexamined"] == {"ACTIVATION_REQUESTED": 1}
    assert _request_agreements(settings, database_url) == ["AGR-000001"], "the late agreement travels along"


def test_a_retry_is_rejected_when_the_holder_is_no_longer_insured(
    settings: Settings, database_url: str
) -> None:
    load_reference_data(settings, database_url, f.reference())
    publish_records(settings, applications=[f.application()], agreements=[f.agreement()])
    _night(settings, NIGHT_1)
    with connect(database_url) as conn:  # what the bureau consumer writes for a refusal with attempts left
        conn.execute(
            "UPDATE applications SET state = 'ACTIVATION_FAILED', bank_refusals = 1, is_open = true"
            " WHERE application_id = 'APP-000001'"
        )
        conn.execute("UPDATE bank_accounts SET status = 'FAILED' WHERE application_id = 'APP-000001'")
        conn.commit()

    load_reference_data(settings, database_url, _uninsured(f.reference()))
    report = _night(settings, NIGHT_2)

    found = _application(database_url, "APP-000001")
    assert (found["state"], found["reasons"], found["open"]) == ("REJECTED", ["NOT_INSURED"], False)
    assert (found["live_cards"], found["live_accounts"], found["requests"]) == (0, 0, 1), (
        "no second request; the card in production is cancelled, the refused account stays refused"
    )
    assert found["history"][-1] == "REJECTED"
    assert (report["requested_again"], report["retries_rejected"]) == (0, 1)
    with connect(database_url) as conn:
        decided = conn.execute(
            "SELECT count(*) FROM outbox WHERE event_type = 'DecisionIssued' AND run_id = 2"
        ).fetchone()
    assert decided is not None and decided[0] == 1, "the branch is told"


def test_a_retry_on_unchanged_reference_data_is_requested_again(
    settings: Settings, database_url: str
) -> None:
    load_reference_data(settings, database_url, f.reference())
    publish_records(settings, applications=[f.application()], agreements=[f.agreement()])
    _night(settings, NIGHT_1)
    with connect(database_url) as conn:
        conn.execute(
            "UPDATE applications SET state = 'ACTIVATION_FAILED', bank_refusals = 1, is_open = true"
            " WHERE application_id = 'APP-000001'"
        )
        conn.execute("UPDATE bank_accounts SET status = 'FAILED' WHERE application_id = 'APP-000001'")
        conn.commit()

    report = _night(settings, NIGHT_2)

    assert (report["requested_again"], report["retries_rejected"]) == (1, 0)
    assert _application(database_url, "APP-000001")["state"] == "ACTIVATION_REQUESTED"
    assert _request_agreements(settings, database_url) == ["AGR-000001", "AGR-000001"]


def _request_agreements(settings: Settings, database_url: str) -> list[str | None]:
    """The agreement each activation request names, in the order they were written."""
    vault = Vault.from_settings(settings)
    with connect(database_url) as conn:
        rows = conn.execute(
            "SELECT payload FROM outbox WHERE event_type = 'ActivationRequested' ORDER BY seq"
        ).fetchall()
    return [ActivationRequested.from_bytes(open_payload(vault, bytes(r[0]))).agreement_id for r in rows]


def test_a_late_agreement_for_an_existing_card_switches_on_its_account(
    settings: Settings, database_url: str
) -> None:
    load_reference_data(settings, database_url, f.reference(persons={f.ADULT_ID: f.holder()}))
    publish_records(settings, applications=[f.activation()])
    _night(settings, NIGHT_1)
    publish_records(settings, agreements=[f.agreement()])
    _night(settings, NIGHT_2)

    vault = Vault.from_settings(settings)
    with connect(database_url) as conn:
        [(payload,)] = conn.execute(
            "SELECT payload FROM outbox WHERE event_type = 'ActivationRequested'"
        ).fetchall()
        account = conn.execute("SELECT card_number, account_number_enc FROM bank_accounts").fetchone()
    request = ActivationRequested.from_bytes(open_payload(vault, bytes(payload)))
    assert (request.card_number, request.account_number, request.agreement_id) == (f.CARD, None, "AGR-000001")
    assert account is not None and tuple(account) == (f.CARD, None)
