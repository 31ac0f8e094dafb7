"""Receiving a vendor's return file against the real PostgreSQL (and the broker for the dispatches)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from issuance.crypto import Vault
from issuance.domain.lifecycle import ApplicationState, CardStatus
from issuance.domain.vendor_return import (
    LineRefusal,
    Refused,
    ReturnFileRefused,
    parse_signature,
    signature_path,
)
from issuance.kafka.client_config import KafkaClientConfig
from issuance.kafka.outbox_relay import publish_outbox
from issuance.kafka.outbox_signing import RelayTrust
from issuance.kafka.topics import Topics, ensure_topics
from issuance.messages import CardDispatched, DecisionIssued, decode_event
from issuance.settings import Settings
from issuance.store.db import connect
from issuance.trust.parties import vendor
from issuance.vendor_returns import ReceiveReport, receive
from tests.factories import BRANCH
from tests.fixtures_partners import (
    VENDOR,
    database_url,
    personalize_again,
    read_topic,
    rows,
    seed_cards,
    sign_return_file,
    vendor_answers,
    write_vendor_file,
)
from tests.fixtures_services import Partners

OPERATOR = "operator-li"


def receive_file(settings: Settings, path: Path, max_productions: int = 3) -> ReceiveReport:
    """Receive a return file with the signature beside it (none when there is no `.sig`)."""
    sig = signature_path(path)
    signature = parse_signature(sig.read_bytes()) if sig.exists() else None
    with connect(database_url(settings), autocommit=True) as conn:
        return receive(
            conn,
            path.read_bytes(),
            signature=signature,
            operator=OPERATOR,
            max_productions=max_productions,
            topics=Topics(settings),
        )


def snapshot(settings: Settings) -> dict[str, list[tuple[object, ...]]]:
    return {
        "cards": rows(
            settings,
            "SELECT application_id, status, chip_serial, produced_at, production_failures FROM cards"
            " ORDER BY 1",
        ),
        "applications": rows(
            settings, "SELECT application_id, state, is_open, version FROM applications ORDER BY 1"
        ),
        "card_history": rows(
            settings, "SELECT application_id, from_status, to_status, source FROM card_history"
        ),
        "outbox": rows(settings, "SELECT event_id, topic FROM outbox ORDER BY 1"),
        "vendor_returns": rows(settings, "SELECT sha256, produced, failed FROM vendor_returns"),
    }


def test_a_return_file_applied_twice_changes_nothing_the_second_time(settings: Settings) -> None:
    cards = seed_cards(settings, 4)
    write_vendor_file(settings, 1, cards)
    written = vendor_answers(settings, 1)

    first = receive_file(settings, written)
    assert (first.produced, first.remade, first.failed_final, first.refused) == (4, 0, 0, [])
    after_first = snapshot(settings)
    assert {status for _, status, *_ in after_first["cards"]} == {CardStatus.PRODUCED.value}
    assert all(serial and produced for _, _, serial, produced, _ in after_first["cards"])
    assert {(f, t, s) for _, f, t, s in after_first["card_history"]} == {
        (CardStatus.IN_PRODUCTION.value, CardStatus.PRODUCED.value, f"vendor:{VENDOR}")
    }
    assert [topic for _, topic in after_first["outbox"]] == [Topics(settings).card_dispatches] * 4
    assert rows(settings, "SELECT actor, action FROM audit_log WHERE entity = 'vendor_return'") == [
        (OPERATOR, "vendor.return_received")
    ]

    second = receive_file(settings, written)
    assert second.already_received
    assert second.received_by == OPERATOR
    assert (second.produced, second.remade, second.failed_final) == (0, 0, 0)
    assert snapshot(settings) == after_first


def test_refused_lines_are_reported_and_the_rest_is_applied(settings: Settings) -> None:
    cards = seed_cards(settings, 2)
    write_vendor_file(settings, 1, cards)
    sha = rows(settings, "SELECT sha256 FROM vendor_files")[0][0]
    path = Path(settings.personalization_dir) / "run-000001" / f"{VENDOR}.return.jsonl"
    lines = [
        {"run_id": 1, "vendor_code": VENDOR, "manifest_sha256": sha},
        {"card_number": cards[0].card_number, "result": "PRODUCED", "chip_serial": "00AA11BB22CC33DD"},
        {"card_number": "Z99999999", "result": "PRODUCED", "chip_serial": "00AA11BB22CC33DD"},
        {"card_number": cards[1].card_number, "result": "EXPLODED"},
        {"card_number": cards[0].card_number, "result": "FAILED", "failure_reason": "PRINT_DEFECT"},
    ]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    sign_return_file(settings, path)

    report = receive_file(settings, path)

    assert report.produced == 1
    assert sorted(report.refused, key=lambda r: r.line) == [
        Refused(3, LineRefusal.NOT_IN_THIS_FILE),
        Refused(4, LineRefusal.RESULT_INVALID),
        Refused(5, LineRefusal.REPEATED_CARD),
    ]
    assert rows(settings, "SELECT card_number, status FROM cards ORDER BY 1") == [
        (cards[0].card_number, CardStatus.PRODUCED.value),
        (cards[1].card_number, CardStatus.IN_PRODUCTION.value),
    ]
    assert rows(settings, "SELECT produced, failed, refused_lines FROM vendor_returns") == [(1, 0, 3)]
    assert report.waiting == 1


def test_a_header_that_does_not_match_refuses_the_whole_file(settings: Settings) -> None:
    cards = seed_cards(settings, 2)
    write_vendor_file(settings, 1, cards)
    path = vendor_answers(settings, 1)
    header, *body = path.read_text().splitlines()
    forged = {**json.loads(header), "manifest_sha256": "0" * 64}
    path.write_text("\n".join([json.dumps(forged), *body]) + "\n")
    sign_return_file(settings, path)  # the vendor's own mistake: signed, but answering another file

    with pytest.raises(ReturnFileRefused, match="manifest_sha256 differs"):
        receive_file(settings, path)
    wrong_run = {**json.loads(header), "run_id": 2}
    path.write_text("\n".join([json.dumps(wrong_run), *body]) + "\n")
    sign_return_file(settings, path)
    with pytest.raises(ReturnFileRefused, match="no vendor file was written for run 2"):
        receive_file(settings, path)

    assert rows(settings, "SELECT count(*) FROM vendor_returns") == [(0,)]
    assert rows(settings, "SELECT DISTINCT status FROM cards") == [(CardStatus.IN_PRODUCTION.value,)]


def test_a_failed_card_is_made_again_then_fails_finally_at_the_limit(settings: Settings) -> None:
    (card,) = seed_cards(settings, 1)
    write_vendor_file(settings, 1, [card])

    for run_id in (1, 2):
        if run_id > 1:
            personalize_again(settings, run_id, [card])
        report = receive_file(settings, vendor_answers(settings, run_id, fail_rate=1.0))
        assert (report.remade, report.failed_final) == (1, 0)
        assert rows(settings, "SELECT status, production_failures FROM cards") == [
            (CardStatus.ORDERED.value, run_id)
        ]
        assert rows(settings, "SELECT state, is_open FROM applications") == [
            (ApplicationState.ACCEPTED.value, True)
        ]

    personalize_again(settings, 3, [card])
    report = receive_file(settings, vendor_answers(settings, 3, fail_rate=1.0))

    assert (report.remade, report.failed_final) == (0, 1)
    assert rows(settings, "SELECT status, production_failures FROM cards") == [
        (CardStatus.CANCELLED.value, 3)
    ]
    assert rows(settings, "SELECT state, is_open, retry_due FROM applications") == [
        (ApplicationState.FAILED.value, False, False)
    ]
    assert [to for (to,) in rows(settings, "SELECT to_status FROM card_history ORDER BY id")] == [
        CardStatus.ORDERED.value,
        CardStatus.ORDERED.value,
        CardStatus.CANCELLED.value,
    ]
    (payload,) = [
        p for (p,) in rows(settings, "SELECT payload FROM outbox WHERE event_type = 'DecisionIssued'")
    ]
    decision = decode_event(bytes(payload))
    assert isinstance(decision, DecisionIssued)
    assert (decision.application_id, decision.state, decision.branch_code) == (
        card.application_id,
        ApplicationState.FAILED,
        BRANCH,
    )


def test_the_dispatch_of_a_produced_card_is_published_for_its_branch(settings: Settings) -> None:
    cards = seed_cards(settings, 2)
    write_vendor_file(settings, 1, cards)
    receive_file(settings, vendor_answers(settings, 1))
    bootstrap = settings.kafka_bootstrap or ""
    ensure_topics(KafkaClientConfig.from_settings(settings), settings, [])
    with connect(database_url(settings), autocommit=True) as conn:
        trust = RelayTrust.load(conn, settings)
        published = publish_outbox(
            conn,
            KafkaClientConfig.plaintext(bootstrap),
            Vault.from_settings(settings),
            database_url(settings),
            trust=trust,
        )
    assert published == 2

    messages = read_topic(bootstrap, Topics(settings).card_dispatches)

    assert {key for key, _ in messages} == {BRANCH.encode()}
    events = [decode_event(value) for _, value in messages]
    assert all(isinstance(e, CardDispatched) for e in events)
    assert sorted((e.card_number, e.application_id, e.vendor_code, e.production_run_id) for e in events) == [  # type: ignore[union-attr]
        (c.card_number, c.application_id, VENDOR, 1) for c in cards
    ]


@pytest.mark.parametrize("forgery", ["unsigned", "altered", "another_vendor"])
def test_a_return_file_not_signed_by_its_vendor_is_refused_as_a_whole(
    settings: Settings, forgery: str
) -> None:
    """Unsigned, changed after the vendor signed it (a FAILED turned PRODUCED), or signed by another vendor:
    refused before any line is applied."""
    cards = seed_cards(settings, 2)
    Partners(settings).provision(vendor("V2"))
    write_vendor_file(settings, 1, cards)
    path = vendor_answers(settings, 1, fail_rate=1.0)
    if forgery == "unsigned":
        signature_path(path).unlink()
    elif forgery == "altered":
        header, *body = path.read_text().splitlines()
        produced = {
            "card_number": cards[0].card_number,
            "result": "PRODUCED",
            "chip_serial": "00AA11BB22CC33DD",
        }
        path.write_text("\n".join([header, json.dumps(produced), *body[1:]]) + "\n")
    else:
        sign_return_file(settings, path, vendor_code="V2")
    before = snapshot(settings)

    with pytest.raises(ReturnFileRefused, match=f"not signed by vendor {VENDOR}.*nothing applied"):
        receive_file(settings, path)

    assert snapshot(settings) == before
    assert rows(settings, "SELECT DISTINCT status FROM cards") == [(CardStatus.IN_PRODUCTION.value,)]
