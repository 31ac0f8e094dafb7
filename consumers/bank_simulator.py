"""A cooperating bank, simulated: the reference for what a real bank integration must do.

Each bank reads its own request topic, where the bureau asks it for two things. It acts on a request only when
the bureau's channel headers authenticate it (`issuance.trust.channel`: a request without them, or from anyone
else, is a dead letter: SIGNATURE_MISSING, SIGNATURE_INVALID or SENDER_MISMATCH) and its personal part, sealed
to this bank, opens with the bank's own key (else SEAL_INVALID):

- AccountOpeningRequested (an accepted new-card application): the bank runs its own checks (know your
  customer: here the injected FailurePolicy, and a signed agreement whose terms version and document hash are
  present and well formed), then opens the savings account in its ledger, **numbered within its own BIN by
  its own sequence** (BIN + sequence + Luhn digit), and answers AccountOpened with the number, or refuses with
  AccountRefused. An application never gets a second account: a later request for it answers with the
  account it has.
- ActivationRequested (the holder activates the savings function): the bank switches on the account the card
  carries, found by the request's account number in its ledger, and answers ActivationCompleted (with the
  account it switched on) or ActivationFailed. A card from the person registry carries no number the bureau
  knows: a bank bound its account to the card when that card was personalized and finds it by the card
  number. The simulator has no such history, so it stands that account in with a number of its own BIN
  derived from the card (`bound_account`).

Answers go to the bank's own answer topic (`bank.<B>.results`) with the bank's channel headers (its partner
keys), and an account number only sealed to the bureau (`issuance.bank_personal`).

Every request is applied at most once: the answer is kept in the bank's inbox with the request, in the same
transaction as the ledger change, and a re-delivered request gets the answer it got the first time. Offsets
are committed only after every answer is acknowledged by the broker. A record it cannot answer (empty,
undecodable, another record, or a request for another bank) goes to the dead letters in the same transaction,
and the bank goes on past it.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from kafka import KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord

from consumers.dead_letters import DeadLetterSink, record_value
from consumers.loop import send_all
from issuance.bank_personal import HolderPersonal, open_holder, seal_account
from issuance.crypto import Vault
from issuance.domain.model import DeadLetterReason
from issuance.domain.numbers import ACCOUNT_LENGTH, bank_account_number
from issuance.errors import DecodeError, SchemaViolation
from issuance.messages import (
    AccountOpened,
    AccountOpeningRequested,
    AccountRefused,
    ActivationCompleted,
    ActivationFailed,
    ActivationRequested,
    BankRefusalReason,
    account_answer_event_id,
    activation_answer_event_id,
    decode_event,
)
from issuance.store import bank_ledger
from issuance.store.bank_ledger import Conn, LedgerAccount, OpenedAccount, StoredAnswer
from issuance.trust.channel import Signer, Verifier
from issuance.trust.errors import TrustFailure
from issuance.trust.keys import Directory, PartyKeys
from issuance.trust.parties import BUREAU
from issuance.trust.sealing import Sealer, Unsealer

log = logging.getLogger(__name__)

Request = AccountOpeningRequested | ActivationRequested
Answer = AccountOpened | AccountRefused | ActivationCompleted | ActivationFailed

# The failures a bank may answer with (the BankRefusalReason enum), as the simulator injects them.
INJECTED_FAILURES: tuple[tuple[BankRefusalReason, str], ...] = (
    (BankRefusalReason.KYC_FAILED, "identity check at the bank did not pass"),
    (BankRefusalReason.ACCOUNT_LIMIT, "the holder reached the number of accounts allowed"),
    (BankRefusalReason.BANK_SYSTEM_ERROR, "core banking system rejected the opening"),
)
AGREEMENT_REFUSED = "the signed agreement's terms version or document hash is missing or malformed"
NO_SUCH_ACCOUNT = "no account with the number the card carries at this bank"

_TERMS_VERSION = re.compile(r"[0-9A-Za-z][0-9A-Za-z._-]{0,31}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def bound_account(bin_: str, card_number: str) -> str:
    """The account a simulated bank bound to a registry card when it was personalized (a real bank looks it
    up by the card number): a valid 19-digit number of the bank's BIN, the same for the same card. Its
    sequence is drawn from the top half of the sequence space, which the bank's own openings (counting up from
    1) do not reach."""
    half = 10 ** (ACCOUNT_LENGTH - 1 - len(bin_)) // 2
    draw = int.from_bytes(hashlib.sha256(card_number.encode()).digest()[:8], "big")
    return bank_account_number(bin_, half + draw % half)


def agreement_problem(request: AccountOpeningRequested) -> str | None:
    """Why the bank cannot tie an account to the request's signed agreement (None: it can)."""
    if not request.agreement_id.strip():
        return AGREEMENT_REFUSED
    if not _TERMS_VERSION.fullmatch(request.terms_version or ""):
        return AGREEMENT_REFUSED
    if not _SHA256.fullmatch(request.document_sha256 or ""):
        return AGREEMENT_REFUSED
    return None


@dataclass(frozen=True, slots=True)
class FailurePolicy:
    """Which requests fail: a pure function of seed and request id, so a re-delivery answers the same."""

    fail_rate: float = 0.0
    seed: int = 0

    def failure(self, request_event_id: str) -> tuple[BankRefusalReason, str] | None:
        """The injected (reason, detail) for this request, or None when the bank goes ahead."""
        if self.fail_rate <= 0:
            return None
        digest = hashlib.sha256(f"{self.seed}|{request_event_id}".encode()).digest()
        draw = int.from_bytes(digest[:8], "big") / 2**64
        if draw >= self.fail_rate:
            return None
        return INJECTED_FAILURES[digest[8] % len(INJECTED_FAILURES)]


@dataclass(slots=True)
class BankStats:
    """What one bank did in this process (requests answered for the first time, by outcome)."""

    requests: int = 0
    opened: int = 0  # AccountOpened
    refused: int = 0  # AccountRefused
    activated: int = 0  # ActivationCompleted
    failed: int = 0  # ActivationFailed
    repeated: int = 0  # answered before: the stored answer sent again
    unreadable: int = 0  # dead-lettered: empty, undecodable, or not a request for this bank


class BankSimulator:
    """One bank: reads its requests, keeps its ledger and inbox, sends its answers."""

    def __init__(
        self,
        bank_code: str,
        bin_: str,
        conn: Conn,
        producer: KafkaProducer,
        vault: Vault,
        own: PartyKeys,
        directory: Directory,
        results_topic: str,
        policy: FailurePolicy,
        dead_letters: DeadLetterSink,
    ) -> None:
        self.bank_code = bank_code
        self.bin = bin_
        self._conn = conn
        self._producer = producer
        self._vault = vault
        self._verifier = Verifier(own, directory)  # the bureau's channel to this bank
        self._unsealer = Unsealer(own)  # the requests' personal parts
        self._signer = Signer(own, directory)  # this bank's channel to the bureau
        self._to_bureau = Sealer.to(directory, BUREAU)  # the answers' account numbers
        self._results_topic = results_topic
        self._policy = policy
        self._dead_letters = dead_letters
        self.stats = BankStats()

    def handle(self, records: Sequence[ConsumerRecord]) -> None:
        """Apply a batch of requests at most once, then send every answer and wait for the broker's acks."""
        by_id: dict[str, Request] = {}
        readable, unreadable = self._readable(records)
        holders: dict[str, HolderPersonal] = {}
        for request, holder in readable:
            by_id.setdefault(request.event_id, request)
            holders.setdefault(request.event_id, holder)
        order = list(by_id)
        with self._conn.transaction():
            for record, reason, detail in unreadable:
                self._dead_letters.add(record, reason, detail)
            known = bank_ledger.answered(self._conn, self.bank_code, order)
            fresh = [by_id[i] for i in order if i not in known]
            answers = [
                *self._open_accounts([r for r in fresh if isinstance(r, AccountOpeningRequested)]),
                *self._activate([r for r in fresh if isinstance(r, ActivationRequested)], holders),
            ]
            stored = [_stored(request, answer) for request, answer in answers]
            bank_ledger.record_answers(self._conn, self.bank_code, stored)
        self.stats.repeated += len(order) - len(fresh)
        every = {**known, **{s.request_event_id: s for s in stored}}
        messages = [(self._results_topic, every[i].application_id.encode(), every[i].payload) for i in order]
        send_all(
            self._producer,
            messages,
            [self._signer.headers(BUREAU, key, value) for _topic, key, value in messages],
        )

    def _readable(
        self, records: Sequence[ConsumerRecord]
    ) -> tuple[list[tuple[Request, HolderPersonal]], list[tuple[ConsumerRecord, DeadLetterReason, str]]]:
        """The requests this bank can answer, with their personal parts opened, and the records it cannot
        (for the dead letters): not the bureau's, not a request, for another bank, or not sealed to it."""
        out: list[tuple[Request, HolderPersonal]] = []
        bad: list[tuple[ConsumerRecord, DeadLetterReason, str]] = []
        for record in records:
            self.stats.requests += 1
            try:
                sender = self._verifier.sender(record.headers, record.key, bytes(record.value or b""))
                if sender != BUREAU:
                    raise TrustFailure(
                        DeadLetterReason.SENDER_MISMATCH,
                        f"a request authenticated as {sender}, not the bureau",
                    )
                request = decode_event(record_value(record))
                if not isinstance(request, AccountOpeningRequested | ActivationRequested):
                    raise SchemaViolation(
                        f"expected a request to a bank, got {request.RECORD}", [("$record", "unexpected")]
                    )
                if request.bank_code != self.bank_code:
                    raise SchemaViolation(
                        f"bank_code: a request for another bank on bank {self.bank_code}'s topic",
                        [("bank_code", "another bank")],
                    )
                holder = open_holder(request.personal, self._unsealer, request.event_id)
            except TrustFailure as failure:
                bad.append((record, failure.reason, failure.detail))
                continue
            except DecodeError as exc:
                bad.append((record, DeadLetterReason(exc.reason), str(exc)))
                continue
            out.append((request, holder))
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

    def _open_accounts(self, requests: Sequence[AccountOpeningRequested]) -> list[tuple[Request, Answer]]:
        """Open (or refuse) the accounts of new cards, numbered by this bank's own sequence."""
        held = bank_ledger.accounts_of_applications(
            self._conn, self.bank_code, [r.application_id for r in requests]
        )
        numbers: dict[str, str] = {app: self._vault.decrypt(a.account_number_enc) for app, a in held.items()}
        refusals: dict[str, tuple[BankRefusalReason, str]] = {}
        to_open: list[AccountOpeningRequested] = []
        opening: set[str] = set()
        for request in requests:
            if request.application_id in numbers or request.application_id in opening:
                continue  # one account per application: a later request answers with the account it has
            problem = agreement_problem(request)
            refusal = (
                (BankRefusalReason.KYC_FAILED, problem) if problem else self._policy.failure(request.event_id)
            )
            if refusal is None:
                to_open.append(request)
                opening.add(request.application_id)
            else:
                refusals[request.event_id] = refusal
        opened: list[OpenedAccount] = []
        sequences = bank_ledger.next_sequences(self._conn, self.bank_code, len(to_open))
        for request, sequence in zip(to_open, sequences, strict=True):
            number = bank_account_number(self.bin, sequence)
            numbers[request.application_id] = number
            opened.append(
                OpenedAccount(
                    bank_code=self.bank_code,
                    application_id=request.application_id,
                    account_index=self._vault.blind_index(number),
                    account_number_enc=self._vault.encrypt(number),
                    card_number=None,
                    request_event_id=request.event_id,
                    sequence=sequence,
                )
            )
        bank_ledger.open_accounts(self._conn, opened)
        now = datetime.now(UTC)
        out: list[tuple[Request, Answer]] = []
        for request in requests:
            answer_id = account_answer_event_id(request.event_id)
            log.debug("request %s names agreement %s", request.event_id, request.agreement_id)
            answer: Answer
            refusal = refusals.get(request.event_id)
            if refusal is None:
                answer = AccountOpened(
                    answer_id,
                    request.event_id,
                    request.application_id,
                    self.bank_code,
                    seal_account(numbers[request.application_id], self._to_bureau, answer_id),
                    now,
                )
                self.stats.opened += 1
            else:
                answer = AccountRefused(
                    answer_id,
                    request.event_id,
                    request.application_id,
                    self.bank_code,
                    refusal[0],
                    now,
                    refusal[1],
                )
                self.stats.refused += 1
            out.append((request, answer))
        return out

    def _activate(
        self, requests: Sequence[ActivationRequested], holders: dict[str, HolderPersonal]
    ) -> list[tuple[Request, Answer]]:
        """Switch on the accounts the cards carry (found by their number; a registry card's stood in)."""
        carried = {r.event_id: holders[r.event_id].account_number for r in requests}
        number_of = {
            r.event_id: carried[r.event_id] or bound_account(self.bin, r.card_number) for r in requests
        }
        index_of = {i: self._vault.blind_index(n) for i, n in number_of.items()}
        held: dict[bytes, LedgerAccount] = bank_ledger.accounts_by_index(
            self._conn, self.bank_code, sorted(set(index_of.values()))
        )
        stand_ins: list[OpenedAccount] = []
        switched: list[bytes] = []
        now = datetime.now(UTC)
        out: list[tuple[Request, Answer]] = []
        for request in requests:
            index = index_of[request.event_id]
            log.debug("request %s names agreement %s", request.event_id, request.agreement_id)
            failure = self._policy.failure(request.event_id)
            if failure is None and index not in held:
                if carried[request.event_id] is None:  # a registry card: the account bound to it, stood in
                    stand_ins.append(self._stand_in(request, index, number_of[request.event_id]))
                    held[index] = LedgerAccount(request.application_id, index, b"", bank_ledger.ACTIVE)
                else:
                    failure = (BankRefusalReason.KYC_FAILED, NO_SUCH_ACCOUNT)
            answer_id = activation_answer_event_id(request.event_id)
            answer: Answer
            if failure is None:
                switched.append(index)
                answer = ActivationCompleted(
                    answer_id,
                    request.event_id,
                    request.application_id,
                    self.bank_code,
                    seal_account(number_of[request.event_id], self._to_bureau, answer_id),
                    now,
                )
                self.stats.activated += 1
            else:
                answer = ActivationFailed(
                    answer_id,
                    request.event_id,
                    request.application_id,
                    self.bank_code,
                    failure[0],
                    now,
                    failure[1],
                )
                self.stats.failed += 1
            out.append((request, answer))
        bank_ledger.open_accounts(self._conn, stand_ins)
        bank_ledger.activate(self._conn, self.bank_code, switched)
        return out

    def _stand_in(self, request: ActivationRequested, index: bytes, number: str) -> OpenedAccount:
        return OpenedAccount(
            bank_code=self.bank_code,
            application_id=request.application_id,
            account_index=index,
            account_number_enc=self._vault.encrypt(number),
            card_number=request.card_number,
            request_event_id=request.event_id,
            sequence=None,
            status=bank_ledger.ACTIVE,
        )


def _stored(request: Request, answer: Answer) -> StoredAnswer:
    return StoredAnswer(
        request.event_id, request.application_id, answer.event_id, answer.RECORD, answer.to_bytes()
    )
