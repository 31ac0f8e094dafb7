"""The requests the night sends an accepted application's bank: the one place that builds them and seals them.

Accepting an application allocates no number any more. The bank opens a new card's account and assigns its
number (its AccountOpened answer); a later night personalizes the card (card number, card identification
code) from the slot the application keeps. What the night sends at acceptance, and again after a refusal with
attempts left, is one request on the bank's own topic (`bank.<B>.requests`), keyed by application id:

- NEW_CARD: an **AccountOpeningRequested** with the holder's ID number and name, the issuing area, the branch
  and the signed agreement (id, terms version, document hash);
- FINANCIAL_ACTIVATION: an **ActivationRequested** (v2) naming the card and the agreement, with the bank's
  number of the card's account when the card is one this system issued (`account_number`; null for a card of
  the person registry, whose account the bank finds by the card).

Both carry personal data (the holder's ID number and name, an activation's account number) only in their
`personal` part, sealed to the bank (`issuance.bank_personal`: one Sealer per bank per night, from the
registered keys). Nothing personal is in clear in the request, so its outbox row is not sealed at rest again
(`payload_encrypted` false), and the relay publishes it as it is, with the bureau's channel headers. Event ids
are `issuance.messages.bank_request_event_id(type, application, attempt)`: a re-run of a night builds the same
ids.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from issuance.bank_personal import BankSealers, HolderPersonal, seal_holder
from issuance.codec.avro import encode_many
from issuance.domain.lifecycle import Emit
from issuance.domain.model import Agreement, Applicant, Application, ApplicationType, Channel
from issuance.messages import bank_request_event_id
from issuance.trust.parties import bank

FIRST_ATTEMPT = 1


@dataclass(frozen=True, slots=True)
class SignedAgreement:
    """The agreement an application was accepted on, as its bank request names it."""

    agreement_id: str
    terms_version: str
    document_sha256: str


@dataclass(frozen=True, slots=True)
class Candidate:
    """An accepted application about to be sent to its bank, with the holder's data in clear (never stored
    so)."""

    application_id: str
    application_type: ApplicationType
    bank_code: str
    branch_code: str
    area_code: str | None  # NEW_CARD: the issuing area of the branch
    card_number: str | None  # FINANCIAL_ACTIVATION: the card whose savings function is activated
    account_number: str | None  # FINANCIAL_ACTIVATION of a card this system issued: the bank's number
    holder_id_number: str
    holder_name: str
    attempt: int  # 1, or the bank's refusals so far + 1
    agreement: SignedAgreement | None  # None only for applications accepted before requests carried it

    def __repr__(self) -> str:  # never print the personal fields
        return f"Candidate(application_id={self.application_id!r}, attempt={self.attempt})"


@dataclass(frozen=True, slots=True)
class BankRequest:
    """An outbox row to be: one request to the application's bank."""

    application_id: str
    bank_code: str
    event_id: str
    event_type: str  # AccountOpeningRequested or ActivationRequested
    payload: bytes  # the Avro bytes (the personal part sealed to the bank inside)
    agreement_id: str | None  # the agreement it names (the final transaction checks it is the accepted one)

    def __repr__(self) -> str:
        return f"BankRequest(event_id={self.event_id!r}, event_type={self.event_type!r})"


@dataclass(frozen=True, slots=True)
class _Kind:
    """How one request kind is built: its record (given the sealed personal part)."""

    event_type: str
    record: Callable[[Candidate, str, str, int, bytes], dict[str, Any]]


def _account_opening_record(
    c: Candidate, event_id: str, requested_at: str, run_id: int, personal: bytes
) -> dict[str, Any]:
    if c.area_code is None or c.agreement is None:
        raise ValueError(
            f"application {c.application_id}: an account opening needs the area and the agreement"
        )
    return {
        "event_id": event_id,
        "application_id": c.application_id,
        "bank_code": c.bank_code,
        "attempt": c.attempt,
        "personal": personal,
        "area_code": c.area_code,
        "branch_code": c.branch_code,
        "agreement_id": c.agreement.agreement_id,
        "terms_version": c.agreement.terms_version,
        "document_sha256": c.agreement.document_sha256,
        "requested_at": requested_at,
        "run_id": run_id,
    }


def _activation_record(
    c: Candidate, event_id: str, requested_at: str, run_id: int, personal: bytes
) -> dict[str, Any]:
    if c.card_number is None:
        raise ValueError(f"application {c.application_id}: an activation needs the card it activates")
    return {
        "event_id": event_id,
        "application_id": c.application_id,
        "bank_code": c.bank_code,
        "application_type": c.application_type.value,
        "attempt": c.attempt,
        "card_number": c.card_number,
        "card_identification_code": None,
        "personal": personal,
        "requested_at": requested_at,
        "run_id": run_id,
        "agreement_id": c.agreement.agreement_id if c.agreement else None,
        "terms_version": c.agreement.terms_version if c.agreement else None,
        "document_sha256": c.agreement.document_sha256 if c.agreement else None,
    }


# The event types are the lifecycle's emits, named after their Avro records.
_KINDS = {
    ApplicationType.NEW_CARD: _Kind(Emit.ACCOUNT_OPENING_REQUEST.value, _account_opening_record),
    ApplicationType.FINANCIAL_ACTIVATION: _Kind(Emit.ACTIVATION_REQUEST.value, _activation_record),
}


def _personal(c: Candidate, sealers: BankSealers, event_id: str) -> bytes:
    """The candidate's HolderPersonal, sealed to its bank (an account opening carries no account number)."""
    account = c.account_number if c.application_type is ApplicationType.FINANCIAL_ACTIVATION else None
    holder = HolderPersonal(c.holder_id_number, c.holder_name, account)
    return seal_holder(holder, sealers(c.bank_code), event_id)


def bank_requests(
    candidates: Sequence[Candidate], sealers: BankSealers, run_id: int, requested_at: datetime
) -> list[BankRequest]:
    """One request per candidate, in order: the personal part sealed to its bank, encoded per kind in
    batches."""
    requested = requested_at.isoformat()
    event_ids = [bank_request_event_id(c.application_type, c.application_id, c.attempt) for c in candidates]
    payloads: list[bytes] = [b""] * len(candidates)
    for application_type, kind in _KINDS.items():
        positions = [i for i, c in enumerate(candidates) if c.application_type is application_type]
        encoded = encode_many(
            kind.event_type,
            (
                kind.record(
                    candidates[i],
                    event_ids[i],
                    requested,
                    run_id,
                    _personal(candidates[i], sealers, event_ids[i]),
                )
                for i in positions
            ),
        )
        for i, payload in zip(positions, encoded, strict=True):
            payloads[i] = payload
    return [
        BankRequest(
            c.application_id,
            c.bank_code,
            event_id,
            _KINDS[c.application_type].event_type,
            payload,
            c.agreement.agreement_id if c.agreement else None,
        )
        for c, event_id, payload in zip(candidates, event_ids, payloads, strict=True)
    ]


def outbox_rows(
    requests: Sequence[BankRequest], topics: Mapping[str, str], run_id: int
) -> list[tuple[Any, ...]]:
    """Outbox rows (`decisions_repo.OUTBOX_COLUMNS`) of requests, on each bank's request topic."""
    return [
        (
            r.event_id,
            topics[r.bank_code],
            r.application_id.encode(),
            r.payload,
            r.event_type,
            run_id,
            False,  # payload_encrypted: the personal part is already sealed to the bank
            str(bank(r.bank_code)),
        )
        for r in requests
    ]


_TYPES = {t.value: t for t in ApplicationType}
_ZONES: dict[int, timezone] = {}  # a night's applications come from a handful of UTC offsets
_NO_APPLICANT = Applicant("", "", "")  # the rules after verification never read personal data


def application_type(value: str) -> ApplicationType:
    """An application type as stored."""
    return _TYPES[value]


def local_time(submitted_at: datetime, utc_offset: int) -> datetime:
    """A stored submission time in the submitter's own UTC offset (seconds), where the rules read its day."""
    zone = _ZONES.get(utc_offset)
    if zone is None:
        zone = _ZONES[utc_offset] = timezone(timedelta(seconds=utc_offset))
    return submitted_at.astimezone(zone)


def application_shell(
    application_id: str, application_type: str, bank_code: str, submitted_at: datetime, utc_offset: int
) -> Application:
    """An application as the rules after verification see it: keys, bank, submission time in its offset."""
    return Application(
        application_id,
        _TYPES[application_type],
        "",
        bank_code,
        Channel.COUNTER,
        _NO_APPLICANT,
        (),
        local_time(submitted_at, utc_offset),
    )


class AgreementColumns(Protocol):
    """A row that carries an application id and the agreement columns of the agreement join (or NULLs)."""

    @property
    def application_id(self) -> str: ...
    @property
    def agreement_id(self) -> str | None: ...
    @property
    def agreement_bank_code(self) -> str | None: ...
    @property
    def terms_version(self) -> str | None: ...
    @property
    def document_sha256(self) -> str | None: ...
    @property
    def signed_at(self) -> datetime | None: ...
    @property
    def channel(self) -> str | None: ...


def agreement_of(row: AgreementColumns) -> Agreement:
    """The agreement on a row that has one (the transaction and the helper read the same columns)."""
    assert row.agreement_id is not None and row.signed_at is not None and row.channel is not None
    return Agreement(
        row.agreement_id,
        row.application_id,
        str(row.agreement_bank_code),
        str(row.terms_version),
        str(row.document_sha256),
        row.signed_at,
        Channel(row.channel),
    )
