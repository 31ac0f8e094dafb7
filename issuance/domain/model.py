"""The domain vocabulary of the contract in design.md: enums, input records and reference data."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class ApplicationType(StrEnum):
    NEW_CARD = "NEW_CARD"
    FINANCIAL_ACTIVATION = "FINANCIAL_ACTIVATION"


class Channel(StrEnum):
    COUNTER = "COUNTER"
    SELF_SERVICE_TERMINAL = "SELF_SERVICE_TERMINAL"


class Material(StrEnum):
    RESIDENT_ID_CARD = "RESIDENT_ID_CARD"
    SOCIAL_SECURITY_CARD = "SOCIAL_SECURITY_CARD"
    BANK_CARD = "BANK_CARD"
    HOUSEHOLD_REGISTER = "HOUSEHOLD_REGISTER"


class Reason(StrEnum):
    """Rejection reasons; an application may carry several.

    Two codes are umbrellas that always come with a detail code saying what exactly to fix:
    ID_NUMBER_INVALID with one ID_NUMBER_<problem>, MATERIALS_MISSING with one MISSING_<material> per missing
    material. Readers that only know the umbrella keep working.
    """

    ID_NUMBER_INVALID = "ID_NUMBER_INVALID"
    ID_NUMBER_FORMAT = "ID_NUMBER_FORMAT"  # detail: not 17 digits and a check character
    ID_NUMBER_CHECKSUM = "ID_NUMBER_CHECKSUM"  # detail: the check character does not match (mistyped)
    ID_NUMBER_BIRTH_DATE = "ID_NUMBER_BIRTH_DATE"  # detail: no such day, before 1900 or after submission
    ID_NUMBER_AREA_CODE = "ID_NUMBER_AREA_CODE"  # detail: no such administrative area code
    PERSON_NOT_FOUND = "PERSON_NOT_FOUND"
    NAME_MISMATCH = "NAME_MISMATCH"
    NOT_INSURED = "NOT_INSURED"
    MATERIALS_MISSING = "MATERIALS_MISSING"
    MISSING_RESIDENT_ID_CARD = "MISSING_RESIDENT_ID_CARD"  # detail of MATERIALS_MISSING
    MISSING_SOCIAL_SECURITY_CARD = "MISSING_SOCIAL_SECURITY_CARD"  # detail of MATERIALS_MISSING
    MISSING_HOUSEHOLD_REGISTER = "MISSING_HOUSEHOLD_REGISTER"  # detail of MATERIALS_MISSING
    GUARDIAN_REQUIRED = "GUARDIAN_REQUIRED"  # under 16 without a guardian ID number that is valid
    GUARDIAN_NOT_ADULT = "GUARDIAN_NOT_ADULT"  # the guardian is under 18
    GUARDIAN_IS_APPLICANT = "GUARDIAN_IS_APPLICANT"  # the guardian ID number is the applicant's own
    GUARDIAN_NOT_FOUND = "GUARDIAN_NOT_FOUND"  # the registry does not know the guardian
    BRANCH_UNKNOWN = "BRANCH_UNKNOWN"
    BANK_NOT_COOPERATING = "BANK_NOT_COOPERATING"
    AREA_NOT_APPROVED = "AREA_NOT_APPROVED"
    DUPLICATE_APPLICATION = "DUPLICATE_APPLICATION"
    ALREADY_HAS_CARD = "ALREADY_HAS_CARD"
    CARD_NOT_FOUND = "CARD_NOT_FOUND"
    CARD_NOT_ELIGIBLE = "CARD_NOT_ELIGIBLE"
    AGREEMENT_MISMATCH = "AGREEMENT_MISMATCH"
    AGREEMENT_TERMS_OUTDATED = "AGREEMENT_TERMS_OUTDATED"
    AGREEMENT_EXPIRED = "AGREEMENT_EXPIRED"


class DeadLetterReason(StrEnum):
    """Why a message was set aside instead of processed; the one list of these codes (SQL checks only their
    shape, the MessageDeadLettered schema carries them as its enum)."""

    MALFORMED_MESSAGE = "MALFORMED_MESSAGE"  # not decodable
    UNKNOWN_SCHEMA = "UNKNOWN_SCHEMA"  # names a writer schema this system does not know
    SCHEMA_VIOLATION = "SCHEMA_VIOLATION"  # decodes, breaks the contract
    EMPTY_MESSAGE = "EMPTY_MESSAGE"  # no value at all (a null or zero-length record)
    OVERSIZED_MESSAGE = "OVERSIZED_MESSAGE"  # larger than any contract record may be
    UNPROCESSABLE_RECORD = (
        "UNPROCESSABLE_RECORD"  # meets the contract, but a stage could not process its values
    )
    APPLICATION_ID_REUSED = "APPLICATION_ID_REUSED"  # a different application under an id already submitted
    # Readable, but the lifecycle does not allow it (a collection before the receipt, another branch's card,
    # an unknown card, an event id used again with other content).
    TRANSITION_NOT_ALLOWED = "TRANSITION_NOT_ALLOWED"
    # Trust: a message from outside the bureau without the sender's authentication, with one that does
    # not verify (forged, altered, or signed by a key nobody registered), from a party other than the one it
    # speaks for (a bank answering another bank's request, a branch submitting for another branch), or whose
    # sealed personal fields do not open with the recipient's key.
    SIGNATURE_MISSING = "SIGNATURE_MISSING"
    SIGNATURE_INVALID = "SIGNATURE_INVALID"
    SENDER_MISMATCH = "SENDER_MISMATCH"
    SEAL_INVALID = "SEAL_INVALID"


class RegistryCardStatus(StrEnum):
    """A card in the person registry (reference data)."""

    VALID = "VALID"
    LOST = "LOST"
    CANCELLED = "CANCELLED"


class RegistryFinancialStatus(StrEnum):
    """The savings function of a card in the person registry (reference data)."""

    INACTIVE = "INACTIVE"
    ACTIVE = "ACTIVE"


@dataclass(frozen=True, slots=True)
class Applicant:
    id_number: str
    name: str
    phone: str


@dataclass(frozen=True, slots=True)
class Application:
    """A branch's application, as submitted (the ApplicationSubmitted record)."""

    application_id: str
    application_type: ApplicationType
    branch_code: str
    bank_code: str
    channel: Channel
    applicant: Applicant
    materials: tuple[Material, ...]
    submitted_at: datetime
    card_number: str | None = None
    guardian_id_number: str | None = None


@dataclass(frozen=True, slots=True)
class Agreement:
    """A signed savings agreement (the AgreementSigned record)."""

    agreement_id: str
    application_id: str
    bank_code: str
    terms_version: str
    document_sha256: str
    signed_at: datetime
    channel: Channel


@dataclass(frozen=True, slots=True)
class IssuingArea:
    area_code: str
    name: str
    approved: bool
    approval_ref: str | None = None


@dataclass(frozen=True, slots=True)
class Bank:
    bank_code: str
    name: str
    bin: str
    terms_version: str
    area_codes: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True, slots=True)
class Branch:
    branch_code: str
    bank_code: str
    area_code: str
    name: str


@dataclass(frozen=True, slots=True)
class Vendor:
    """A card vendor (制卡厂商) and the issuing areas whose cards it makes."""

    vendor_code: str
    name: str
    area_codes: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True, slots=True)
class ExistingCard:
    card_number: str
    bank_code: str
    status: RegistryCardStatus
    financial_status: RegistryFinancialStatus


@dataclass(frozen=True, slots=True)
class Person:
    id_number: str
    name: str
    insured: bool
    cards: tuple[ExistingCard, ...] = ()


@dataclass(frozen=True, slots=True)
class ReferenceData:
    """Everything verification looks up, indexed by business key."""

    issuing_areas: dict[str, IssuingArea]
    banks: dict[str, Bank]
    branches: dict[str, Branch]
    persons: dict[str, Person]
    vendors: dict[str, Vendor] = field(default_factory=dict)  # who makes the cards of which areas
