"""A cooperating bank's side of activation, simulated: the reference for what a real bank integration must do.

For each ActivationRequested on its own topic the bank opens the savings account in its own ledger at most
once, answers with ActivationCompleted or ActivationFailed, and only then commits its offsets. A re-delivered
request gets the answer it got the first time (kept in the bank's inbox): a replay opens no second account.
A record it cannot answer (empty, undecodable, or a request for another bank) goes to the dead letters in the
same transaction, and the bank goes on past it.

A new card's request carries the account number personalized on its chip. An existing card's request carries
none: a bank bound the account to the card when the card was personalized and finds it by the card number. The
simulator has no such history, so it stands the bound account in with a number derived from the card
(`bound_account`). The request also names the signed agreement (id, terms version, document hash) the bank
ties the account to; the simulator only logs the agreement id.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from kafka import KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord

from consumers.dead_letters import DeadLetterSink, record_value
from consumers.loop import send_all
from issuance.crypto import Vault
from issuance.domain.masking import mask_account
from issuance.domain.model import DeadLetterReason
from issuance.domain.numbers import bank_account_number
from issuance.errors import DecodeError
from issuance.messages import (
    ActivationCompleted,
    ActivationFailed,
    ActivationRequested,
    BankRefusalReason,
    activation_answer_event_id,
)
from issuance.store import bank_ledger
from issuance.store.bank_ledger import Conn, OpenedAccount, StoredAnswer

log = logging.getLogger(__name__)

# The simulated banks' stand-in BIN for accounts bound to existing cards before this system knew them.
BOUND_ACCOUNT_BIN = "621999"

# The failures a bank may answer with (the BankRefusalReason enum), as the simulator injects them.
INJECTED_FAILURES: tuple[tuple[BankRefusalReason, str], ...] = (
    (BankRefusalReason.KYC_FAILED, "identity check at the bank did not pass"),
    (BankRefusalReason.ACCOUNT_LIMIT, "the holder reached the number of accounts allowed"),
    (BankRefusalReason.BANK_SYSTEM_ERROR, "core banking system rejected the opening"),
)


def bound_account(card_number: str) -> str:
    """The account a simulated bank bound to an existing card when it was personalized (a real bank looks it
    up by the card number): a valid 19-digit number, the same for the same card."""
    sequence = int.from_bytes(hashlib.sha256(card_number.encode()).digest()[:8], "big") % 10**12
    return bank_account_number(BOUND_ACCOUNT_BIN, sequence)


@dataclass(frozen=True, slots=True)
class FailurePolicy:
    """Which requests fail: a pure function of seed and request id, so a re-delivery answers the same."""

    fail_rate: float = 0.0
    seed: int = 0

    def failure(self, request_event_id: str) -> tuple[BankRefusalReason, str] | None:
        """The injected (reason, detail) for this request, or None when the bank opens the account."""
        if self.fail_rate <= 0:
            return None
        digest = hashlib.sha256(f"{self.seed}|{request_event_id}".encode()).digest()
        draw = int.from_bytes(digest[:8], "big") / 2**64
        if draw >= self.fail_rate:
            return None
        return INJECTED_FAILURES[digest[8] % len(INJECTED_FAILURES)]


@dataclass(slots=True)
class BankStats:
    """What one bank did in this process."""

    requests: int = 0
    opened: int = 0
    failed: int = 0
    repeated: int = 0
    unreadable: int = 0  # dead-lettered: empty, undecodable, or not a request for this bank


class BankSimulator:
    """One bank: reads its requests, keeps its ledger and inbox, sends its answers."""

    def __init__(
        self,
        bank_code: str,
        conn: Conn,
        producer: KafkaProducer,
        vault: Vault,
        results_topic: str,
        policy: FailurePolicy,
        dead_letters: DeadLetterSink,
    ) -> None:
        self.bank_code = bank_code
        self._conn = conn
        self._producer = producer
        self._vault = vault
        self._results_topic = results_topic
        self._policy = policy
        self._dead_letters = dead_letters
        self.stats = BankStats()

    def handle(self, records: Sequence[ConsumerRecord]) -> None:
        """Apply a batch of requests at most once, then send every answer and wait for the broker's acks."""
        by_id: dict[str, ActivationRequested] = {}
        readable, unreadable = self._readable(records)
        for request in readable:
            by_id.setdefault(request.event_id, request)
        order = list(by_id)
        with self._conn.transaction():
            for record, reason, detail in unreadable:
                self._dead_letters.add(record, reason, detail)
            known = bank_ledger.answered(self._conn, self.bank_code, order)
            fresh = [by_id[i] for i in order if i not in known]
            holding = bank_ledger.accounts_open(self._conn, self.bank_code, [r.application_id for r in fresh])
            accounts, answers = self._answer(fresh, holding)
            bank_ledger.open_accounts(self._conn, accounts)
            bank_ledger.record_answers(self._conn, self.bank_code, answers)
        self.stats.repeated += len(order) - len(fresh)
        every = {**known, **{a.request_event_id: a for a in answers}}
        send_all(
            self._producer,
            [(self._results_topic, every[i].application_id.encode(), every[i].payload) for i in order],
        )

    def _readable(
        self, records: Sequence[ConsumerRecord]
    ) -> tuple[list[ActivationRequested], list[tuple[ConsumerRecord, DeadLetterReason, str]]]:
        """The requests this bank can answer, and the records it cannot (for the dead letters)."""
        out = []
        bad: list[tuple[ConsumerRecord, DeadLetterReason, str]] = []
        for record in records:
            self.stats.requests += 1
            try:
                request = ActivationRequested.from_bytes(record_value(record))
            except DecodeError as exc:
                bad.append((record, DeadLetterReason(exc.reason), str(exc)))
                continue
            if request.bank_code != self.bank_code:
                detail = f"bank_code: a request for another bank on bank {self.bank_code}'s topic"
                bad.append((record, DeadLetterReason.SCHEMA_VIOLATION, detail))
                continue
            out.append(request)
        for record, reason, _detail in bad:
            self.stats.unreadable += 1
            log.warning(
                "request at %s/%s@%s set aside as a dead letter: %s",
                record.topic,
                record.partition,
                record.offset,
                reason.value,
            )
        return out, bad

    def _answer(
        self, requests: Sequence[ActivationRequested], holding: set[str]
    ) -> tuple[list[OpenedAccount], list[StoredAnswer]]:
        accounts: list[OpenedAccount] = []
        answers: list[StoredAnswer] = []
        now = datetime.now(UTC)
        for request in requests:
            answer_id = activation_answer_event_id(request.event_id)
            account_number = request.account_number or bound_account(request.card_number)
            log.debug("request %s names agreement %s", request.event_id, request.agreement_id)
            # An account already open for this application is never opened again: the answer is "completed".
            failure = None if request.application_id in holding else self._policy.failure(request.event_id)
            answer: ActivationCompleted | ActivationFailed
            if failure is None:
                if request.application_id not in holding:
                    accounts.append(
                        OpenedAccount(
                            bank_code=self.bank_code,
                            application_id=request.application_id,
                            account_index=self._vault.blind_index(account_number),
                            account_number_enc=self._vault.encrypt(account_number),
                            card_number=request.card_number,
                            request_event_id=request.event_id,
                        )
                    )
                    holding.add(request.application_id)
                answer = ActivationCompleted(
                    event_id=answer_id,
                    request_event_id=request.event_id,
                    application_id=request.application_id,
                    bank_code=self.bank_code,
                    account_reference=mask_account(account_number),
                    completed_at=now,
                )
                self.stats.opened += 1
            else:
                answer = ActivationFailed(
                    event_id=answer_id,
                    request_event_id=request.event_id,
                    application_id=request.application_id,
                    bank_code=self.bank_code,
                    failure_reason=failure[0],
                    detail=failure[1],
                    failed_at=now,
                )
                self.stats.failed += 1
            answers.append(
                StoredAnswer(
                    request.event_id, request.application_id, answer_id, answer.RECORD, answer.to_bytes()
                )
            )
        return accounts, answers
