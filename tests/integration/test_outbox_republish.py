"""Events lost with the broker are sent again with their original ids: every application answered once."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from consumers.bank_simulator import FailurePolicy
from consumers.serve import consume_results, serve_banks
from issuance.services.endpoints import resolve
from issuance.settings import Settings
from issuance.store.db import connect
from pipelines import nightly
from tests.fixtures_broker import OwnBroker, cli, on_broker
from tests.fixtures_nightly import load_reference_file, make_generated, publish_night, topic_event_ids

OPERATOR = "ops.li"
IDLE = 1.5


def _scalar(database_url: str, query: str) -> Any:
    with connect(database_url) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]


def _column(database_url: str, query: str) -> list[str]:
    with connect(database_url) as conn:
        return sorted(str(r[0]) for r in conn.execute(query).fetchall())


def _banks_then_bureau(settings: Settings) -> dict[str, Any]:
    """`issuance bank serve --all --until-idle`, then `issuance consume --until-idle` (in process)."""
    endpoints = resolve(settings)
    banks = serve_banks(settings, endpoints, None, FailurePolicy(), IDLE, threading.Event())
    bureau = consume_results(settings, endpoints, IDLE, threading.Event())
    return {"banks": banks, "bureau": bureau}


def _effects(database_url: str) -> dict[str, Any]:
    """What answering leaves behind; a repeat must not change any of it."""
    return {
        "states": _column(database_url, "SELECT application_id || ':' || state FROM applications"),
        "accounts": _scalar(database_url, "SELECT count(*) FROM bank_sim.accounts"),
        "answers_applied": _scalar(
            database_url, "SELECT count(*) FROM inbox WHERE consumer = 'activation-results'"
        ),
        "to_active": _scalar(
            database_url, "SELECT count(*) FROM application_history WHERE to_state = 'ACTIVE'"
        ),
        "decisions": _scalar(database_url, "SELECT count(*) FROM outbox WHERE event_type = 'DecisionIssued'"),
    }


def _republish(settings: Settings, *args: str) -> dict[str, Any]:
    done = cli(settings, "outbox", "republish", "--operator", OPERATOR, "--json", *args)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_requests_lost_with_the_broker_are_sent_again_and_answered_once(
    own_broker: OwnBroker, settings: Settings, database_url: str, tmp_path: Path
) -> None:
    before = on_broker(settings, own_broker.bootstrap)
    generated = make_generated(tmp_path / "data", 60)
    load_reference_file(before, database_url, generated)
    publish_night(before, generated, 1, raw=False)
    night = nightly.run(["--business-date", generated.business_date(1)], settings=before)
    assert night.balanced
    waiting = _column(
        database_url, "SELECT application_id FROM applications WHERE state = 'ACTIVATION_REQUESTED'"
    )
    assert waiting

    after = on_broker(settings, own_broker.restart())  # between the night and the banks: requests lost
    lost = _banks_then_bureau(after)
    assert sum(bank["requests"] for bank in lost["banks"].values()) == 0

    refused = cli(after, "outbox", "republish", "--operator", OPERATOR)
    assert refused.returncode == 2
    counted = _republish(after, "--unanswered-after-hours", "0")
    assert (counted["events"], counted["applied"]) == (len(waiting), False)
    assert _scalar(database_url, "SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0

    sent = _republish(after, "--unanswered-after-hours", "0", "--yes")

    assert sent["events"] == len(waiting) and sent["sent"] >= len(waiting)
    _banks_then_bureau(after)
    answered = _column(database_url, "SELECT application_id FROM applications WHERE state = 'ACTIVE'")
    assert answered == waiting  # every request lost with the broker reached its bank and was answered
    effects = _effects(database_url)
    assert effects["to_active"] == len(waiting) == effects["accounts"]
    assert _republish(after, "--unanswered-after-hours", "0")["events"] == 0

    # The whole night's requests once more: the banks answer from their inboxes, the bureau applies nothing.
    request_topics = _column(
        database_url, "SELECT DISTINCT topic FROM outbox WHERE event_type = 'ActivationRequested'"
    )
    topics = [arg for topic in request_topics for arg in ("--topic", topic)]
    again = _republish(after, "--run", str(night.run_id), *topics, "--yes")
    assert again["events"] == len(waiting)
    repeat = _banks_then_bureau(after)

    assert sum(bank["repeated"] for bank in repeat["banks"].values()) == len(waiting)
    assert repeat["bureau"]["duplicates"] == len(waiting)
    assert _effects(database_url) == effects
    audit = _column(
        database_url, "SELECT actor || ' ' || entity_id FROM audit_log WHERE action = 'outbox.republish'"
    )
    assert audit == sorted(
        [f"{OPERATOR} unanswered:0h", f"{OPERATOR} run:{night.run_id} topics:{','.join(request_topics)}"]
    )


def test_the_night_sends_again_the_requests_unanswered_after_the_configured_hours(
    settings: Settings, database_url: str, tmp_path: Path
) -> None:
    generated = make_generated(tmp_path / "data", 60)
    load_reference_file(settings, database_url, generated)
    publish_night(settings, generated, 1, raw=False)
    day = generated.business_date(1)
    assert nightly.run(["--business-date", day], settings=settings).resent_unanswered == 0
    waiting = _column(
        database_url, "SELECT application_id FROM applications WHERE state = 'ACTIVATION_REQUESTED'"
    )
    answered, unanswered = waiting[0], waiting[1:]
    with connect(database_url) as conn:  # a day passes; the bank answers one of them
        conn.execute(
            "UPDATE outbox SET published_at = published_at - interval '25 hours'"
            " WHERE event_type = 'ActivationRequested'"
        )
        conn.execute(
            "UPDATE applications SET updated_at = updated_at - interval '25 hours'"
            " WHERE state = 'ACTIVATION_REQUESTED'"
        )
        conn.execute(
            "UPDATE applications SET state = 'ACTIVE', is_open = false WHERE application_id = %s", (answered,)
        )
        conn.commit()

    second = nightly.run(["--business-date", day], settings=settings)

    assert second.balanced
    assert second.resent_unanswered == len(unanswered) == second.as_dict()["resent_unanswered"]
    request_topics = _column(
        database_url, "SELECT DISTINCT topic FROM outbox WHERE event_type = 'ActivationRequested'"
    )
    on_topics = topic_event_ids(settings, request_topics)
    with connect(database_url) as conn:
        ids = dict(
            conn.execute(
                "SELECT event_id, convert_from(message_key, 'UTF8') FROM outbox"
                " WHERE event_type = 'ActivationRequested'"
            ).fetchall()
        )
    sends = {app: 0 for app in waiting}
    for event_id in on_topics:
        sends[ids[event_id]] += 1
    assert sends == {app: 1 if app == answered else 2 for app in waiting}
    assert (
        nightly.run(["--business-date", day], settings=settings).resent_unanswered == 0
    )  # sent a moment ago
    assert _column(database_url, "SELECT actor FROM audit_log WHERE action = 'outbox.republish'") == [
        "batch:nightly"
    ]
