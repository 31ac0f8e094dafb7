"""The bureau's consumer of the branches' card events, in `issuance consume`, against the real broker and
PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from consumers.serve import consume_results
from issuance.crypto import Vault
from issuance.domain.lifecycle import ApplicationState, CardStatus
from issuance.domain.model import DeadLetterReason
from issuance.domain.verification import verify
from issuance.kafka.client_config import KafkaClientConfig
from issuance.kafka.topics import Topics, ensure_topics
from issuance.messages import CardCollected, CardReceived, DecisionIssued, MessageDeadLettered, decode_event
from issuance.services.endpoints import resolve
from issuance.settings import Settings
from issuance.store.db import connect
from issuance.store.reference_repo import load_catalog, lookup_cards, lookup_persons
from issuance.trust.channel import Signer
from issuance.trust.parties import BUREAU, branch
from tests.factories import AREA, BANK, BRANCH, activation
from tests.fixtures_partners import HOLDER_NAME, database_url, read_topic, rows, seed_cards
from tests.fixtures_services import Partners
from tests.fixtures_signed import send as signed_send

IDLE = 1.5
AT = datetime(2026, 11, 5, 10, 0, tzinfo=UTC)
OTHER_BRANCH = "BR-110105-002"


def received(card: str, event_id: str, branch: str = BRANCH) -> CardReceived:
    return CardReceived(event_id, card, branch, "OP-1", AT)


def collected(card: str, event_id: str, branch: str = BRANCH, checked: bool = True) -> CardCollected:
    return CardCollected(event_id, card, branch, checked, "OP-2", AT)


def send(
    settings: Settings,
    *events: CardReceived | CardCollected,
    signed_by: str | None = None,
    signed: bool = True,
) -> None:
    """The events as their branch sends them (its channel headers to the bureau); `signed_by` another
    branch's keys, or unsigned."""
    ensure_topics(KafkaClientConfig.from_settings(settings), settings, [])
    partners = Partners(settings)
    for event in events:  # keyed by card: one card's events in order
        sender = branch(signed_by or event.branch_code)
        directory = partners.provision(sender)
        signer = Signer(partners.keys(sender), directory) if signed else None
        signed_send(
            settings, Topics(settings).card_events, [(event.card_number.encode(), event.to_bytes())], signer
        )


def consume(settings: Settings) -> dict[str, Any]:
    return consume_results(settings, resolve(settings), IDLE, threading.Event())


def dead_letter_details(settings: Settings) -> list[tuple[str, str]]:
    return [
        (str(r), str(d)) for r, d in rows(settings, "SELECT reason, detail FROM dead_letters ORDER BY id")
    ]


def test_a_collection_completes_the_application_and_registers_the_card(settings: Settings) -> None:
    (card,) = seed_cards(settings, 1, status=CardStatus.PRODUCED)
    send(settings, received(card.card_number, "r-1"), collected(card.card_number, "c-1"))

    stats = consume(settings)

    assert stats["card_events"]["received"] == 1
    assert stats["card_events"]["collected"] == 1
    assert rows(
        settings, "SELECT status, collected_by, received_at IS NOT NULL, collected_at FROM cards"
    ) == [(CardStatus.ISSUED.value, "OP-2", True, AT)]
    assert rows(settings, "SELECT state, is_open FROM applications") == [
        (ApplicationState.COMPLETED.value, False)
    ]
    key = rows(settings, "SELECT person_key FROM cards")[0][0]
    assert rows(
        settings, "SELECT card_number, person_key, bank_code, status, financial_status FROM person_cards"
    ) == [(card.card_number, key, BANK, "VALID", "INACTIVE")]
    assert rows(
        settings, "SELECT from_status, to_status, source, event_id FROM card_history ORDER BY id"
    ) == [
        (CardStatus.PRODUCED.value, CardStatus.AT_BRANCH.value, f"branch:{BRANCH}", "r-1"),
        (CardStatus.AT_BRANCH.value, CardStatus.ISSUED.value, f"branch:{BRANCH}", "c-1"),
    ]
    decisions = [
        decode_event(v) for _, v in read_topic(settings.kafka_bootstrap or "", Topics(settings).decisions)
    ]
    assert [(d.application_id, d.state) for d in decisions if isinstance(d, DecisionIssued)] == [
        (card.application_id, ApplicationState.COMPLETED)
    ]


def test_refused_card_events_are_dead_letters_and_the_consumer_goes_on(settings: Settings) -> None:
    early, elsewhere, unchecked, reused, fine = seed_cards(settings, 5, status=CardStatus.PRODUCED)
    send(
        settings,
        collected(early.card_number, "early-collection"),  # before its receipt
        received(elsewhere.card_number, "elsewhere", branch=OTHER_BRANCH),  # another branch's card
        received(unchecked.card_number, "unchecked-r"),
        collected(unchecked.card_number, "unchecked-c", checked=False),  # no identity check
        received("Z99999999", "unknown"),  # no such card
        received(reused.card_number, "reused"),
        received(reused.card_number, "reused"),  # the same event again: applied once, no dead letter
        collected(reused.card_number, "reused"),  # the same event id with other content
        received(fine.card_number, "fine"),
    )

    stats = consume(settings)["card_events"]

    assert (stats["received"], stats["collected"], stats["duplicates"], stats["not_allowed"]) == (3, 0, 1, 5)
    letters = dead_letter_details(settings)
    assert {reason for reason, _ in letters} == {DeadLetterReason.TRANSITION_NOT_ALLOWED.value}
    details = " | ".join(detail for _, detail in letters)
    for expected in (
        "early-collection for card",
        "card is PRODUCED, needs AT_BRANCH",
        f"belongs to branch {BRANCH}, not {OTHER_BRANCH}",
        "identity was not checked",
        "no card Z99999999",
        "the event id was used before for other content",
    ):
        assert expected in details
    assert dict(rows(settings, "SELECT card_number, status FROM cards")) == {
        early.card_number: CardStatus.PRODUCED.value,
        elsewhere.card_number: CardStatus.PRODUCED.value,
        unchecked.card_number: CardStatus.AT_BRANCH.value,
        reused.card_number: CardStatus.AT_BRANCH.value,
        fine.card_number: CardStatus.AT_BRANCH.value,
    }
    assert rows(settings, "SELECT count(*) FROM person_cards") == [(0,)]
    published = [
        decode_event(v) for _, v in read_topic(settings.kafka_bootstrap or "", Topics(settings).dead_letters)
    ]
    assert len(published) == 5
    assert all(
        isinstance(m, MessageDeadLettered) and m.reason is DeadLetterReason.TRANSITION_NOT_ALLOWED
        for m in published
    )


def test_a_collection_refused_before_the_receipt_is_applied_when_sent_again_after_it(
    settings: Settings,
) -> None:
    (card,) = seed_cards(settings, 1, status=CardStatus.PRODUCED)
    send(
        settings,
        collected(card.card_number, "c-1"),
        received(card.card_number, "r-1"),
        collected(card.card_number, "c-1"),
    )

    stats = consume(settings)["card_events"]

    assert (stats["not_allowed"], stats["received"], stats["collected"]) == (1, 1, 1)
    assert rows(settings, "SELECT status FROM cards") == [(CardStatus.ISSUED.value,)]


def test_the_holder_s_financial_activation_of_a_collected_card_verifies(settings: Settings) -> None:
    (card,) = seed_cards(settings, 1, status=CardStatus.AT_BRANCH)
    application = activation(
        id_number=card.id_number, name=HOLDER_NAME, card_number=card.card_number, application_id="FA-1"
    )
    vault = Vault.from_settings(settings)
    with connect(database_url(settings), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO issuing_areas (area_code, name, approved) VALUES (%s, 'area', true)", (AREA,)
        )

    def reasons() -> list[str]:
        with connect(database_url(settings), autocommit=True) as conn:
            person = lookup_persons(conn, vault, [vault.blind_index(card.id_number)]).get(
                vault.blind_index(card.id_number)
            )
            registered = card.card_number in lookup_cards(conn, [card.card_number])
            found = verify(application, person, load_catalog(conn), card_registered=registered)
        return [reason.value for reason in found]

    assert reasons() == ["CARD_NOT_FOUND"]  # not collected yet: not in the registry
    send(settings, collected(card.card_number, "c-1"))
    consume(settings)
    assert reasons() == []


def test_forged_collections_change_nothing_and_the_batch_goes_on(settings: Settings) -> None:
    """Unsigned, signed by another branch, or altered after signing: a dead letter with its trust reason,
    the card not ISSUED, the application not COMPLETED; the genuine events around them are applied."""
    (card,) = seed_cards(settings, 1, status=CardStatus.PRODUCED)
    (other,) = seed_cards(settings, 1, status=CardStatus.PRODUCED, start=2)
    send(settings, received(card.card_number, "r-1"))
    send(settings, collected(card.card_number, "forged-unsigned"), signed=False)
    send(settings, collected(card.card_number, "forged-elsewhere"), signed_by=OTHER_BRANCH)
    event = collected(card.card_number, "forged-altered")
    partners = Partners(settings)
    signer = Signer(partners.keys(branch(BRANCH)), partners.directory())
    genuine = event.to_bytes()
    headers = signer.headers(BUREAU, event.card_number.encode(), genuine)
    altered = CardCollected(event.event_id, event.card_number, BRANCH, True, "OP-9", AT).to_bytes()
    signed_send(
        settings, Topics(settings).card_events, [(event.card_number.encode(), altered)], headers=headers
    )
    send(settings, received(other.card_number, "r-2"))

    stats = consume(settings)["card_events"]

    assert (stats["received"], stats["collected"], stats["unauthenticated"]) == (2, 0, 3)
    assert sorted(reason for reason, _ in dead_letter_details(settings)) == sorted(
        [
            DeadLetterReason.SIGNATURE_MISSING.value,
            DeadLetterReason.SENDER_MISMATCH.value,
            DeadLetterReason.SIGNATURE_INVALID.value,
        ]
    )
    assert dict(rows(settings, "SELECT card_number, status FROM cards")) == {
        card.card_number: CardStatus.AT_BRANCH.value,
        other.card_number: CardStatus.AT_BRANCH.value,
    }
    assert {state for (state,) in rows(settings, "SELECT state FROM applications")} == {
        ApplicationState.ACCEPTED.value
    }
    assert rows(settings, "SELECT count(*) FROM person_cards") == [(0,)]
