"""Human messages for the reason codes, one place for decisions, the CLI and the dashboard."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from issuance.domain.model import Reason

REASON_MESSAGES: Mapping[Reason, str] = MappingProxyType(
    {
        Reason.ID_NUMBER_INVALID: "The ID number is not valid (check character, birth date or area code).",
        Reason.PERSON_NOT_FOUND: "No person with this ID number is in the registry.",
        Reason.NAME_MISMATCH: "The applicant's name differs from the name in the registry.",
        Reason.NOT_INSURED: "The person is not insured.",
        Reason.MATERIALS_MISSING: "Required materials are missing: NEW_CARD needs RESIDENT_ID_CARD and "
        "HOUSEHOLD_REGISTER, FINANCIAL_ACTIVATION needs RESIDENT_ID_CARD and SOCIAL_SECURITY_CARD.",
        Reason.GUARDIAN_REQUIRED: "The applicant is under 16 and no valid guardian ID number was given.",
        Reason.BRANCH_UNKNOWN: "The branch code is not known.",
        Reason.BANK_NOT_COOPERATING: "The bank is unknown, is not the branch's bank, or does not "
        "issue in the branch's area.",
        Reason.AREA_NOT_APPROVED: "The branch's issuing area is not approved to issue cards.",
        Reason.DUPLICATE_APPLICATION: "The same person has another open application that goes on instead.",
        Reason.ALREADY_HAS_CARD: "The person already holds a valid social security card.",
        Reason.CARD_NOT_FOUND: "The card number is missing or not known.",
        Reason.CARD_NOT_ELIGIBLE: "The card is not the applicant's, not of this bank, not valid, or its "
        "financial function is already active.",
        Reason.AGREEMENT_MISMATCH: "The signed agreement names another bank or was signed before "
        "the application was submitted.",
        Reason.AGREEMENT_TERMS_OUTDATED: "The signed agreement is not on the bank's current terms version.",
        Reason.AGREEMENT_EXPIRED: "No valid agreement was signed within 30 days of submission.",
    }
)


def normalize_reasons(reasons: Iterable[Reason]) -> list[Reason]:
    """Unique reasons sorted by code, the order every decision carries them in."""
    return sorted(set(reasons))


def describe(reasons: Iterable[Reason]) -> str:
    """One line per reason: `CODE: message`."""
    return "\n".join(f"{reason}: {REASON_MESSAGES[reason]}" for reason in normalize_reasons(reasons))
