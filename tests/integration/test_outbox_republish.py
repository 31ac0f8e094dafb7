"""Events lost with the broker are sent again with their original ids: every application answered once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from issuance.settings import Settings
from issuance.store.db import connect
from pipelines import nightly
from tests.fixtures_broker import OwnBroker, cli, on_broker
from tests.fixtures_nightly import load_reference_file, make_generated, publish_night, topic_event_ids

OPERATOR = "ops.li"
REQUESTS = "event_type IN ('AccountOpeningRequested', 'ActivationRequested')"


def _scalar(database_url: str, query: str) -> Any:
    with connect(database_url) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]


def _column(database_url: str, query: str) -> list[str]:
    with connect(database_url) as conn:
        return sorted(str(r[0]) for r in conn.execute(query).fetchall())


def _answered(database_url: str, application_ids: list[str]) -> None:
    """What the bureau's consumer writes for the bank's positive answers: a new card's account OPENED, an
    activation COMPLETED."""
    with connect(database_url) as conn:
        conn.execute(
            "UPDATE bank_accounts SET status = 'OPENED' WHERE application_id = ANY(%s)", (application_ids,)
        )
        conn.execute(
            "UPDATE applications SET state = 'COMPLETED', is_open = false"
            " WHERE application_id = ANY(%s) AND application_type = 'FINANCIAL_ACTIVATION'",
            (application_ids,),
        )
        conn.commit()


def _republish(settings: Settings, *args: str) -> dict[str, Any]:
    done = cli(settings, "outbox", "republish", "--operator", OPERATOR, "--json", *args)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def _request_ids(database_url: str) -> dict[str, str]:
    """event id -> application id of every bank request."""
    with connect(database_url) as conn:
        return dict(
            conn.execute(
                f"SELECT event_id, convert_from(message_key, 'UTF8') FROM outbox WHERE {REQUESTS}"
            ).fetchall()
        )


def test_requests_lost_with_the_broker_are_sent_again_with_their_ids(
    own_broker: OwnBroker, settings: Settings, database_url: str, tmp_path: Path
) -> None:
    """Both request kinds: account openings of new cards and activations of existing ones."""
    before = on_broker(settings, own_broker.bootstrap)
    generated = make_generated(tmp_path / "data", 60)
    load_reference_file(before, database_url, generated)
    publish_night(before, generated, 1, raw=False)
    night = nightly.run(["--business-date", generated.business_date(1)], settings=before)
    assert night.balanced
    waiting = _column(database_url, "SELECT application_id FROM applications WHERE state = 'ACCEPTED'")
    kinds = _column(database_url, f"SELECT DISTINCT event_type FROM outbox WHERE {REQUESTS}")
    assert waiting and kinds == ["AccountOpeningRequested", "ActivationRequested"]

    after = on_broker(settings, own_broker.restart())  # between the night and the banks: requests lost
    refused = cli(after, "outbox", "republish", "--operator", OPERATOR)
    assert refused.returncode == 2
    counted = _republish(after, "--unanswered-after-hours", "0")
    assert (counted["events"], counted["applied"]) == (len(waiting), False)
    assert {key.split(" (")[1].rstrip(")") for key in counted["by_topic"]} == set(kinds)
    pending = "SELECT count(*) FROM outbox WHERE published_at IS NULL AND set_aside_at IS NULL"
    assert _scalar(database_url, pending) == 0

    sent = _republish(after, "--unanswered-after-hours", "0", "--yes")

    assert sent["events"] == len(waiting) and sent["sent"] >= len(waiting)
    request_topics = _column(database_url, f"SELECT DISTINCT topic FROM outbox WHERE {REQUESTS}")
    ids = _request_ids(database_url)
    on_topics = topic_event_ids(after, request_topics)
    assert sorted(ids[e] for e in on_topics) == waiting, "each waiting application's request, its own id"

    _answered(database_url, waiting[:1])
    assert _republish(after, "--unanswered-after-hours", "0")["events"] == len(waiting) - 1
    _answered(database_url, waiting)
    assert _republish(after, "--unanswered-after-hours", "0")["events"] == 0

    # The whole night's requests once more, chosen by run and topic (answered or not).
    topics = [arg for topic in request_topics for arg in ("--topic", topic)]
    again = _republish(after, "--run", str(night.run_id), *topics, "--yes")
    assert again["events"] == len(waiting)
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
    waiting = _column(database_url, "SELECT application_id FROM applications WHERE state = 'ACCEPTED'")
    answered, unanswered = waiting[0], waiting[1:]
    with connect(database_url) as conn:  # a day passes; the bank answers one of them
        conn.execute(f"UPDATE outbox SET published_at = published_at - interval '25 hours' WHERE {REQUESTS}")
        conn.execute(
            "UPDATE applications SET updated_at = updated_at - interval '25 hours' WHERE state = 'ACCEPTED'"
        )
        conn.commit()
    _answered(database_url, [answered])

    second = nightly.run(["--business-date", day], settings=settings)

    assert second.balanced
    assert second.resent_unanswered == len(unanswered) == second.as_dict()["resent_unanswered"]
    request_topics = _column(database_url, f"SELECT DISTINCT topic FROM outbox WHERE {REQUESTS}")
    on_topics = topic_event_ids(settings, request_topics)
    ids = _request_ids(database_url)
    sends = {app: 0 for app in waiting}
    for event_id in on_topics:
        sends[ids[event_id]] += 1
    assert sends == {app: 1 if app == answered else 2 for app in waiting}
    assert (
        nightly.run(["--business-date", day], settings=settings).resent_unanswered == 0
    )  # sent a moment ago
    assert _column(database_url, "SELECT actor FROM audit_log WHERE action = 'outbox.republish'") == [
        "service:nightly"
    ]
