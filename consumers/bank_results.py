"""The bureau's consumer of the banks' answers (each bank's `bank.<B>.results`): each applied once, through
the lifecycle.

Nothing of a record is believed before it is authenticated as an answer of its topic's bank and its sealed
account number opens (`consumers.bank_answer_trust`); then the answer must be for an application of that bank
(else SENDER_MISMATCH). Only such answers are claimed in the inbox: a forgery with a computable event id is a
dead letter and cannot pre-empt the real answer.

- AccountOpened: the account number is checked (digits only, 16 to 19, Luhn, the bank's BIN, not another
  application's); a bad one is a dead letter and changes nothing. A good one is stored sealed with its blind
  index, the account OPENED.
- AccountRefused / ActivationFailed: asked again by a later night while attempts are left (`retry_due`), else
  the application FAILED (a new card's ordered card CANCELLED and its account REFUSED).
- ActivationCompleted: the account switched on is checked like an opened one, and must be the card's own
  account when the card is one this system issued (a registry card's account is not known here: it must be no
  other application's); then the activation application COMPLETED, the card's account ACTIVE. The history
  shows it masked.

For each answer the consumer loads a `Lifecycle` snapshot of its application (typed rows), checks that the
answer is to the application's current request, calls `lifecycle.step`, and writes what the step says. An
answer that is not current, or that the lifecycle refuses (repeated, out of order, for a closed
application), is recorded in the audit log and changes nothing. Each batch is one PostgreSQL transaction
(inbox, writes, audit, decisions and dead letters in the outbox); offsets are committed after it, so a crash
re-delivers answers the inbox then skips.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

from kafka.consumer.fetcher import ConsumerRecord

from consumers.bank_answer_trust import Answer, AnswerTrust, TrustedAnswer
from consumers.dead_letters import DeadLetterSink
from issuance.crypto import Vault
from issuance.domain.lifecycle import (
    ApplicationState,
    CardStatus,
    FinancialStatus,
    Lifecycle,
    Step,
    TransitionRefused,
    Trigger,
    refusal_trigger,
    registry_card,
    step,
)
from issuance.domain.masking import mask_account
from issuance.domain.model import (
    ApplicationType,
    DeadLetterReason,
    RegistryCardStatus,
    RegistryFinancialStatus,
)
from issuance.domain.numbers import is_valid_assigned_account
from issuance.kafka.topics import Topics
from issuance.messages import (
    AccountOpened,
    AccountRefused,
    ActivationCompleted,
    ActivationFailed,
    account_opening_request_event_id,
    activation_request_event_id,
    decision_issued,
)
from issuance.store import bank_answers_repo as repo
from issuance.store.audit import SERVICE_BANK_RESULTS, record_action
from issuance.store.bank_answers_repo import ActivatedCard, ApplicationRow, AppliedStep, OwnCard
from issuance.store.consumer_repo import Conn, OutboxEvent, add_outbox, claim_events
from issuance.trust.parties import branch

log = logging.getLogger(__name__)

CONSUMER = "bank-results"  # its inbox (was activation-results)
ACTOR = SERVICE_BANK_RESULTS
STAGE = "bank"  # application_history.stage of the steps it writes


@dataclass(slots=True)
class AnswerStats:
    """What the consumer did in this process."""

    answers: int = 0
    opened: int = 0  # accounts OPENED
    refused: int = 0  # account openings refused (retry or final)
    activated: int = 0  # activations COMPLETED
    activation_failed: int = 0  # activations refused (retry or final)
    final_failures: int = 0  # applications FAILED
    duplicates: int = 0
    stale: int = 0  # ignored: not the current request, or refused by the lifecycle
    dead_lettered: int = 0
    queued: int = 0  # events written to the outbox


@dataclass(slots=True)
class Target:
    """An application as the batch sees it: its row and the lifecycle of it and its card (updated in place as
    the batch applies answers, so two answers for one application see each other)."""

    row: ApplicationRow
    lifecycle: Lifecycle
    bank_refusals: int
    sides_of: str | None  # whose card and account rows hold the card's sides (None: a registry card)
    card_number: str | None  # an activation's card


def lifecycle_of(row: ApplicationRow, own: OwnCard | None, card: ActivatedCard | None) -> Target:
    """The snapshot the rules need: the application, and the two sides of its card (an activation's: of the
    card it activates, this system's or the registry's)."""
    kind = ApplicationType(row.application_type)
    side_card: CardStatus | None = None
    financial = FinancialStatus.NONE
    sides_of: str | None = None
    if kind is ApplicationType.NEW_CARD:
        sides_of = row.application_id
        if own is not None:
            side_card = CardStatus(own.card_status) if own.card_status else None
            financial = FinancialStatus(own.account_status) if own.account_status else FinancialStatus.NONE
    elif card is not None and card.card_application_id is not None:
        sides_of = card.card_application_id
        side_card = CardStatus(card.card_status) if card.card_status else None
        financial = FinancialStatus(card.account_status) if card.account_status else FinancialStatus.NONE
    elif card is not None and card.registry_status and card.registry_financial:
        side_card, financial = registry_card(
            RegistryCardStatus(card.registry_status), RegistryFinancialStatus(card.registry_financial)
        )
    lifecycle = Lifecycle(kind, ApplicationState(row.state), side_card, financial, row.retry_due)
    return Target(row, lifecycle, row.bank_refusals, sides_of, row.card_number)


def current_request_id(target: Target) -> str:
    """The event id of the request the application waits on (attempt = refusals so far + 1)."""
    attempt = target.bank_refusals + 1
    if target.lifecycle.application_type is ApplicationType.NEW_CARD:
        return account_opening_request_event_id(target.row.application_id, attempt)
    return activation_request_event_id(target.row.application_id, attempt)


def trigger_of(answer: Answer, target: Target, max_attempts: int) -> Trigger:
    """The lifecycle trigger an answer stands for."""
    if isinstance(answer, AccountOpened):
        return Trigger.ACCOUNT_OPENED
    if isinstance(answer, ActivationCompleted):
        return Trigger.ACTIVATION_COMPLETED
    return refusal_trigger(target.lifecycle.application_type, target.bank_refusals, max_attempts)


class BankResults:
    """Applies the banks' answers exactly once in effect (the bureau's handler of each `bank.<B>.results`)."""

    name = "bank_results"

    def __init__(
        self, conn: Conn, vault: Vault, topics: Topics, max_attempts: int, trust: AnswerTrust
    ) -> None:
        self._conn = conn
        self._vault = vault
        self._topics = topics
        self._max_attempts = max_attempts
        self._trust = trust
        self._dead_letters = DeadLetterSink(conn, vault, topics.dead_letters, CONSUMER)
        self.stats = AnswerStats()

    @property
    def queued(self) -> int:
        return self.stats.queued

    def summary(self) -> dict[str, int]:
        return asdict(self.stats)

    def handle(self, records: Sequence[ConsumerRecord]) -> None:
        """Apply one batch in one transaction: authenticate, check against the bureau's rows, then apply."""
        self.stats.answers += len(records)
        trusted, letters = self._trust.screen(records)
        with self._conn.transaction():
            targets = self._targets([t.answer.application_id for t in trusted])
            good = self._checked(trusted, targets, letters)
            for record, reason, detail in letters:
                log.warning(
                    "answer at %s/%s@%s set aside as a dead letter: %s",
                    record.topic,
                    record.partition,
                    record.offset,
                    reason.value,
                )
                if self._dead_letters.add(record, reason, detail):
                    self.stats.dead_lettered += 1
                    self.stats.queued += 1
            self._apply(good, targets)

    def _checked(
        self,
        trusted: Sequence[TrustedAnswer],
        targets: dict[str, Target],
        letters: list[tuple[ConsumerRecord, DeadLetterReason, str]],
    ) -> list[TrustedAnswer]:
        """The answers to apply. An answer for another bank's application is a SENDER_MISMATCH (the requests
        of an application go to its bank only); an account number that is not a valid account of its bank,
        already another application's, or not the account of the card an activation names, a
        SCHEMA_VIOLATION (the detail never shows the number)."""
        numbered = [t for t in trusted if t.account_number is not None]
        bins = repo.bank_bins(self._conn, sorted({t.answer.bank_code for t in numbered}))
        indexes = {t.answer.event_id: self._vault.blind_index(str(t.account_number)) for t in numbered}
        owners = repo.account_owners(self._conn, sorted(set(indexes.values())))
        good: list[TrustedAnswer] = []
        for t in trusted:
            answer, target = t.answer, targets.get(t.answer.application_id)
            if target is not None and target.row.bank_code != answer.bank_code:
                detail = (
                    f"{answer.RECORD} by bank {answer.bank_code} for an application of bank"
                    f" {target.row.bank_code}"
                )
                letters.append((t.record, DeadLetterReason.SENDER_MISMATCH, detail))
                continue
            if t.account_number is not None:
                owner = owners.get(indexes[answer.event_id])
                problem = _number_problem(t, bins.get(answer.bank_code), owner, target)
                if problem:
                    letters.append((t.record, DeadLetterReason.SCHEMA_VIOLATION, problem))
                    continue
            good.append(t)
        return good

    def _apply(self, trusted: Sequence[TrustedAnswer], targets: dict[str, Target]) -> None:
        fresh = claim_events(self._conn, CONSUMER, [t.answer.event_id for t in trusted])
        todo: list[TrustedAnswer] = []
        for t in trusted:
            if t.answer.event_id in fresh:
                fresh.discard(t.answer.event_id)  # the same event twice in one batch counts once
                todo.append(t)
            else:
                self.stats.duplicates += 1
        steps: list[AppliedStep] = []
        events: list[OutboxEvent] = []
        for t in todo:
            answer = t.answer
            target = targets.get(answer.application_id)
            outcome = self._step(answer, target)
            if target is None or isinstance(outcome, str):
                self.stats.stale += 1
                self._ignored(answer, target, outcome if isinstance(outcome, str) else "unknown application")
                continue
            applied = self._applied(t, target, outcome)
            steps.append(applied)
            self._count(answer, outcome)
            record_action(
                self._conn,
                actor=ACTOR,
                action=f"bank.{_action(answer)}",
                entity="application",
                entity_id=target.row.application_id,
                detail=self._audit_detail(answer, target, outcome),
            )
            if not outcome.after.is_open:
                events.append(self._decision(target, outcome.after.state, answer))
            target.lifecycle = outcome.after
            target.bank_refusals = applied.bank_refusals
        repo.apply_steps(self._conn, steps, STAGE)
        add_outbox(self._conn, events)
        self.stats.queued += len(events)

    def _targets(self, application_ids: Sequence[str]) -> dict[str, Target]:
        rows = repo.lock_applications(self._conn, application_ids)
        new_cards = [
            r.application_id for r in rows.values() if r.application_type == ApplicationType.NEW_CARD
        ]
        activated = [
            r.card_number for r in rows.values() if r.card_number and r.application_id not in new_cards
        ]
        own = repo.own_cards(self._conn, new_cards)
        cards = repo.activated_cards(self._conn, activated)
        return {
            app: lifecycle_of(row, own.get(app), cards.get(row.card_number or ""))
            for app, row in rows.items()
        }

    def _step(self, answer: Answer, target: Target | None) -> Step | str:
        """The lifecycle's step for this answer, or why it is ignored."""
        if target is None:
            return "unknown application"
        if answer.request_event_id != current_request_id(target):
            attempt = target.bank_refusals + 1
            return f"not the current request (attempt {attempt}); application is {target.row.state}"
        try:
            return step(target.lifecycle, trigger_of(answer, target, self._max_attempts))
        except TransitionRefused as refused:
            return refused.why

    def _applied(self, trusted: TrustedAnswer, target: Target, outcome: Step) -> AppliedStep:
        answer = trusted.answer
        before, after = target.lifecycle, outcome.after
        refused = isinstance(answer, AccountRefused | ActivationFailed)
        index = enc = None
        if isinstance(answer, AccountOpened) and trusted.account_number is not None:
            index = self._vault.blind_index(trusted.account_number)
            enc = self._vault.encrypt(trusted.account_number)
        completed = isinstance(answer, ActivationCompleted)
        return AppliedStep(
            application_id=target.row.application_id,
            event_id=answer.event_id,
            source=f"bank:{answer.bank_code}",
            at=_decided_at(answer),
            from_state=before.state.value,
            to_state=after.state.value,
            is_open=after.is_open,
            retry_due=after.retry_due,
            bank_refusals=target.bank_refusals + int(refused),
            detail=self._detail(trusted, target, outcome),
            sides_of=target.sides_of,
            card_from=_value(before.card),
            card_to=_value(after.card) if after.card != before.card else None,
            financial_from=before.financial.value,
            financial_to=after.financial.value if after.financial != before.financial else None,
            account_index=index,
            account_number_enc=enc,
            activated_card=target.card_number if completed else None,
            registry_active=RegistryFinancialStatus.ACTIVE.value if completed else None,
        )

    def _detail(self, trusted: TrustedAnswer, target: Target, outcome: Step) -> str:
        """The history line (never personal data: an account number only masked, and only one the consumer
        checked; nothing else of the answer's text)."""
        answer = trusted.answer
        bank = f"bank {answer.bank_code}"
        if isinstance(answer, AccountOpened):
            return f"{bank} opened account {mask_account(str(trusted.account_number))}"
        if isinstance(answer, ActivationCompleted):
            return f"{bank} switched on account {mask_account(str(trusted.account_number))}"
        reason = answer.refusal_reason if isinstance(answer, AccountRefused) else answer.failure_reason
        attempt = target.bank_refusals + 1
        line = f"{bank}: {reason.value} (attempt {attempt} of {self._max_attempts}"
        if outcome.after.is_open:
            return line + ", requested again by a later night)"
        card = " and its ordered card cancelled" if outcome.after.card is CardStatus.CANCELLED else ""
        return line + f", final: refused{card}; the holder may apply again)"

    def _audit_detail(self, answer: Answer, target: Target, outcome: Step) -> dict[str, object]:
        detail: dict[str, object] = {
            "event_id": answer.event_id,
            "request_event_id": answer.request_event_id,
            "bank_code": answer.bank_code,
            "from": target.lifecycle.state.value,
            "to": outcome.after.state.value,
            "attempt": target.bank_refusals + 1,
        }
        if isinstance(answer, AccountRefused):
            detail["refusal_reason"] = answer.refusal_reason.value
        if isinstance(answer, ActivationFailed):
            detail["failure_reason"] = answer.failure_reason.value
        return detail

    def _ignored(self, answer: Answer, target: Target | None, why: str) -> None:
        record_action(
            self._conn,
            actor=ACTOR,
            action="bank.answer_ignored",
            entity="application",
            entity_id=answer.application_id,
            detail={
                "event_id": answer.event_id,
                "record": answer.RECORD,
                "why": why,
                "request_event_id": answer.request_event_id,
                "state": None if target is None else target.row.state,
            },
        )

    def _count(self, answer: Answer, outcome: Step) -> None:
        if isinstance(answer, AccountOpened):
            self.stats.opened += 1
        elif isinstance(answer, AccountRefused):
            self.stats.refused += 1
        elif isinstance(answer, ActivationCompleted):
            self.stats.activated += 1
        else:
            self.stats.activation_failed += 1
        self.stats.final_failures += int(outcome.after.state is ApplicationState.FAILED)

    def _decision(self, target: Target, state: ApplicationState, answer: Answer) -> OutboxEvent:
        """The branch's DecisionIssued for a final outcome (never sealed: it carries no personal data)."""
        decision = decision_issued(
            target.row.application_id, target.row.branch_code, state, _decided_at(answer)
        )
        return OutboxEvent(
            decision.event_id,
            self._topics.decisions,
            target.row.application_id.encode(),
            decision.to_bytes(),
            decision.RECORD,
            str(branch(target.row.branch_code)),
        )


def _number_problem(
    trusted: TrustedAnswer, bin_: str | None, owner: str | None, target: Target | None
) -> str | None:
    """Why the account number of an answer is not believed (None: it is); never the number itself."""
    answer, number = trusted.answer, str(trusted.account_number)
    if bin_ is None:
        return f"bank_code: bank {answer.bank_code} is not in the reference data"
    if not is_valid_assigned_account(number, bin_):
        return (
            f"account_number: not 16 to 19 digits with a valid Luhn check digit starting with bank"
            f" {answer.bank_code}'s BIN"
        )
    if isinstance(answer, AccountOpened) or target is None:
        if owner is not None and owner != answer.application_id:
            return "account_number: the account of another application"
        return None
    if target.sides_of is not None and owner != target.sides_of:
        return "account_number: not the account of the card the activation names"
    if target.sides_of is None and owner is not None:
        return "account_number: the account of another application"
    return None


def _action(answer: Answer) -> str:
    return {
        AccountOpened: "account_opened",
        AccountRefused: "account_refused",
        ActivationCompleted: "activation_completed",
        ActivationFailed: "activation_failed",
    }[type(answer)]


def _decided_at(answer: Answer) -> datetime:
    if isinstance(answer, AccountOpened):
        return answer.opened_at
    if isinstance(answer, AccountRefused):
        return answer.refused_at
    if isinstance(answer, ActivationCompleted):
        return answer.completed_at
    return answer.failed_at


def _value(status: CardStatus | None) -> str | None:
    return None if status is None else status.value
