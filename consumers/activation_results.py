"""The bureau's consumer of the banks' answers: moves applications and cards to ACTIVE or ACTIVATION_FAILED.

Each batch is one PostgreSQL transaction: inbox, state changes, history, audit log, decisions and dead letters
in the outbox. Offsets are committed after it, so a crash re-delivers events the inbox then skips. A result
that does not answer the application's current request (an older attempt, or an application that moved on)
is recorded and ignored: it never moves a card backwards.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from kafka.consumer.fetcher import ConsumerRecord

from consumers.dead_letters import DeadLetterSink, record_value
from issuance.crypto import Vault
from issuance.domain.lifecycle import ApplicationState
from issuance.domain.model import DeadLetterReason
from issuance.errors import DecodeError, SchemaViolation
from issuance.kafka.topics import Topics
from issuance.messages import (
    ActivationCompleted,
    ActivationFailed,
    DecisionIssued,
    activation_request_event_id,
    decision_event_id,
    decode_event,
)
from issuance.store import activation_repo as repo
from issuance.store.activation_repo import ActivationTarget, Audit, Conn, OutboxEvent, Transition

log = logging.getLogger(__name__)

CONSUMER = "activation-results"
ACTOR = "consumer:activation-results"
STAGE = "activation"

Result = ActivationCompleted | ActivationFailed
RequestIdOf = Callable[[str, int], str]


@dataclass(slots=True)
class ResultStats:
    """What the consumer did in this process."""

    results: int = 0
    active: int = 0
    failed: int = 0
    final_failures: int = 0
    duplicates: int = 0
    stale: int = 0
    dead_lettered: int = 0
    queued: int = 0  # events written to the outbox


class ActivationResults:
    """Applies a batch of activation results exactly once in effect."""

    def __init__(
        self,
        conn: Conn,
        vault: Vault,
        topics: Topics,
        max_attempts: int,
        request_id_of: RequestIdOf = activation_request_event_id,
    ) -> None:
        self._conn = conn
        self._vault = vault
        self._topics = topics
        self._max_attempts = max_attempts
        self._request_id_of = request_id_of
        self._dead_letters = DeadLetterSink(conn, vault, topics.dead_letters, CONSUMER)
        self.stats = ResultStats()

    def handle(self, records: Sequence[ConsumerRecord]) -> None:
        """Apply one batch in one transaction."""
        results: list[Result] = []
        letters: list[tuple[ConsumerRecord, DecodeError]] = []
        for record in records:
            self.stats.results += 1
            try:
                event = decode_event(record_value(record))
                if not isinstance(event, ActivationCompleted | ActivationFailed):
                    raise SchemaViolation(
                        f"expected an activation result, got {event.RECORD}", [("$record", "unexpected")]
                    )
            except DecodeError as exc:
                letters.append((record, exc))
                continue
            results.append(event)
        with self._conn.transaction():
            for bad, error in letters:
                self._dead_letter(bad, error)
            self._apply(results)

    def _apply(self, results: Sequence[Result]) -> None:
        fresh = repo.claim_events(self._conn, CONSUMER, [r.event_id for r in results])
        todo: list[Result] = []
        for result in results:
            if result.event_id in fresh:
                fresh.discard(result.event_id)  # the same event twice in one batch counts once
                todo.append(result)
            else:
                self.stats.duplicates += 1
        targets = repo.lock_targets(self._conn, [r.application_id for r in todo])
        transitions: list[Transition] = []
        audits: list[Audit] = []
        events: list[OutboxEvent] = []
        for result in todo:
            target = targets.get(result.application_id)
            if target is None or not self._is_current(target, result):
                self.stats.stale += 1
                audits.append(self._ignored(result, target))
                continue
            transition = self._transition(result, target)
            transitions.append(transition)
            audits.append(self._audit(result, target, transition))
            if not transition.is_open:
                events.append(self._decision(target, ApplicationState(transition.to_state)))
            target.state = transition.to_state
            target.bank_refusals = transition.bank_refusals
            target.version += 1
        repo.apply_transitions(self._conn, transitions, STAGE)
        repo.add_audit(self._conn, audits)
        repo.add_outbox(self._conn, events)
        self.stats.queued += len(events)

    def _is_current(self, target: ActivationTarget, result: Result) -> bool:
        """Whether the result answers the application's outstanding request (the attempt not yet answered)."""
        if target.state != ApplicationState.ACTIVATION_REQUESTED:
            return False
        return result.request_event_id == self._request_id_of(target.application_id, target.bank_refusals + 1)

    def _transition(self, result: Result, target: ActivationTarget) -> Transition:
        if isinstance(result, ActivationCompleted):
            self.stats.active += 1
            return Transition(
                application_id=target.application_id,
                from_state=target.state,
                to_state=ApplicationState.ACTIVE,
                is_open=False,
                bank_refusals=target.bank_refusals,
                event_id=result.event_id,
                detail=f"bank {target.bank_code} opened account {result.account_reference}",
                account_status="OPEN",
                card_active=True,
                application_type=target.application_type,
                card_number=target.card_number,
            )
        attempts = target.bank_refusals + 1
        final = attempts >= self._max_attempts
        self.stats.failed += 1
        self.stats.final_failures += int(final)
        reason = result.failure_reason.value
        detail = f"bank {target.bank_code}: {reason} (attempt {attempts} of {self._max_attempts}"
        if final:  # nothing of the application is left open: the history says the holder may apply again
            card = " and its card in production cancelled" if target.application_type == "NEW_CARD" else ""
            detail += f", final: account refused{card}; the holder may apply again)"
        else:
            detail += ", requested again by the next run)"
        return Transition(
            application_id=target.application_id,
            from_state=target.state,
            to_state=ApplicationState.ACTIVATION_FAILED,
            is_open=not final,
            bank_refusals=attempts,
            event_id=result.event_id,
            detail=detail,
            account_status="FAILED",
            card_active=False,
            application_type=target.application_type,
            card_number=target.card_number,
            card_cancelled=final and target.application_type == "NEW_CARD",  # an existing card is not ours
        )

    def _audit(self, result: Result, target: ActivationTarget, transition: Transition) -> Audit:
        detail: dict[str, object] = {
            "event_id": result.event_id,
            "request_event_id": result.request_event_id,
            "bank_code": target.bank_code,
            "from": transition.from_state,
            "to": transition.to_state,
            "attempt": target.bank_refusals + 1,
        }
        if isinstance(result, ActivationFailed):
            detail["failure_reason"] = result.failure_reason.value
        return Audit(ACTOR, f"activation.{transition.to_state.lower()}", target.application_id, detail)

    def _ignored(self, result: Result, target: ActivationTarget | None) -> Audit:
        why = "unknown application" if target is None else f"stale: application is {target.state}"
        return Audit(
            ACTOR,
            "activation.result_ignored",
            result.application_id,
            {
                "event_id": result.event_id,
                "record": result.RECORD,
                "why": why,
                "request_event_id": result.request_event_id,
            },
        )

    def _decision(self, target: ActivationTarget, state: ApplicationState) -> OutboxEvent:
        decision = DecisionIssued(
            event_id=decision_event_id(target.application_id, state, None),
            application_id=target.application_id,
            branch_code=target.branch_code,
            state=state,
            reasons=(),
            decided_at=datetime.now(UTC),
        )
        return OutboxEvent(
            decision.event_id,
            self._topics.decisions,
            target.application_id.encode(),
            decision.to_bytes(),
            decision.RECORD,
        )

    def _dead_letter(self, record: ConsumerRecord, exc: DecodeError) -> None:
        if self._dead_letters.add(record, DeadLetterReason(exc.reason), str(exc)):
            self.stats.dead_lettered += 1
            self.stats.queued += 1
