"""Failed activations with attempts left are requested again by the next run, up to the maximum."""

from __future__ import annotations

from pathlib import Path

from issuance.crypto import Vault
from issuance.kafka.outbox_relay import open_payload
from issuance.messages import ActivationRequested, activation_request_event_id, decode_event
from issuance.settings import Settings
from issuance.store.db import connect
from pipelines import nightly
from tests.fixtures_nightly import load_reference_file, make_generated, publish_night


def test_failed_activation_is_requested_again_until_attempts_run_out(
    settings: Settings, database_url: str, tmp_path: Path
) -> None:
    generated = make_generated(tmp_path / "data", 120)
    load_reference_file(settings, database_url, generated)
    publish_night(settings, generated, 1, raw=False)
    day = generated.business_date(1)
    assert nightly.run(["--business-date", day], settings=settings).balanced
    with connect(database_url) as conn:
        retry, exhausted = [
            str(r[0])
            for r in conn.execute(
                "SELECT application_id FROM applications WHERE state = 'ACTIVATION_REQUESTED'"
                " ORDER BY application_id LIMIT 2"
            )
        ]
        # What the bureau consumer does on a failed answer (attempts counts the failures).
        conn.execute(
            "UPDATE applications SET state = 'ACTIVATION_FAILED', bank_refusals = 1, is_open = true"
            " WHERE application_id = %s",
            (retry,),
        )
        conn.execute(
            "UPDATE applications SET state = 'ACTIVATION_FAILED', bank_refusals = %s, is_open = false"
            " WHERE application_id = %s",
            (settings.max_activation_attempts, exhausted),
        )
        conn.commit()

    result = nightly.run(["--business-date", day], settings=settings)

    assert result.balanced
    assert result.reconciliation["run"]["requested_again"] == 1
    with connect(database_url) as conn:
        rows = dict(
            conn.execute(
                "SELECT application_id, state FROM applications WHERE application_id = ANY(%s)",
                ([retry, exhausted],),
            ).fetchall()
        )
        events = {
            str(r[0])
            for r in conn.execute(
                "SELECT event_id FROM outbox WHERE event_type = 'ActivationRequested' AND"
                " published_at IS NOT NULL"
            )
        }
    assert rows == {retry: "ACTIVATION_REQUESTED", exhausted: "ACTIVATION_FAILED"}
    assert activation_request_event_id(retry, 2) in events
    with connect(database_url) as conn:
        row = conn.execute(
            "SELECT payload, payload_encrypted FROM outbox WHERE event_id = %s",
            (activation_request_event_id(retry, 2),),
        ).fetchone()
    assert row is not None and row[1], "activation requests carry personal data: sealed in the outbox"
    request = decode_event(open_payload(Vault.from_settings(settings), bytes(row[0])))
    assert isinstance(request, ActivationRequested)
    assert (request.application_id, request.attempt) == (retry, 2)
    assert activation_request_event_id(exhausted, settings.max_activation_attempts + 1) not in events
