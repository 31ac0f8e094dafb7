"""An application on the wire (ApplicationSubmitted v3): the contract's record with its personal fields sealed
to the bureau, and back.

The contract (`issuance.domain.contract`) reads an application with its applicant and guardian in clear; the
wire never carries them so. A branch seals them (an `ApplicantPersonal` record, additional data the
application id, so a blob moved to another application does not open) before encoding; the night opens them
after the sender was verified and before the contract is checked, so every rule sees the same application as
before. Who may send which record is said here too: an application speaks for its branch, an agreement
for its bank.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from issuance.domain.model import DeadLetterReason
from issuance.trust.errors import TrustFailure
from issuance.trust.parties import Party, PartyKind
from issuance.trust.sealing import Sealer, Unsealer, open_personal, seal_personal

PERSONAL_RECORD = "ApplicantPersonal"
PERSONAL_FIELD = "personal"
CLEAR_FIELDS = (
    "application_id",
    "application_type",
    "branch_code",
    "bank_code",
    "channel",
    "card_number",
    "materials",
    "submitted_at",
    "submission_source",
)
# The kind of party a record speaks for, and the field that names it.
SPEAKS_FOR = {"application": (PartyKind.BRANCH, "branch_code"), "agreement": (PartyKind.BANK, "bank_code")}


def personal_fields(record: Mapping[str, Any]) -> dict[str, Any]:
    """The ApplicantPersonal record of a contract record (JSON form: `applicant` nested)."""
    applicant = record.get("applicant") or {}
    return {
        "id_number": applicant.get("id_number"),
        "name": applicant.get("name"),
        "phone": applicant.get("phone"),
        "guardian_id_number": record.get("guardian_id_number"),
    }


def seal_application(record: Mapping[str, Any], sealer: Sealer) -> dict[str, Any]:
    """The ApplicationSubmitted (v3) record of a contract record: personal fields sealed with `sealer`."""
    wire = {name: record.get(name) for name in CLEAR_FIELDS}
    wire[PERSONAL_FIELD] = seal_personal(
        PERSONAL_RECORD, personal_fields(record), sealer, str(record["application_id"])
    )
    return wire


def open_application(wire: Mapping[str, Any], unsealer: Unsealer) -> dict[str, Any]:
    """The contract record of a decoded ApplicationSubmitted: TrustFailure(SEAL_INVALID) when its personal
    fields do not open for the bureau (sealed to another key, moved from another application, altered, or
    not sealed at all: a v1 or v2 record, read as v3, has none)."""
    blob = wire.get(PERSONAL_FIELD)
    if not isinstance(blob, bytes) or not blob:
        raise TrustFailure(
            DeadLetterReason.SEAL_INVALID,
            "personal: the personal fields are not sealed (an ApplicationSubmitted older than v3?)",
        )
    personal = open_personal(PERSONAL_RECORD, blob, unsealer, str(wire.get("application_id")))
    record = {name: wire.get(name) for name in CLEAR_FIELDS}
    record["applicant"] = {
        "id_number": personal.get("id_number"),
        "name": personal.get("name"),
        "phone": personal.get("phone"),
    }
    record["guardian_id_number"] = personal.get("guardian_id_number")
    return record


def speaks_for(kind: str, record: Mapping[str, Any]) -> tuple[PartyKind, object]:
    """The party a record of `kind` ("application" | "agreement") speaks for: (kind of party, its code as the
    record gives it, possibly not a text at all)."""
    party_kind, field = SPEAKS_FOR[kind]
    return party_kind, record.get(field)


def check_sender(kind: str, record: Mapping[str, Any], sender: Party) -> None:
    """TrustFailure(SENDER_MISMATCH) unless the authenticated sender is the party the record speaks for: an
    application's branch, an agreement's bank. Names the authenticated sender, never the record's claim."""
    party_kind, code = speaks_for(kind, record)
    if sender.kind is not party_kind or sender.code != code:
        field = SPEAKS_FOR[kind][1]
        raise TrustFailure(
            DeadLetterReason.SENDER_MISMATCH,
            f"{field}: the record speaks for a {party_kind.value} other than its authenticated sender"
            f" ({sender})",
        )
