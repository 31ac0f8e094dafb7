"""Verification of one application against the registry and the catalog.

Materials required, by application type and the applicant's age on the submission day (a child under 16
normally has no resident ID card: the household register shows who the child is, and the guardian's ID card is
the one named by `guardian_id_number`):

| application type       | applicant 16 or older      | applicant under 16                       |
|------------------------|----------------------------|------------------------------------------|
| `NEW_CARD`             | RESIDENT_ID_CARD           | HOUSEHOLD_REGISTER, guardian's ID card   |
| `FINANCIAL_ACTIVATION` | RESIDENT_ID_CARD,          | HOUSEHOLD_REGISTER, SOCIAL_SECURITY_CARD,|
|                        | SOCIAL_SECURITY_CARD       | guardian's ID card                       |

More materials than required never hurt. When the ID number is invalid (age unknown), either column's set
is complete. A missing material is MATERIALS_MISSING with one MISSING_<material> per missing one.

A guardian (required under 16) must have a valid ID number (else GUARDIAN_REQUIRED), be someone else than the
applicant (GUARDIAN_IS_APPLICANT), be 18 or older on the submission day (GUARDIAN_NOT_ADULT) and be in the
registry (GUARDIAN_NOT_FOUND).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from types import MappingProxyType

from issuance.domain.decision import normalize_reasons
from issuance.domain.identity import (
    Identity,
    IdProblem,
    age_on,
    normalize_id_number,
    parse_id_number,
)
from issuance.domain.model import (
    Application,
    ApplicationType,
    Material,
    Person,
    Reason,
    ReferenceData,
    RegistryCardStatus,
    RegistryFinancialStatus,
)
from issuance.domain.names import same_name

GUARDIAN_AGE = 16  # applicants younger than this apply through a guardian
ADULT_AGE = 18  # a guardian must be at least this old
_ID = Material.RESIDENT_ID_CARD
_SSC = Material.SOCIAL_SECURITY_CARD
_REGISTER = Material.HOUSEHOLD_REGISTER
REQUIRED_MATERIALS: Mapping[tuple[ApplicationType, bool], frozenset[Material]] = MappingProxyType(
    {  # (application type, applicant under 16) -> materials
        (ApplicationType.NEW_CARD, False): frozenset({_ID}),
        (ApplicationType.NEW_CARD, True): frozenset({_REGISTER}),
        (ApplicationType.FINANCIAL_ACTIVATION, False): frozenset({_ID, _SSC}),
        (ApplicationType.FINANCIAL_ACTIVATION, True): frozenset({_REGISTER, _SSC}),
    }
)
MISSING: Mapping[Material, Reason] = MappingProxyType(
    {
        _ID: Reason.MISSING_RESIDENT_ID_CARD,
        _SSC: Reason.MISSING_SOCIAL_SECURITY_CARD,
        _REGISTER: Reason.MISSING_HOUSEHOLD_REGISTER,
    }
)
ID_PROBLEMS: Mapping[IdProblem, Reason] = MappingProxyType(
    {
        IdProblem.FORMAT: Reason.ID_NUMBER_FORMAT,
        IdProblem.CHECKSUM: Reason.ID_NUMBER_CHECKSUM,
        IdProblem.BIRTH_DATE: Reason.ID_NUMBER_BIRTH_DATE,
        IdProblem.AREA_CODE: Reason.ID_NUMBER_AREA_CODE,
    }
)


def verify(
    application: Application,
    person: Person | None,
    catalog: ReferenceData,
    card_registered: bool,
    issued_card_holder: bool = False,
    guardian: Person | None = None,
) -> list[Reason]:
    """Every rejection reason of the application, sorted by code; empty when it passes.

    `person` is the registry entry for the applicant's ID number, `card_registered` whether the application's
    card number belongs to anyone in the registry, `issued_card_holder` whether this system already issued the
    person a card that is not cancelled, `guardian` the registry entry for the guardian ID number.
    """
    reasons: list[Reason] = []
    day = application.submitted_at.date()  # the submission day in the submitter's own offset
    identity = parse_id_number(application.applicant.id_number, day)
    minor: bool | None = None
    if not isinstance(identity, Identity):
        reasons += (Reason.ID_NUMBER_INVALID, ID_PROBLEMS[identity.problem])
    else:
        minor = age_on(identity.birth_date, day) < GUARDIAN_AGE
        if person is None:
            reasons.append(Reason.PERSON_NOT_FOUND)
        else:
            reasons.extend(_person_reasons(application, person, issued_card_holder, card_registered))
        if minor:
            reasons.extend(guardian_reasons(application, guardian, day))
    reasons.extend(missing_materials(application.application_type, minor, application.materials))
    reasons.extend(_branch_reasons(application, catalog))
    return normalize_reasons(reasons)


def missing_materials(
    application_type: ApplicationType, minor: bool | None, materials: tuple[Material, ...]
) -> list[Reason]:
    """MATERIALS_MISSING and a MISSING_<material> per missing one (empty when complete); `minor` is None
    when the age is unknown: then either age's set is complete."""
    given = frozenset(materials)
    ages = (False, True) if minor is None else (minor,)
    shortfalls = [REQUIRED_MATERIALS[application_type, age] - given for age in ages]
    if any(not missing for missing in shortfalls):
        return []
    return [Reason.MATERIALS_MISSING, *(MISSING[m] for m in min(shortfalls, key=len))]


def guardian_reasons(application: Application, guardian: Person | None, day: date) -> list[Reason]:
    """Why the guardian named by an applicant under 16 cannot stand for them (empty when they can)."""
    number = application.guardian_id_number
    found = parse_id_number(number, day) if number else None
    if not isinstance(found, Identity):
        return [Reason.GUARDIAN_REQUIRED]
    assert number is not None
    if normalize_id_number(number) == normalize_id_number(application.applicant.id_number):
        return [Reason.GUARDIAN_IS_APPLICANT]
    reasons = []
    if age_on(found.birth_date, day) < ADULT_AGE:
        reasons.append(Reason.GUARDIAN_NOT_ADULT)
    if guardian is None:
        reasons.append(Reason.GUARDIAN_NOT_FOUND)
    return reasons


def _person_reasons(
    application: Application, person: Person, issued_card_holder: bool, card_registered: bool
) -> list[Reason]:
    """Checks against the registry entry of a valid, known ID number."""
    reasons: list[Reason] = []
    if not same_name(application.applicant.name, person.name):
        reasons.append(Reason.NAME_MISMATCH)
    if not person.insured:
        reasons.append(Reason.NOT_INSURED)
    if application.application_type == ApplicationType.NEW_CARD:
        if issued_card_holder or any(card.status == RegistryCardStatus.VALID for card in person.cards):
            reasons.append(Reason.ALREADY_HAS_CARD)
    else:
        card = next((c for c in person.cards if c.card_number == application.card_number), None)
        if card is not None:
            if (
                card.bank_code != application.bank_code
                or card.status != RegistryCardStatus.VALID
                or card.financial_status == RegistryFinancialStatus.ACTIVE
            ):
                reasons.append(Reason.CARD_NOT_ELIGIBLE)
        elif application.card_number and card_registered:
            reasons.append(Reason.CARD_NOT_ELIGIBLE)
        else:
            reasons.append(Reason.CARD_NOT_FOUND)
    return reasons


def _branch_reasons(application: Application, catalog: ReferenceData) -> list[Reason]:
    """The branch, its bank and its issuing area."""
    branch = catalog.branches.get(application.branch_code)
    if branch is None:
        return [Reason.BRANCH_UNKNOWN]
    reasons: list[Reason] = []
    bank = catalog.banks.get(application.bank_code)
    if bank is None or bank.bank_code != branch.bank_code or branch.area_code not in bank.area_codes:
        reasons.append(Reason.BANK_NOT_COOPERATING)
    area = catalog.issuing_areas.get(branch.area_code)
    if area is None or not area.approved:
        reasons.append(Reason.AREA_NOT_APPROVED)
    return reasons
