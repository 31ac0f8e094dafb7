"""The bureau's consumer of the branches' card events: a card's receipt at its branch and its collection.

CardReceived moves a PRODUCED card to AT_BRANCH (only at the card's own branch). CardCollected, after the
counter checked the holder's identity, moves it to ISSUED: its NEW_CARD application is COMPLETED, the card is
registered in the person registry (valid, savings function inactive) so that the holder's
FINANCIAL_ACTIVATION of it verifies, and the branch gets a DecisionIssued COMPLETED.

Each event must be authenticated by the branch it speaks for (the branch's channel headers, `Verifier`):
an unsigned event is a dead letter SIGNATURE_MISSING, a forged or altered one SIGNATURE_INVALID, one sent by
another party than its `branch_code` SENDER_MISMATCH; none of them changes anything and the batch goes on.

Each batch is one transaction; each event is applied once (`card_event_inbox`, with a digest of its content).
A readable event the lifecycle refuses (a collection before the receipt, no identity check, another branch's
card, an unknown card, an event id used again with other content) is a dead letter TRANSITION_NOT_ALLOWED and
the consumer goes on; it is not recorded as applied, so the branch may send it again once it is allowed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from kafka.consumer.fetcher import ConsumerRecord

from consumers.dead_letters import DeadLetterSink, record_value
from issuance import outbox_events
from issuance.crypto import Vault
from issuance.domain.lifecycle import CardStatus, Lifecycle, TransitionRefused, Trigger, step
from issuance.domain.model import DeadLetterReason
from issuance.errors import DecodeError, IssuanceError, SchemaViolation
from issuance.kafka.topics import Topics
from issuance.messages import CardCollected, CardReceived, decode_event
from issuance.store import card_repo
from issuance.store.audit import SERVICE_CARD_EVENTS, record_action
from issuance.store.card_repo import ApplicationClosed, CardRow, Conn, HistoryStep
from issuance.store.consumer_repo import add_outbox
from issuance.trust.channel import Verifier
from issuance.trust.errors import TrustFailure
from issuance.trust.parties import branch

CONSUMER = "card-events"
ACTOR = SERVICE_CARD_EVENTS
STAGE = "collection"

CardEvent = CardReceived | CardCollected


class NotAllowed(IssuanceError):
    """A card event the lifecycle refuses (internal: becomes a dead letter)."""


@dataclass(slots=True)
class CardEventStats:
    """What the consumer did in this process."""

    events: int = 0
    received: int = 0
    collected: int = 0
    duplicates: int = 0
    not_allowed: int = 0  # dead-lettered TRANSITION_NOT_ALLOWED
    unauthenticated: int = 0  # dead-lettered SIGNATURE_MISSING, SIGNATURE_INVALID or SENDER_MISMATCH
    dead_lettered: int = 0  # every dead letter (unreadable ones too)
    queued: int = 0  # events written to the outbox


class CardEvents:
    """Applies a batch of the branches' card events, each once."""

    name = "card_events"

    def __init__(self, conn: Conn, vault: Vault, topics: Topics, verifier: Verifier) -> None:
        self._conn = conn
        self._topics = topics
        self._verifier = verifier
        self._dead_letters = DeadLetterSink(conn, vault, topics.dead_letters, CONSUMER)
        self.stats = CardEventStats()

    @property
    def queued(self) -> int:
        return self.stats.queued

    def summary(self) -> dict[str, int]:
        return asdict(self.stats)

    def handle(self, records: Sequence[ConsumerRecord]) -> None:
        """Apply one batch in one transaction, in the order of the records."""
        with self._conn.transaction():
            for record in records:
                self.stats.events += 1
                try:
                    sender = self._verifier.sender(record.headers, record.key, bytes(record.value or b""))
                except TrustFailure as exc:
                    self.stats.unauthenticated += 1
                    self._dead_letter(record, exc.reason, exc.detail)
                    continue
                try:
                    event = decode_event(record_value(record))
                    if not isinstance(event, CardReceived | CardCollected):
                        raise SchemaViolation(
                            f"expected a card event, got {event.RECORD}", [("$record", "unexpected")]
                        )
                except DecodeError as exc:
                    self._dead_letter(record, DeadLetterReason(exc.reason), str(exc))
                    continue
                if sender != branch(event.branch_code):
                    self.stats.unauthenticated += 1
                    self._dead_letter(
                        record,
                        DeadLetterReason.SENDER_MISMATCH,
                        f"{event.RECORD} {event.event_id}: sent by {sender}, not by the branch it names",
                    )
                    continue
                try:
                    with self._conn.transaction():  # a savepoint: a refused event leaves nothing behind
                        self._apply(event)
                except NotAllowed as exc:
                    self.stats.not_allowed += 1
                    self._dead_letter(record, DeadLetterReason.TRANSITION_NOT_ALLOWED, str(exc))

    def _apply(self, event: CardEvent) -> None:
        digest = hashlib.sha256(event.to_bytes()).digest()
        earlier = card_repo.card_event_digest(self._conn, event.event_id)
        if earlier is not None:
            if earlier != digest:
                raise NotAllowed(
                    f"{event.RECORD} {event.event_id}: the event id was used before for other content"
                )
            self.stats.duplicates += 1
            return
        card = card_repo.lock_cards(self._conn, [event.card_number]).get(event.card_number)
        if card is None:
            raise NotAllowed(f"{event.RECORD} {event.event_id}: no card {event.card_number}")
        if event.branch_code != card.dispatch_branch:
            raise NotAllowed(
                f"{event.RECORD} {event.event_id}: card {event.card_number} belongs to branch"
                f" {card.dispatch_branch}, not {event.branch_code}"
            )
        if isinstance(event, CardReceived):
            self._received(event, card)
        else:
            self._collected(event, card)
        card_repo.claim_card_event(self._conn, event.event_id, digest, event.RECORD, event.card_number)

    def _step(
        self, event: CardEvent, card: CardRow, trigger: Trigger, identity_checked: bool = True
    ) -> Lifecycle:
        try:
            after = step(card.lifecycle(), trigger, identity_checked=identity_checked).after
        except TransitionRefused as exc:
            raise NotAllowed(f"{event.RECORD} {event.event_id} for card {event.card_number}: {exc}") from exc
        assert after.card is not None  # both triggers move the card side
        return after

    def _received(self, event: CardReceived, card: CardRow) -> None:
        to = self._step(event, card, Trigger.CARD_RECEIVED).card
        assert to is not None
        before = CardStatus(card.status)
        card_repo.set_received(self._conn, card.application_id, before, to, event.received_at)
        card_repo.add_history(
            self._conn,
            [
                HistoryStep(
                    card.application_id,
                    "card",
                    before,
                    to,
                    f"branch:{event.branch_code}",
                    event_id=event.event_id,
                    detail=f"received by operator {event.operator_id}",
                )
            ],
        )
        self._audit("card.received", card, event)
        self.stats.received += 1

    def _collected(self, event: CardCollected, card: CardRow) -> None:
        after = self._step(event, card, Trigger.CARD_COLLECTED, event.identity_checked)
        to = after.card
        assert to is not None
        before = CardStatus(card.status)
        card_repo.set_collected(
            self._conn, card.application_id, before, to, event.collected_at, event.operator_id
        )
        card_repo.register_card(self._conn, card)
        card_repo.close_application(
            self._conn,
            ApplicationClosed(
                card.application_id,
                card.state,
                after.state,
                STAGE,
                event.event_id,
                f"card collected at branch {event.branch_code}",
            ),
        )
        card_repo.add_history(
            self._conn,
            [
                HistoryStep(
                    card.application_id,
                    "card",
                    before,
                    to,
                    f"branch:{event.branch_code}",
                    event_id=event.event_id,
                    detail=f"collected, identity checked by operator {event.operator_id}",
                )
            ],
        )
        add_outbox(
            self._conn,
            [
                outbox_events.decision(
                    self._topics,
                    card.application_id,
                    card.application_branch,
                    after.state,
                    event.collected_at,
                )
            ],
        )
        self.stats.queued += 1
        self._audit("card.collected", card, event)
        self.stats.collected += 1

    def _audit(self, action: str, card: CardRow, event: CardEvent) -> None:
        record_action(
            self._conn,
            actor=ACTOR,
            action=action,
            entity="application",
            entity_id=card.application_id,
            detail={
                "event_id": event.event_id,
                "card_number": event.card_number,
                "branch_code": event.branch_code,
                "operator_id": event.operator_id,
            },
        )

    def _dead_letter(self, record: ConsumerRecord, reason: DeadLetterReason, detail: str) -> None:
        if self._dead_letters.add(record, reason, detail):
            self.stats.dead_lettered += 1
            self.stats.queued += 1
