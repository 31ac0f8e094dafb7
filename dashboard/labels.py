"""Plain-language labels so a bureau official can read the pages without knowing the codes."""

from __future__ import annotations

REASONS: dict[str, str] = {
    "ID_NUMBER_INVALID": "ID number invalid (check digit, birth date or area code)",
    "ID_NUMBER_FORMAT": "ID number: wrong shape",
    "ID_NUMBER_CHECKSUM": "ID number: check digit wrong",
    "ID_NUMBER_BIRTH_DATE": "ID number: impossible birth date",
    "ID_NUMBER_AREA_CODE": "ID number: unknown area code",
    "PERSON_NOT_FOUND": "Person not in the registry",
    "NAME_MISMATCH": "Name differs from the registry",
    "NOT_INSURED": "Person not insured",
    "MATERIALS_MISSING": "Required documents missing",
    "MISSING_RESIDENT_ID_CARD": "Missing: resident ID card",
    "MISSING_SOCIAL_SECURITY_CARD": "Missing: social security card",
    "MISSING_HOUSEHOLD_REGISTER": "Missing: household register",
    "GUARDIAN_REQUIRED": "Under 16 without a valid guardian",
    "GUARDIAN_NOT_ADULT": "Guardian under 18",
    "GUARDIAN_IS_APPLICANT": "Guardian is the applicant",
    "GUARDIAN_NOT_FOUND": "Guardian not in the registry",
    "BRANCH_UNKNOWN": "Unknown branch",
    "BANK_NOT_COOPERATING": "Bank does not issue in this area",
    "AREA_NOT_APPROVED": "Issuing area not approved",
    "DUPLICATE_APPLICATION": "Person already has an open application",
    "ALREADY_HAS_CARD": "Person already holds a valid card",
    "CARD_NOT_FOUND": "Card to activate not found",
    "CARD_NOT_ELIGIBLE": "Card cannot be activated (other holder or bank, not valid, already active)",
    "AGREEMENT_MISMATCH": "Agreement names another bank or was signed before the application",
    "AGREEMENT_TERMS_OUTDATED": "Agreement signed on outdated bank terms",
    "AGREEMENT_EXPIRED": "No valid agreement by the end of the 30th day",
}

DEAD_LETTER_REASONS: dict[str, str] = {
    "MALFORMED_MESSAGE": "Unreadable message",
    "UNKNOWN_SCHEMA": "Message in an unknown format version",
    "SCHEMA_VIOLATION": "Readable, but breaks the contract (missing or wrong field)",
    "EMPTY_MESSAGE": "Empty message (no content at all)",
    "OVERSIZED_MESSAGE": "Message larger than any valid record",
    "UNPROCESSABLE_RECORD": "Valid record a stage could not process (see the detail)",
    "APPLICATION_ID_REUSED": "A different application under an application id already used",
}

DEAD_LETTER_STATUSES: dict[str, str] = {
    "OPEN": "Open",
    "REDRIVEN": "Re-driven",
    "HANDLED": "Handled (closed)",
}

STATES: dict[str, str] = {
    "SUBMITTED": "Submitted, not yet processed",
    "REJECTED": "Rejected",
    "AWAITING_AGREEMENT": "Waiting for the signed agreement",
    "ACCEPTED": "Accepted, on its way",
    "COMPLETED": "Completed",
    "FAILED": "Failed (refused by the bank, or not produced)",
}

CARD_STATUSES: dict[str, str] = {
    "ORDERED": "Ordered (account requested or opened)",
    "IN_PRODUCTION": "In production at the vendor",
    "PRODUCED": "Produced, on its way to the branch",
    "AT_BRANCH": "At the branch, waiting for the holder",
    "ISSUED": "Issued (collected by the holder)",
    "LOST_TEMPORARY": "Reported lost (temporarily)",
    "LOST_FORMAL": "Reported lost",
    "REPLACED": "Replaced",
    "CANCELLED": "Cancelled",
    "EXPIRED": "Expired",
}

FINANCIAL_STATUSES: dict[str, str] = {
    "NONE": "No account",
    "REQUESTED": "Account requested from the bank",
    "OPENED": "Account opened, savings not yet active",
    "ACTIVE": "Savings function active",
    "REFUSED": "Refused by the bank",
    "FROZEN": "Frozen",
    "CLOSED": "Closed",
}

STAGES: dict[str, str] = {
    "verify": "Verification",
    "agreement": "Agreement",
    "personalize": "Personalization",
    "activation": "Bank activation",
    "bank": "Bank",
    "vendor": "Card vendor",
    "branch": "Branch",
}


def reason(code: str) -> str:
    """A rejection reason in words (the code itself when unknown)."""
    return REASONS.get(code, code)


def state(code: str) -> str:
    """A state in words."""
    return STATES.get(code, code)


def card_status(code: str) -> str:
    """A card's social-security status in words."""
    return CARD_STATUSES.get(code, code)


def financial_status(code: str) -> str:
    """A card's financial status in words."""
    return FINANCIAL_STATUSES.get(code, code)
