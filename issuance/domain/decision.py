"""Human messages for the reason codes (what to do at the counter), one place for decisions, the CLI and the
dashboard.

The rules behind the codes, in the order verification checks them:

- the ID number (GB 11643-1999) is 17 digits and a check character (a lowercase `x` counts as `X`), the
  ISO 7064 MOD 11-2 check character matches, the birth date is a real day from 1900 to the submission day,
  and the area code is a GB/T 2260 code or a residence-permit code of Hong Kong, Macau or Taiwan residents
  (810000, 820000, 830000): else ID_NUMBER_INVALID with one ID_NUMBER_<problem> detail;
- the registry knows the person (PERSON_NOT_FOUND), under the same name once both are written canonically
  (NFKC, every middle-dot variant as U+00B7: NAME_MISMATCH), who is insured (NOT_INSURED);
- a new card only for someone without a valid card (ALREADY_HAS_CARD); an activation only of the applicant's
  own valid card of that bank whose savings function is not active yet (CARD_NOT_FOUND, CARD_NOT_ELIGIBLE);
- the materials of the application type and the applicant's age (`issuance.domain.verification`): else
  MATERIALS_MISSING with a MISSING_<material> per missing one;
- under 16: a guardian with a valid ID number (GUARDIAN_REQUIRED), not the applicant (GUARDIAN_IS_APPLICANT),
  18 or older (GUARDIAN_NOT_ADULT), in the registry (GUARDIAN_NOT_FOUND);
- a known branch (BRANCH_UNKNOWN) whose bank is the application's and issues in its area
  (BANK_NOT_COOPERATING), in an approved issuing area (AREA_NOT_APPROVED);
- one open application per person, the earliest submitted goes on (DUPLICATE_APPLICATION);
- a valid agreement (`issuance.domain.agreement`): the application's bank (AGREEMENT_MISMATCH), its current
  terms (AGREEMENT_TERMS_OUTDATED), signed no earlier than the submission less a clock tolerance
  (AGREEMENT_MISMATCH), by the end of the thirtieth day after submission in Asia/Shanghai (AGREEMENT_EXPIRED).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from issuance.domain.model import Reason

REASON_MESSAGES: Mapping[Reason, str] = MappingProxyType(
    {
        Reason.ID_NUMBER_INVALID: "The ID number is not valid; the detail code says why. Check it against "
        "the ID card or household register and submit again.",
        Reason.ID_NUMBER_FORMAT: "The ID number is not 17 digits followed by a digit or X.",
        Reason.ID_NUMBER_CHECKSUM: "The ID number's last character does not match the others: a digit was "
        "probably mistyped.",
        Reason.ID_NUMBER_BIRTH_DATE: "The birth date inside the ID number is not a real day, is before 1900, "
        "or is after the submission.",
        Reason.ID_NUMBER_AREA_CODE: "The first six digits of the ID number are not a known area code.",
        Reason.PERSON_NOT_FOUND: "No person with this ID number is in the registry.",
        Reason.NAME_MISMATCH: "The applicant's name differs from the name in the registry.",
        Reason.NOT_INSURED: "The person is not insured.",
        Reason.MATERIALS_MISSING: "Required materials are missing; the MISSING_ codes say which. Adults: "
        "RESIDENT_ID_CARD (and SOCIAL_SECURITY_CARD to activate); under 16: HOUSEHOLD_REGISTER and the "
        "guardian's ID card (and SOCIAL_SECURITY_CARD to activate).",
        Reason.MISSING_RESIDENT_ID_CARD: "Ask for the applicant's resident ID card.",
        Reason.MISSING_SOCIAL_SECURITY_CARD: "Ask for the social security card whose savings function is "
        "activated.",
        Reason.MISSING_HOUSEHOLD_REGISTER: "Ask for the household register showing the child.",
        Reason.GUARDIAN_REQUIRED: "The applicant is under 16 and no valid guardian ID number was given.",
        Reason.GUARDIAN_NOT_ADULT: "The guardian is under 18: a parent or other adult guardian must apply.",
        Reason.GUARDIAN_IS_APPLICANT: "The guardian ID number is the applicant's own: enter the guardian's.",
        Reason.GUARDIAN_NOT_FOUND: "No person with the guardian's ID number is in the registry: check the "
        "number against the guardian's ID card.",
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
        "the application was submitted (beyond a two-minute clock tolerance).",
        Reason.AGREEMENT_TERMS_OUTDATED: "The signed agreement is not on the bank's current terms version.",
        Reason.AGREEMENT_EXPIRED: "No valid agreement was signed by the end of the 30th day after submission "
        "(Asia/Shanghai dates).",
    }
)


def normalize_reasons(reasons: Iterable[Reason]) -> list[Reason]:
    """Unique reasons sorted by code, the order every decision carries them in."""
    return sorted(set(reasons))


def describe(reasons: Iterable[Reason]) -> str:
    """One line per reason: `CODE: message`."""
    return "\n".join(f"{reason}: {REASON_MESSAGES[reason]}" for reason in normalize_reasons(reasons))
