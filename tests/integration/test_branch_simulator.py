"""The simulated branches against the real broker and PostgreSQL: one receipt, one collection and one
activation per card, never a second on a re-run; only dispatches the bureau authenticated to the branch are
acted on, and the card events carry the branch's own channel headers."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from issuance import outbox_events
from issuance.application_wire import open_application
from issuance.codec.avro import decode
from issuance.domain.lifecycle import CardStatus
from issuance.kafka.client_config import KafkaClientConfig
from issuance.kafka.topics import Topics, ensure_topics
from issuance.messages import CardCollected, CardReceived, decode_event
from issuance.services.endpoints import resolve
from issuance.settings import Settings
from issuance.trust.channel import Signer, Verifier
from issuance.trust.parties import BUREAU, Party, branch
from issuance.trust.sealing import Unsealer
from producers.branch_simulator import BranchOptions, simulate
from tests.factories import BANK, BRANCH, TERMS
from tests.fixtures_partners import HOLDER_NAME, PHONE, SeededCard, read_topic, seed_cards
from tests.fixtures_services import Partners
from tests.fixtures_signed import read_records, send

IDLE = 1.5


def dispatch(settings: Settings, cards: list[SeededCard], signer: Party | None = BUREAU) -> None:
    """The CardDispatched the bureau published for these produced cards, with the bureau's channel headers
    to the branch (or another party's, or none: a forgery)."""
    ensure_topics(KafkaClientConfig.from_settings(settings), settings, [])
    topics = Topics(settings)
    partners = Partners(settings)
    directory = partners.directory()
    at = datetime(2026, 11, 4, 9, 0, tzinfo=UTC)
    for card in cards:
        event = outbox_events.dispatch(topics, card.application_id, card.card_number, BRANCH, "V1", 1, at)
        headers = None
        if signer is not None:
            headers = Signer(partners.keys(signer), directory).headers(
                branch(BRANCH), event.key, event.payload
            )
        send(settings, event.topic, [(event.key, event.payload)], headers=headers)


def run(
    settings: Settings, collect_rate: float = 1.0, activate_rate: float = 1.0, seed: int = 3
) -> dict[str, Any]:
    options = BranchOptions(collect_rate, activate_rate, IDLE, seed)
    return simulate(settings, resolve(settings), options, threading.Event())


def sent(stats: dict[str, Any]) -> tuple[int, int, int, int]:
    return stats["dispatches"], stats["receipts"], stats["collections"], stats["activations"]


def topic(settings: Settings, name: str) -> list[tuple[bytes | None, bytes]]:
    return read_topic(settings.kafka_bootstrap or "", name)


def test_rates_of_one_send_one_receipt_collection_and_activation_per_card_and_a_rerun_nothing(
    settings: Settings, partners: Partners
) -> None:
    cards = seed_cards(settings, 3, status=CardStatus.PRODUCED)
    partners.provision()  # the activations are signed by their branch, their agreements by their bank
    dispatch(settings, cards)
    topics = Topics(settings)

    first = run(settings)

    assert (first["dispatches"], first["receipts"], first["collections"], first["activations"]) == (
        3,
        3,
        3,
        3,
    )
    events = [(key, decode_event(value)) for key, value in topic(settings, topics.card_events)]
    assert Counter(type(e).__name__ for _, e in events) == {"CardReceived": 3, "CardCollected": 3}
    assert all(key == e.card_number.encode() for key, e in events)  # type: ignore[union-attr]
    by_card = {c.card_number: c for c in cards}
    for _, event in events:
        assert isinstance(event, CardReceived | CardCollected)
        assert event.branch_code == BRANCH and event.operator_id.startswith(f"{BRANCH}-OP")
        if isinstance(event, CardCollected):
            assert event.identity_checked
    unsealer = Unsealer(partners.keys(BUREAU))  # the personal fields open for the bureau only
    applications = [
        open_application(decode(value).record, unsealer) for _, value in topic(settings, topics.applications)
    ]
    agreements = [decode(value).record for _, value in topic(settings, topics.agreements)]
    assert sorted(a["card_number"] for a in applications) == sorted(by_card)
    for application in applications:
        holder = by_card[application["card_number"]]
        assert application["application_type"] == "FINANCIAL_ACTIVATION"
        assert (application["bank_code"], application["branch_code"]) == (BANK, BRANCH)
        assert application["channel"] in ("COUNTER", "SELF_SERVICE_TERMINAL")
        assert application["materials"] == ["RESIDENT_ID_CARD", "SOCIAL_SECURITY_CARD"]
        assert application["applicant"] == {
            "id_number": holder.id_number,
            "name": HOLDER_NAME,
            "phone": PHONE,
        }
    assert sorted(a["application_id"] for a in agreements) == sorted(
        a["application_id"] for a in applications
    )
    assert {(a["bank_code"], a["terms_version"]) for a in agreements} == {(BANK, TERMS)}

    again = run(settings)

    assert (again["dispatches"], again["receipts"], again["collections"], again["activations"]) == (
        0,
        0,
        0,
        0,
    )
    assert again["resent"] == 0
    assert len(topic(settings, topics.card_events)) == 6
    assert len(topic(settings, topics.applications)) == 3
    assert len(topic(settings, topics.agreements)) == 3


def test_later_runs_collect_the_cards_still_waiting_each_once(settings: Settings) -> None:
    cards = seed_cards(settings, 8, status=CardStatus.PRODUCED)
    dispatch(settings, cards)

    runs = [run(settings, collect_rate=0.5, activate_rate=0.0, seed=11) for _ in range(3)]

    assert runs[0]["receipts"] == 8 and runs[1]["receipts"] == runs[2]["receipts"] == 0
    collected = [
        decode_event(value).card_number  # type: ignore[union-attr]
        for _, value in topic(settings, Topics(settings).card_events)
        if isinstance(decode_event(value), CardCollected)
    ]
    assert len(collected) == len(set(collected)) == sum(r["collections"] for r in runs)
    assert 0 < runs[0]["collections"] < 8
    assert sum(r["activations"] for r in runs) == 0


def test_the_card_events_are_the_branch_s_and_a_dispatch_not_from_the_bureau_is_refused(
    settings: Settings,
) -> None:
    genuine = seed_cards(settings, 2, status=CardStatus.PRODUCED)
    forged = seed_cards(settings, 2, status=CardStatus.PRODUCED, start=3)
    dispatch(settings, genuine)
    dispatch(settings, forged[:1], signer=None)  # unsigned
    dispatch(settings, forged[1:], signer=branch(BRANCH))  # signed, but by a branch, not the bureau

    stats = run(settings, activate_rate=0.0)

    assert (stats["dispatches"], stats["refused"], stats["receipts"], stats["collections"]) == (4, 2, 2, 2)
    partners = Partners(settings)
    bureau = Verifier(partners.keys(BUREAU), partners.directory())
    records = read_records(settings, Topics(settings).card_events)
    assert {decode_event(r.value).card_number for r in records} == {c.card_number for c in genuine}  # type: ignore[union-attr]
    assert {bureau.sender(r.headers, r.key, r.value) for r in records} == {branch(BRANCH)}
