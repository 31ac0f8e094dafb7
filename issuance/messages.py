"""The events this system publishes, as frozen dataclasses named after their Avro records.

Every event has a deterministic event_id derived from its business key, so re-running any part of a night
produces the same ids and consumers (with their inbox) apply each event at most once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from enum import StrEnum
from functools import cache
from typing import Any, ClassVar, Self

from issuance import i18n
from issuance.codec.avro import decode, encode
from issuance.domain.lifecycle import ApplicationState
from issuance.domain.model import ApplicationType, DeadLetterReason, Reason
from issuance.errors import SchemaViolation
from issuance.reason_text import reason_message

# Fixed forever: changing it changes every event id.
EVENT_NAMESPACE = uuid.UUID("6f1d3c52-8a4e-5b7f-9c2d-0e4a1b3c5d7e")


class BankRefusalReason(StrEnum):
    """Why a bank refused a request (to open an account or to activate it)."""

    KYC_FAILED = "KYC_FAILED"
    ACCOUNT_LIMIT = "ACCOUNT_LIMIT"
    BANK_SYSTEM_ERROR = "BANK_SYSTEM_ERROR"
    DUPLICATE_REQUEST = "DUPLICATE_REQUEST"


def event_id(kind: str, *key: object) -> str:
    """A deterministic event id: uuid5 over "kind:key1:key2..." (None as the empty string)."""
    name = ":".join([kind, *("" if part is None else str(part) for part in key)])
    return str(uuid.uuid5(EVENT_NAMESPACE, name))


def decision_event_id(application_id: str, state: ApplicationState, run_id: int | None) -> str:
    """One decision per application, state and run."""
    return event_id("decision-issued", application_id, state.value, run_id)


def resent_decision_event_id(application_id: str, partition: int, offset: int, topic_id: str = "") -> str:
    """The decision re-issued to a re-sent application record (one per record of the applications topic; the
    topic id, when the broker reports one, tells apart the lives of a topic created again)."""
    life = [topic_id] if topic_id else []
    return event_id("decision-reissued", application_id, partition, offset, *life)


def activation_request_event_id(application_id: str, attempt: int) -> str:
    """One activation request per application and attempt."""
    return event_id("activation-requested", application_id, attempt)


def account_opening_request_event_id(application_id: str, attempt: int) -> str:
    """One account-opening request per application and attempt."""
    return event_id("account-opening-requested", application_id, attempt)


def bank_request_event_id(application_type: ApplicationType, application_id: str, attempt: int) -> str:
    """The id of an application's request to its bank at an attempt: an account opening for a new card, an
    activation for an existing one (the night, its resend and the bank-answer consumer agree on it)."""
    if application_type is ApplicationType.NEW_CARD:
        return account_opening_request_event_id(application_id, attempt)
    return activation_request_event_id(application_id, attempt)


def activation_answer_event_id(request_event_id: str) -> str:
    """A bank answers a request once, completed or failed: both answers share the id, so only one applies."""
    return event_id("activation-answered", request_event_id)


def account_answer_event_id(request_event_id: str) -> str:
    """A bank answers an account-opening request once, opened or refused: both share the id."""
    return event_id("account-answered", request_event_id)


def card_dispatched_event_id(application_id: str, production_run_id: int) -> str:
    """One dispatch per card and vendor file it was made in."""
    return event_id("card-dispatched", application_id, production_run_id)


def dead_letter_event_id(source_topic: str, partition: int, offset: int, topic_id: str = "") -> str:
    """One dead letter per source message (the topic id, when known, tells apart the lives of a topic)."""
    life = [topic_id] if topic_id else []
    return event_id("message-dead-lettered", source_topic, partition, offset, *life)


def _timestamp(value: datetime) -> str:
    if value.tzinfo is None:
        raise SchemaViolation("timestamps must carry an offset", [("$timestamp", "naive datetime")])
    return value.isoformat()


def _parse_timestamp(record: Mapping[str, Any], name: str) -> datetime:
    try:
        value = datetime.fromisoformat(record[name])
    except (KeyError, TypeError, ValueError) as exc:
        raise SchemaViolation(problems=[(name, "must be an ISO-8601 date-time with an offset")]) from exc
    if value.tzinfo is None:
        raise SchemaViolation(problems=[(name, "must be an ISO-8601 date-time with an offset")])
    return value


def _sealed_part(record: Mapping[str, Any]) -> bytes:
    """A record's sealed `personal` part: empty when an older version without one is read (Avro gives its
    default as text), which then does not open."""
    value = record.get("personal")
    return bytes(value) if isinstance(value, bytes | bytearray) else b""


class _Codec:
    """to_bytes / from_bytes shared by every message class."""

    __slots__ = ()
    RECORD: ClassVar[str]

    def to_record(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Self:
        raise NotImplementedError

    def to_bytes(self) -> bytes:
        """The Avro single-object encoding of this event."""
        return encode(self.RECORD, self.to_record())

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Decode a message of this record (raises the codec's typed errors)."""
        return cls.from_record(decode(data, cls.RECORD).record)


def _convert(record_name: str, build: Callable[[], Any]) -> Any:
    """Build a message from a record, translating a missing field or an unknown symbol."""
    try:
        return build()
    except (KeyError, TypeError, ValueError) as exc:
        raise SchemaViolation(problems=[("$record", f"not a valid {record_name} record")]) from exc


@cache
def _reason_message_records() -> dict[str, dict[str, str]]:
    """The `reason_messages` entry of every reason code, built once per process: a night encodes one decision
    per application (200,000 at benchmark size), and the texts do not change while a process runs."""
    zh_cn, en = i18n.lang("zh_CN"), i18n.lang("en")
    return {
        code.value: {"code": code.value, "zh_CN": reason_message(code, zh_cn), "en": reason_message(code, en)}
        for code in Reason
    }


def reason_message_records(reasons: Iterable[str]) -> list[dict[str, str]]:
    """A decision's `reason_messages`: for each code, in order, what it means and what to do at the counter
    in Chinese and in English. The records are shared by every decision: never change one."""
    records = _reason_message_records()
    return [records[code] for code in reasons]


@dataclass(frozen=True, slots=True)
class DecisionIssued(_Codec):
    """The bureau decided on an application; for the branch. Never carries personal data.

    Each reason code travels with its message (`reason_messages`, v4), so that a branch's counter shows the
    clerk what to do without a table of its own; the codes stay what a reader acts on. The messages are
    derived from the codes when the event is written, so the dataclass keeps only the codes.
    """

    RECORD: ClassVar[str] = "DecisionIssued"

    event_id: str
    application_id: str
    branch_code: str
    state: ApplicationState
    reasons: tuple[Reason, ...]
    decided_at: datetime
    run_id: int | None = None

    def to_record(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "application_id": self.application_id,
            "branch_code": self.branch_code,
            "state": self.state.value,
            "reasons": [reason.value for reason in self.reasons],
            "reason_messages": reason_message_records(self.reasons),
            "decided_at": _timestamp(self.decided_at),
            "run_id": self.run_id,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Self:
        decided_at = _parse_timestamp(record, "decided_at")
        result: Self = _convert(
            cls.RECORD,
            lambda: cls(
                event_id=record["event_id"],
                application_id=record["application_id"],
                branch_code=record["branch_code"],
                state=ApplicationState(record["state"]),
                reasons=tuple(Reason(reason) for reason in record["reasons"]),
                decided_at=decided_at,
                run_id=record.get("run_id"),
            ),
        )
        return result


def decision_issued(
    application_id: str,
    branch_code: str,
    state: ApplicationState,
    decided_at: datetime,
    reasons: tuple[Reason, ...] = (),
    run_id: int | None = None,
) -> DecisionIssued:
    """The branch's decision on an application: one per application, state and run (None: outside a night)."""
    return DecisionIssued(
        event_id=decision_event_id(application_id, state, run_id),
        application_id=application_id,
        branch_code=branch_code,
        state=state,
        reasons=reasons,
        decided_at=decided_at,
        run_id=run_id,
    )


@dataclass(frozen=True, slots=True, repr=False)
class ActivationRequested(_Codec):
    """Asks a bank to switch on a card's account, on the bank's own topic.

    The signed agreement travels with it (id, terms version, document hash) so the bank can tie the account to
    the document. The holder's ID number and name, and the account number on a new card's chip, travel only in
    `personal`: a HolderPersonal sealed to the bank (`issuance.bank_personal`), so that nobody else who reads
    the topic learns them. A registry card carries no account number: the bank bound its account to the card
    when that card was personalized and finds it by the card number."""

    RECORD: ClassVar[str] = "ActivationRequested"

    event_id: str
    application_id: str
    bank_code: str
    application_type: ApplicationType
    attempt: int
    card_number: str
    personal: bytes
    requested_at: datetime
    card_identification_code: str | None = None
    run_id: int | None = None
    agreement_id: str | None = None  # None only in v1 messages
    terms_version: str | None = None
    document_sha256: str | None = None

    def __repr__(self) -> str:
        return (
            f"ActivationRequested(event_id={self.event_id!r}, application_id={self.application_id!r}, "
            f"bank_code={self.bank_code!r}, attempt={self.attempt})"
        )

    def to_record(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "application_id": self.application_id,
            "bank_code": self.bank_code,
            "application_type": self.application_type.value,
            "attempt": self.attempt,
            "card_number": self.card_number,
            "card_identification_code": self.card_identification_code,
            "personal": self.personal,
            "requested_at": _timestamp(self.requested_at),
            "run_id": self.run_id,
            "agreement_id": self.agreement_id,
            "terms_version": self.terms_version,
            "document_sha256": self.document_sha256,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Self:
        requested_at = _parse_timestamp(record, "requested_at")
        result: Self = _convert(
            cls.RECORD,
            lambda: cls(
                event_id=record["event_id"],
                application_id=record["application_id"],
                bank_code=record["bank_code"],
                application_type=ApplicationType(record["application_type"]),
                attempt=record["attempt"],
                card_number=record["card_number"],
                personal=_sealed_part(record),
                requested_at=requested_at,
                card_identification_code=record.get("card_identification_code"),
                run_id=record.get("run_id"),
                agreement_id=record.get("agreement_id"),
                terms_version=record.get("terms_version"),
                document_sha256=record.get("document_sha256"),
            ),
        )
        return result


@dataclass(frozen=True, slots=True)
class ActivationCompleted(_Codec):
    """A bank switched on the account behind a card; the account travels only in `personal` (an
    AccountPersonal sealed to the bureau), which the bureau checks before it believes it."""

    RECORD: ClassVar[str] = "ActivationCompleted"

    event_id: str
    request_event_id: str
    application_id: str
    bank_code: str
    personal: bytes
    completed_at: datetime

    def to_record(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "request_event_id": self.request_event_id,
            "application_id": self.application_id,
            "bank_code": self.bank_code,
            "personal": self.personal,
            "completed_at": _timestamp(self.completed_at),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Self:
        completed_at = _parse_timestamp(record, "completed_at")
        result: Self = _convert(
            cls.RECORD,
            lambda: cls(
                event_id=record["event_id"],
                request_event_id=record["request_event_id"],
                application_id=record["application_id"],
                bank_code=record["bank_code"],
                personal=_sealed_part(record),
                completed_at=completed_at,
            ),
        )
        return result


@dataclass(frozen=True, slots=True)
class ActivationFailed(_Codec):
    """A bank could not open the account."""

    RECORD: ClassVar[str] = "ActivationFailed"

    event_id: str
    request_event_id: str
    application_id: str
    bank_code: str
    failure_reason: BankRefusalReason
    failed_at: datetime
    detail: str | None = None

    def to_record(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "request_event_id": self.request_event_id,
            "application_id": self.application_id,
            "bank_code": self.bank_code,
            "failure_reason": self.failure_reason.value,
            "detail": self.detail,
            "failed_at": _timestamp(self.failed_at),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Self:
        failed_at = _parse_timestamp(record, "failed_at")
        result: Self = _convert(
            cls.RECORD,
            lambda: cls(
                event_id=record["event_id"],
                request_event_id=record["request_event_id"],
                application_id=record["application_id"],
                bank_code=record["bank_code"],
                failure_reason=BankRefusalReason(record["failure_reason"]),
                failed_at=failed_at,
                detail=record.get("detail"),
            ),
        )
        return result


@dataclass(frozen=True, slots=True, repr=False)
class AccountOpeningRequested(_Codec):
    """Asks a bank to open the account of an accepted new-card application, on the bank's own topic. The
    signed agreement travels with it (id, terms version, document hash); the holder's ID number and name only
    in `personal`, a HolderPersonal sealed to the bank (`issuance.bank_personal`)."""

    RECORD: ClassVar[str] = "AccountOpeningRequested"

    event_id: str
    application_id: str
    bank_code: str
    attempt: int
    personal: bytes
    area_code: str
    branch_code: str
    agreement_id: str
    terms_version: str
    document_sha256: str
    requested_at: datetime
    run_id: int | None = None

    def __repr__(self) -> str:  # never print the personal fields
        return (
            f"AccountOpeningRequested(event_id={self.event_id!r}, application_id={self.application_id!r}, "
            f"bank_code={self.bank_code!r}, attempt={self.attempt})"
        )

    def to_record(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "application_id": self.application_id,
            "bank_code": self.bank_code,
            "attempt": self.attempt,
            "personal": self.personal,
            "area_code": self.area_code,
            "branch_code": self.branch_code,
            "agreement_id": self.agreement_id,
            "terms_version": self.terms_version,
            "document_sha256": self.document_sha256,
            "requested_at": _timestamp(self.requested_at),
            "run_id": self.run_id,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Self:
        requested_at = _parse_timestamp(record, "requested_at")
        names = [f.name for f in fields(cls) if f.name not in ("requested_at", "run_id", "personal")]
        result: Self = _convert(
            cls.RECORD,
            lambda: cls(
                **{name: record[name] for name in names},
                personal=_sealed_part(record),
                requested_at=requested_at,
                run_id=record.get("run_id"),
            ),
        )
        return result


@dataclass(frozen=True, slots=True, repr=False)
class AccountOpened(_Codec):
    """A bank opened the account and assigned its number, which travels only in `personal` (an AccountPersonal
    sealed to the bureau)."""

    RECORD: ClassVar[str] = "AccountOpened"

    event_id: str
    request_event_id: str
    application_id: str
    bank_code: str
    personal: bytes
    opened_at: datetime

    def __repr__(self) -> str:
        return f"AccountOpened(event_id={self.event_id!r}, application_id={self.application_id!r})"

    def to_record(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "request_event_id": self.request_event_id,
            "application_id": self.application_id,
            "bank_code": self.bank_code,
            "personal": self.personal,
            "opened_at": _timestamp(self.opened_at),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Self:
        opened_at = _parse_timestamp(record, "opened_at")
        result: Self = _convert(
            cls.RECORD,
            lambda: cls(
                event_id=record["event_id"],
                request_event_id=record["request_event_id"],
                application_id=record["application_id"],
                bank_code=record["bank_code"],
                personal=_sealed_part(record),
                opened_at=opened_at,
            ),
        )
        return result


@dataclass(frozen=True, slots=True)
class AccountRefused(_Codec):
    """A bank refused to open the account."""

    RECORD: ClassVar[str] = "AccountRefused"

    event_id: str
    request_event_id: str
    application_id: str
    bank_code: str
    refusal_reason: BankRefusalReason
    refused_at: datetime
    detail: str | None = None

    def to_record(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "request_event_id": self.request_event_id,
            "application_id": self.application_id,
            "bank_code": self.bank_code,
            "refusal_reason": self.refusal_reason.value,
            "detail": self.detail,
            "refused_at": _timestamp(self.refused_at),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Self:
        refused_at = _parse_timestamp(record, "refused_at")
        result: Self = _convert(
            cls.RECORD,
            lambda: cls(
                event_id=record["event_id"],
                request_event_id=record["request_event_id"],
                application_id=record["application_id"],
                bank_code=record["bank_code"],
                refusal_reason=BankRefusalReason(record["refusal_reason"]),
                refused_at=refused_at,
                detail=record.get("detail"),
            ),
        )
        return result


@dataclass(frozen=True, slots=True)
class CardDispatched(_Codec):
    """A produced card on its way to the applicant's branch (no personal data)."""

    RECORD: ClassVar[str] = "CardDispatched"

    event_id: str
    application_id: str
    card_number: str
    branch_code: str
    vendor_code: str
    production_run_id: int
    dispatched_at: datetime

    def to_record(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "application_id": self.application_id,
            "card_number": self.card_number,
            "branch_code": self.branch_code,
            "vendor_code": self.vendor_code,
            "production_run_id": self.production_run_id,
            "dispatched_at": _timestamp(self.dispatched_at),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Self:
        dispatched_at = _parse_timestamp(record, "dispatched_at")
        result: Self = _convert(
            cls.RECORD,
            lambda: cls(
                event_id=record["event_id"],
                application_id=record["application_id"],
                card_number=record["card_number"],
                branch_code=record["branch_code"],
                vendor_code=record["vendor_code"],
                production_run_id=record["production_run_id"],
                dispatched_at=dispatched_at,
            ),
        )
        return result


@dataclass(frozen=True, slots=True)
class CardReceived(_Codec):
    """A branch confirms a produced card arrived (sent by the branch)."""

    RECORD: ClassVar[str] = "CardReceived"

    event_id: str
    card_number: str
    branch_code: str
    operator_id: str
    received_at: datetime

    def to_record(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "card_number": self.card_number,
            "branch_code": self.branch_code,
            "operator_id": self.operator_id,
            "received_at": _timestamp(self.received_at),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Self:
        received_at = _parse_timestamp(record, "received_at")
        result: Self = _convert(
            cls.RECORD,
            lambda: cls(
                event_id=record["event_id"],
                card_number=record["card_number"],
                branch_code=record["branch_code"],
                operator_id=record["operator_id"],
                received_at=received_at,
            ),
        )
        return result


@dataclass(frozen=True, slots=True)
class CardCollected(_Codec):
    """The holder collected the card after an identity check (sent by the branch)."""

    RECORD: ClassVar[str] = "CardCollected"

    event_id: str
    card_number: str
    branch_code: str
    identity_checked: bool
    operator_id: str
    collected_at: datetime

    def to_record(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "card_number": self.card_number,
            "branch_code": self.branch_code,
            "identity_checked": self.identity_checked,
            "operator_id": self.operator_id,
            "collected_at": _timestamp(self.collected_at),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Self:
        collected_at = _parse_timestamp(record, "collected_at")
        result: Self = _convert(
            cls.RECORD,
            lambda: cls(
                event_id=record["event_id"],
                card_number=record["card_number"],
                branch_code=record["branch_code"],
                identity_checked=bool(record["identity_checked"]),
                operator_id=record["operator_id"],
                collected_at=collected_at,
            ),
        )
        return result


@dataclass(frozen=True, slots=True, repr=False)
class MessageDeadLettered(_Codec):
    """A message that could not be read, with its original bytes (which may hold personal data)."""

    RECORD: ClassVar[str] = "MessageDeadLettered"

    event_id: str
    source_topic: str
    partition: int
    offset: int
    stage: str
    reason: DeadLetterReason
    detail: str
    payload: bytes
    dead_lettered_at: datetime
    run_id: int | None = None
    payload_size: int | None = None  # of the whole original message, when `payload` is an excerpt of it
    payload_sha256: str | None = None
    payload_location: str | None = None  # where the whole original message is kept

    def __repr__(self) -> str:
        return (
            f"MessageDeadLettered(source_topic={self.source_topic!r}, partition={self.partition}, "
            f"offset={self.offset}, stage={self.stage!r}, reason={self.reason.value}, "
            f"detail={self.detail!r}, payload=<{len(self.payload)} bytes>)"
        )

    def to_record(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "source_topic": self.source_topic,
            "partition": self.partition,
            "offset": self.offset,
            "stage": self.stage,
            "reason": self.reason.value,
            "detail": self.detail,
            "payload": self.payload,
            "dead_lettered_at": _timestamp(self.dead_lettered_at),
            "run_id": self.run_id,
            "payload_size": self.payload_size,
            "payload_sha256": self.payload_sha256,
            "payload_location": self.payload_location,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Self:
        dead_lettered_at = _parse_timestamp(record, "dead_lettered_at")
        result: Self = _convert(
            cls.RECORD,
            lambda: cls(
                event_id=record["event_id"],
                source_topic=record["source_topic"],
                partition=record["partition"],
                offset=record["offset"],
                stage=record["stage"],
                reason=DeadLetterReason(record["reason"]),
                detail=record["detail"],
                payload=bytes(record["payload"]),
                dead_lettered_at=dead_lettered_at,
                run_id=record.get("run_id"),
                payload_size=record.get("payload_size"),
                payload_sha256=record.get("payload_sha256"),
                payload_location=record.get("payload_location"),
            ),
        )
        return result


Event = (
    DecisionIssued
    | AccountOpeningRequested
    | AccountOpened
    | AccountRefused
    | ActivationRequested
    | ActivationCompleted
    | ActivationFailed
    | CardDispatched
    | CardReceived
    | CardCollected
    | MessageDeadLettered
)
EVENT_TYPES: dict[str, type[Event]] = {
    cls.RECORD: cls
    for cls in (
        DecisionIssued,
        AccountOpeningRequested,
        AccountOpened,
        AccountRefused,
        ActivationRequested,
        ActivationCompleted,
        ActivationFailed,
        CardDispatched,
        CardReceived,
        CardCollected,
        MessageDeadLettered,
    )
}


def decode_event(data: bytes) -> Event:
    """Decode any published event into its dataclass (raises the codec's typed errors)."""
    decoded = decode(data)
    kind = EVENT_TYPES.get(decoded.record_name)
    if kind is None:
        raise SchemaViolation(f"{decoded.record_name} is not an event", [("$record", "not an event")])
    return kind.from_record(decoded.record)
