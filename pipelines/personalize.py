"""Personalization: the numbers an accepted application's card and account carry, and its activation request.

Numbers come from the application's slot. When a run is planned it reserves one slot per application record of
its plan (the `slot` counter); a record's slot is its position among those records, in plan order. A slot is
therefore unique system-wide and fixed by the stored plan, so the numbers are known as soon as a record is
read: the Beam workers personalize every application that passes verification, in parallel, and the final
transaction keeps what it accepts. A re-run over the same plan computes the same numbers; the slots of
rejected applications stay unused (sequences have gaps, never repeats). An application accepted in a later run
(a late agreement) is personalized then, from the slot it kept.

The card sequence and the account sequence are both the slot (`issuance.domain.numbers` derives the card
number, the card identification code and the account number from them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from issuance.codec.avro import encode_many
from issuance.crypto import Vault
from issuance.domain.model import ApplicationType, Bank
from issuance.domain.numbers import bank_account_number, card_identification_code, card_number
from issuance.kafka.outbox_relay import seal_payloads
from issuance.messages import ActivationRequested, activation_request_event_id


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
    account_index: bytes
    account_number_enc: bytes
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
            vault.blind_index(account),
            _present(sealed_account),
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
    account_number: str

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
            }
            for r, event_id in zip(requests, event_ids, strict=True)
        ),
    )
    return list(zip(event_ids, seal_payloads(vault, payloads), strict=True))


def _present(sealed: bytes | None) -> bytes:
    assert sealed is not None, "an account number is never empty"
    return sealed


def _numbers(candidate: Candidate, bank: Bank) -> tuple[str | None, str | None, str, str]:
    """(new card number, card identification code, card of the account, account number)."""
    account = bank_account_number(bank.bin, candidate.slot)
    if candidate.application_type == ApplicationType.NEW_CARD.value:
        if candidate.area_code is None:
            raise ValueError(f"application {candidate.application_id}: a new card needs an issuing area")
        new = card_number(candidate.slot)
        return new, card_identification_code(candidate.area_code, candidate.slot), new, account
    if candidate.existing_card is None:
        raise ValueError(f"application {candidate.application_id}: activation needs the existing card")
    return None, None, candidate.existing_card, account
