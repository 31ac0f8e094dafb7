"""The personal parts of the bureau's requests to a bank and of a bank's answers, sealed to the one party that
must read them.

A request (AccountOpeningRequested, ActivationRequested) carries the holder's ID number and name, and for an
activation of a card this system issued the account number on its chip: a `HolderPersonal`, sealed to the
bank it is for. An answer (AccountOpened, ActivationCompleted) carries the account the bank opened or switched
on: an `AccountPersonal`, sealed to the bureau. The associated data is the message's event id, so a sealed
part cannot be moved into another message. The broker, and anyone else who reads the topics, sees only
ciphertext.
"""

from __future__ import annotations

from dataclasses import dataclass

from issuance.trust.keys import Directory
from issuance.trust.parties import bank
from issuance.trust.sealing import Sealer, Unsealer, open_personal, seal_personal

HOLDER = "HolderPersonal"
ACCOUNT = "AccountPersonal"


@dataclass(frozen=True, slots=True, repr=False)
class HolderPersonal:
    """Whom a bank request is about, as the bank must know it."""

    holder_id_number: str
    holder_name: str
    account_number: str | None = None  # an activation of a card this system issued

    def __repr__(self) -> str:  # never print the personal fields
        return "HolderPersonal(<sealed fields>)"


def seal_holder(holder: HolderPersonal, sealer: Sealer, event_id: str) -> bytes:
    """The request's `personal`, sealed to its bank (the sealer's recipient)."""
    fields = {
        "holder_id_number": holder.holder_id_number,
        "holder_name": holder.holder_name,
        "account_number": holder.account_number,
    }
    return seal_personal(HOLDER, fields, sealer, aad=event_id)


def open_holder(blob: bytes, unsealer: Unsealer, event_id: str) -> HolderPersonal:
    """A request's `personal`, opened by its bank (TrustFailure SEAL_INVALID when it does not open)."""
    record = open_personal(HOLDER, blob, unsealer, aad=event_id)
    return HolderPersonal(record["holder_id_number"], record["holder_name"], record.get("account_number"))


def seal_account(account_number: str, sealer: Sealer, event_id: str) -> bytes:
    """An answer's `personal`, sealed to the bureau (the sealer's recipient)."""
    return seal_personal(ACCOUNT, {"account_number": account_number}, sealer, aad=event_id)


def open_account(blob: bytes, unsealer: Unsealer, event_id: str) -> str:
    """An answer's account number, opened by the bureau (TrustFailure SEAL_INVALID when it does not open)."""
    return str(open_personal(ACCOUNT, blob, unsealer, aad=event_id)["account_number"])


class BankSealers:
    """One Sealer per bank for a night's requests: each wraps one data key once, so a night pays one key
    agreement per bank, not one per request (a Sealer rotates its data key itself after its limit)."""

    def __init__(self, directory: Directory) -> None:
        self._directory = directory
        self._sealers: dict[str, Sealer] = {}

    def __call__(self, bank_code: str) -> Sealer:
        """The sealer to this bank (UnknownParty when it has no registered seal key: fail closed)."""
        sealer = self._sealers.get(bank_code)
        if sealer is None:
            sealer = self._sealers[bank_code] = Sealer.to(self._directory, bank(bank_code))
        return sealer
