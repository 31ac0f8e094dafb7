"""Who answered, and what the answer carries: the bureau's first look at a record on a bank's answer topic.

Anyone who can write to a topic can publish any bytes, and an answer's event id is computable (a uuid5 of the
request's), so nothing of an answer is believed, and nothing is deduplicated, before it is authenticated:

1. the record's channel headers (`issuance.trust.channel`) must verify, else SIGNATURE_MISSING or
   SIGNATURE_INVALID;
2. the party they authenticate must be the bank whose topic it came on (`bank.<B>.results`), and the record
   must name that bank (`bank_code`), else SENDER_MISMATCH;
3. the record must be an answer (AccountOpened, AccountRefused, ActivationCompleted, ActivationFailed);
4. the account number of an AccountOpened or ActivationCompleted must open: it is sealed to the bureau with
   the answer's event id as associated data, else SEAL_INVALID.

What a bank may answer for (an application of another bank, an account that is not valid or not the card's)
needs the bureau's rows and is checked by the consumer (`consumers.bank_results`) in its transaction. A record
refused here is a dead letter; its application is not touched and its event id is not claimed, so the real
answer, when it comes, is applied.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from kafka.consumer.fetcher import ConsumerRecord

from consumers.dead_letters import record_value
from issuance.bank_personal import open_account
from issuance.domain.model import DeadLetterReason
from issuance.errors import DecodeError, SchemaViolation
from issuance.messages import (
    AccountOpened,
    AccountRefused,
    ActivationCompleted,
    ActivationFailed,
    decode_event,
)
from issuance.trust.channel import Verifier
from issuance.trust.errors import TrustFailure
from issuance.trust.parties import bank
from issuance.trust.sealing import Unsealer

Answer = AccountOpened | AccountRefused | ActivationCompleted | ActivationFailed
ANSWERS = (AccountOpened, AccountRefused, ActivationCompleted, ActivationFailed)
Refused = tuple[ConsumerRecord, DeadLetterReason, str]


@dataclass(frozen=True, slots=True, repr=False)
class TrustedAnswer:
    """An answer authenticated as its bank's, with its sealed account number opened."""

    record: ConsumerRecord
    answer: Answer
    account_number: str | None  # AccountOpened and ActivationCompleted; never logged

    def __repr__(self) -> str:
        return f"TrustedAnswer({self.answer.RECORD} {self.answer.event_id})"


class _Refusal(Exception):
    def __init__(self, reason: DeadLetterReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class AnswerTrust:
    """The bureau's side of the banks' answer topics: its keys, the registered keys, and which bank each
    answer topic belongs to."""

    def __init__(self, verifier: Verifier, unsealer: Unsealer, bank_of_topic: Mapping[str, str]) -> None:
        self._verifier = verifier
        self._unsealer = unsealer
        self._bank_of_topic = dict(bank_of_topic)

    @property
    def topics(self) -> tuple[str, ...]:
        return tuple(self._bank_of_topic)

    def screen(self, records: Sequence[ConsumerRecord]) -> tuple[list[TrustedAnswer], list[Refused]]:
        """The records that are answers of their topic's bank, and the others with their reason."""
        trusted: list[TrustedAnswer] = []
        refused: list[Refused] = []
        for record in records:
            try:
                trusted.append(self._trusted(record))
            except _Refusal as refusal:
                refused.append((record, refusal.reason, refusal.detail))
        return trusted, refused

    def _trusted(self, record: ConsumerRecord) -> TrustedAnswer:
        code = self._bank_of_topic.get(record.topic)
        if code is None:
            raise _Refusal(DeadLetterReason.SENDER_MISMATCH, f"{record.topic} is not a bank's answer topic")
        try:
            sender = self._verifier.sender(record.headers, record.key, bytes(record.value or b""))
        except TrustFailure as failure:
            raise _Refusal(failure.reason, failure.detail) from None
        if sender != bank(code):
            raise _Refusal(
                DeadLetterReason.SENDER_MISMATCH,
                f"an answer on bank {code}'s topic authenticated as {sender}",
            )
        try:
            answer = decode_event(record_value(record))
            if not isinstance(answer, ANSWERS):
                raise SchemaViolation(
                    f"expected a bank's answer, got {answer.RECORD}", [("$record", "unexpected")]
                )
        except DecodeError as exc:
            raise _Refusal(DeadLetterReason(exc.reason), str(exc)) from None
        if answer.bank_code != code:
            raise _Refusal(
                DeadLetterReason.SENDER_MISMATCH,
                f"{answer.RECORD} names bank {answer.bank_code} on bank {code}'s topic",
            )
        return TrustedAnswer(record, answer, self._account_number(answer))

    def _account_number(self, answer: Answer) -> str | None:
        if not isinstance(answer, AccountOpened | ActivationCompleted):
            return None
        try:
            return open_account(answer.personal, self._unsealer, answer.event_id)
        except TrustFailure as failure:
            raise _Refusal(failure.reason, f"{answer.RECORD}: {failure.detail}") from None
        except DecodeError as exc:
            raise _Refusal(DeadLetterReason(exc.reason), f"{answer.RECORD} personal: {exc}") from None
