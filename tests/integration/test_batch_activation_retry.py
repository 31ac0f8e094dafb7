"""Refused bank requests with attempts left (`retry_due`) are requested again by the next run: the same kind
of request, attempt = refusals + 1, the same event-id scheme; a final refusal is never asked again."""

from __future__ import annotations

from pathlib import Path

from issuance.messages import (
    AccountOpeningRequested,
    ActivationRequested,
    account_opening_request_event_id,
    activation_request_event_id,
)
from issuance.settings import Settings
from issuance.store.db import connect
from pipelines import nightly
from tests.fixtures_nightly import (
    bank_requests_of,
    load_reference_file,
    make_generated,
    publish_night,
    refused_with_attempts_left,
)


def _accepted(database_url: str, application_type: str, count: int) -> list[str]:
    with connect(database_url) as conn:
        return [
            str(r[0])
            for r in conn.execute(
                "SELECT application_id FROM applications WHERE state = 'ACCEPTED' AND application_type = %s"
                " ORDER BY application_id LIMIT %s",
                (application_type, count),
            )
        ]


def test_refused_requests_are_requested_again_with_the_next_attempt(
    settings: Settings, database_url: str, tmp_path: Path
) -> None:
    generated = make_generated(tmp_path / "data", 120)
    load_reference_file(settings, database_url, generated)
    publish_night(settings, generated, 1, raw=False)
    day = generated.business_date(1)
    assert nightly.run(["--business-date", day], settings=settings).balanced
    new_card, exhausted = _accepted(database_url, "NEW_CARD", 2)
    [activation] = _accepted(database_url, "FINANCIAL_ACTIVATION", 1)
    refused_with_attempts_left(database_url, new_card)
    refused_with_attempts_left(database_url, activation)
    with connect(
        database_url
    ) as conn:  # the bank's last refusal (the bureau consumer's ACCOUNT_REFUSED_FINAL)
        conn.execute(
            "UPDATE applications SET state = 'FAILED', is_open = false, bank_refusals = %s"
            " WHERE application_id = %s",
            (settings.max_activation_attempts, exhausted),
        )
        conn.execute("UPDATE cards SET status = 'CANCELLED' WHERE application_id = %s", (exhausted,))
        conn.execute("UPDATE bank_accounts SET status = 'REFUSED' WHERE application_id = %s", (exhausted,))
        conn.commit()

    result = nightly.run(["--business-date", day], settings=settings)

    assert result.balanced
    run = result.reconciliation["run"]
    assert (run["requested_again"], run["account_opening_requests"], run["activation_requests"]) == (2, 1, 1)
    opening = bank_requests_of(settings, database_url, new_card)
    assert [type(r) for r in opening] == [AccountOpeningRequested, AccountOpeningRequested]
    assert [(r.event_id, r.attempt) for r in opening] == [
        (account_opening_request_event_id(new_card, 1), 1),
        (account_opening_request_event_id(new_card, 2), 2),
    ]
    activating = bank_requests_of(settings, database_url, activation)
    assert [type(r) for r in activating] == [ActivationRequested, ActivationRequested]
    assert [(r.event_id, r.attempt) for r in activating] == [
        (activation_request_event_id(activation, 1), 1),
        (activation_request_event_id(activation, 2), 2),
    ]
    assert opening[1].agreement_id == opening[0].agreement_id
    assert len(bank_requests_of(settings, database_url, exhausted)) == 1, "a final refusal is not asked again"
    with connect(database_url) as conn:
        rows = dict(
            conn.execute(
                "SELECT application_id, state || ':' || retry_due FROM applications"
                " WHERE application_id = ANY(%s)",
                ([new_card, activation, exhausted],),
            ).fetchall()
        )
        published = conn.execute(
            "SELECT count(*) FROM outbox WHERE event_id = ANY(%s) AND published_at IS NOT NULL",
            (
                [
                    account_opening_request_event_id(new_card, 2),
                    activation_request_event_id(activation, 2),
                ],
            ),
        ).fetchone()
    assert rows == {new_card: "ACCEPTED:false", activation: "ACCEPTED:false", exhausted: "FAILED:false"}
    assert published is not None and published[0] == 2, "the night publishes them"
