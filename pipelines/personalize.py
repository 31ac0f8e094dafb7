"""Personalization: the numbers an accepted application's card and account carry, and its activation request.

Numbers come from the application's slot. When a run is planned it reserves one slot per application record of
its plan (the `slot` counter); a record's slot is its position among those records, in plan order. A slot is
therefore unique system-wide and fixed by the stored plan, so the numbers are known as soon as a record is
read: the Beam workers personalize every application that passes verification, in parallel, and the final
transaction keeps what it accepts. A re-run over the same plan computes the same numbers; the slots of
rejected applications stay unused (sequences have gaps, never repeats). An application accepted in a later run
(a late agreement) is personalized then, from the slot it kept.

The card sequence and the account sequence are both the slot (`issuance.domain.numbers` derives the card
number, the card identification code and the account number from them). Only a new card gets an account
number: it is personalized on the chip with the card. An existing card (FINANCIAL_ACTIVATION) already carries
the account bound to it when it was personalized; its activation request names the card, and the bank switches
that account on, so no number is allocated for it.

The activation request carries the agreement the application was accepted on (id, terms version, document
hash), so that the bank can tie the account to the signed document.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from issuance.codec.avro import encode_many
from issuance.crypto import Vault
from issuance.domain.model import Applicant, Application, ApplicationType, Bank, Channel
from issuance.domain.numbers import bank_account_number, card_identification_code, card_number
from issuance.kafka.outbox_relay import seal_payloads
from issuance.messages import ActivationRequested, activation_request_event_id


@dataclass(frozen=True, slots=True)
class SignedAgreement:
    """The agreement an application was accepted on, as its activation request names it."""

    agreement_id: str
    terms_version: str
    document_sha256: str


@dataclass(frozen=True, slots=True)
class Candidate:
    """An application about to be personalized, with the holder's data in clear (never stored so)."""

    application_id: str
    application_type: str
    bank_code: str
    area_code: str | None
    existing_card: str | None  # FINANCIAL_ACTIVATION: the card whose savings function is activated
    holder_id_number: str
    holder_name: str
    slot: int
    attempt: int  # of the activation request: 1, or failures so far + 1
    agreement: SignedAgreement | None  # None only for applications accepted before requests carried it

    def __repr__(self) -> str:  # never print the personal fields
        return f"Candidate(application_id={self.application_id!r}, slot={self.slot})"


@dataclass(frozen=True, slots=True)
class Personalized:
    """What is kept for an accepted application: numbers, the sealed account number and the sealed request."""

    application_id: str
    slot: int
    new_card_number: str | None  # NEW_CARD only
    card_identification_code: str | None  # NEW_CARD only
    card_number: str  # the card the account belongs to (new or existing)
    account_index: bytes | None  # None for an existing card: the bank finds its account by the card
    account_number_enc: bytes | None
    agreement_id: str | None
    request_event_id: str
    request_payload: bytes  # ActivationRequested, sealed: it carries the holder's ID number and name


def personalize(
    candidates: Sequence[Candidate],
    banks: Mapping[str, Bank],
    vault: Vault,
    run_id: int,
    requested_at: datetime,
) -> list[Personalized]:
    """Personalize a batch (account numbers and requests sealed as one batch each)."""
    numbers = [_numbers(a, banks[a.bank_code]) for a in candidates]
    requests = activation_requests(
        [
            Request(a, card, cic, account)
            for a, (_new, cic, card, account) in zip(candidates, numbers, strict=True)
        ],
        vault,
        run_id,
        requested_at,
    )
    sealed_accounts = vault.encrypt_many(account for _new, _cic, _card, account in numbers)
    return [
        Personalized(
            a.application_id,
            a.slot,
            new,
            cic,
            card,
            None if account is None else vault.blind_index(account),
            sealed_account,
            a.agreement.agreement_id if a.agreement else None,
            event_id,
            payload,
        )
        for a, (new, cic, card, account), sealed_account, (event_id, payload) in zip(
            candidates, numbers, sealed_accounts, requests, strict=True
        )
    ]


@dataclass(frozen=True, slots=True)
class Request:
    """An activation request to build: who, and the numbers of the card and the account."""

    candidate: Candidate
    card_number: str
    card_identification_code: str | None
    account_number: str | None  # None for an existing card

    def __repr__(self) -> str:  # never print the account number
        return f"Request({self.candidate!r})"


def activation_requests(
    requests: Sequence[Request], vault: Vault, run_id: int, requested_at: datetime
) -> list[tuple[str, bytes]]:
    """(event id, sealed ActivationRequested) per request, encoded and sealed as one batch."""
    event_ids = [
        activation_request_event_id(r.candidate.application_id, r.candidate.attempt) for r in requests
    ]
    requested = requested_at.isoformat()
    payloads = encode_many(
        ActivationRequested.RECORD,
        (
            {
                "event_id": event_id,
                "application_id": r.candidate.application_id,
                "bank_code": r.candidate.bank_code,
                "application_type": r.candidate.application_type,
                "attempt": r.candidate.attempt,
                "card_number": r.card_number,
                "card_identification_code": r.card_identification_code,
                "account_number": r.account_number,
                "holder_id_number": r.candidate.holder_id_number,
                "holder_name": r.candidate.holder_name,
                "requested_at": requested,
                "run_id": run_id,
                "agreement_id": r.candidate.agreement.agreement_id if r.candidate.agreement else None,
                "terms_version": r.candidate.agreement.terms_version if r.candidate.agreement else None,
                "document_sha256": r.candidate.agreement.document_sha256 if r.candidate.agreement else None,
            }
            for r, event_id in zip(requests, event_ids, strict=True)
        ),
    )
    return list(zip(event_ids, seal_payloads(vault, payloads), strict=True))


def _numbers(candidate: Candidate, bank: Bank) -> tuple[str | None, str | None, str, str | None]:
    """(new card number, card identification code, card of the account, account number or None)."""
    if candidate.application_type == ApplicationType.NEW_CARD.value:
        if candidate.area_code is None:
            raise ValueError(f"application {candidate.application_id}: a new card needs an issuing area")
        new = card_number(candidate.slot)
        account = bank_account_number(bank.bin, candidate.slot)
        return new, card_identification_code(candidate.area_code, candidate.slot), new, account
    if candidate.existing_card is None:
        raise ValueError(f"application {candidate.application_id}: activation needs the existing card")
    return None, None, candidate.existing_card, None  # the card carries its account already


_TYPES = {t.value: t for t in ApplicationType}
_ZONES: dict[int, timezone] = {}  # a night's applications come from a handful of UTC offsets
_NO_APPLICANT = Applicant("", "", "")  # the rules after verification never read personal data


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
