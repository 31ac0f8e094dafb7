"""Verification of one application against the registry and the catalog: rules 1-10 of the team brief."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from issuance.domain.decision import normalize_reasons
from issuance.domain.identity import Identity, age_on, is_valid_id_number, parse_id_number
from issuance.domain.model import (
    Application,
    ApplicationType,
    CardStatus,
    FinancialStatus,
    Material,
    Person,
    Reason,
    ReferenceData,
)

GUARDIAN_AGE = 16
REQUIRED_MATERIALS: Mapping[ApplicationType, frozenset[Material]] = MappingProxyType(
    {
        ApplicationType.NEW_CARD: frozenset({Material.RESIDENT_ID_CARD, Material.HOUSEHOLD_REGISTER}),
        ApplicationType.FINANCIAL_ACTIVATION: frozenset(
            {Material.RESIDENT_ID_CARD, Material.SOCIAL_SECURITY_CARD}
        ),
    }
)


def verify(
    application: Application,
    person: Person | None,
    catalog: ReferenceData,
    card_registered: bool,
    issued_card_holder: bool = False,
) -> list[Reason]:
    """Every rejection reason of the application, sorted by code; empty when it passes.

    `person` is the registry entry for the applicant's ID number, `card_registered` whether the application's
    card number belongs to anyone in the registry, `issued_card_holder` whether this system already issued the
    person a card that is not cancelled.
    """
    reasons: list[Reason] = []
    day = application.submitted_at.date()  # the submission day in the submitter's own offset
    identity = parse_id_number(application.applicant.id_number, day)
    if not isinstance(identity, Identity):
        reasons.append(Reason.ID_NUMBER_INVALID)
    elif person is None:
        reasons.append(Reason.PERSON_NOT_FOUND)
    else:
        reasons.extend(_person_reasons(application, person, issued_card_holder, card_registered))
    if not REQUIRED_MATERIALS[application.application_type].issubset(application.materials):
        reasons.append(Reason.MATERIALS_MISSING)
    if (
        isinstance(identity, Identity)
        and age_on(identity.birth_date, day) < GUARDIAN_AGE
        and not (application.guardian_id_number and is_valid_id_number(application.guardian_id_number, day))
    ):
        reasons.append(Reason.GUARDIAN_REQUIRED)
    reasons.extend(_branch_reasons(application, catalog))
    return normalize_reasons(reasons)


def _person_reasons(
    application: Application, person: Person, issued_card_holder: bool, card_registered: bool
) -> list[Reason]:
    """Rules 3, 9 and 10: checks against the registry entry of a valid, known ID number."""
    reasons: list[Reason] = []
    if application.applicant.name.strip() != person.name.strip():
        reasons.append(Reason.NAME_MISMATCH)
    if not person.insured:
        reasons.append(Reason.NOT_INSURED)
    if application.application_type == ApplicationType.NEW_CARD:
        if issued_card_holder or any(card.status == CardStatus.VALID for card in person.cards):
            reasons.append(Reason.ALREADY_HAS_CARD)
    else:
        card = next((c for c in person.cards if c.card_number == application.card_number), None)
        if card is not None:
            if (
                card.bank_code != application.bank_code
                or card.status != CardStatus.VALID
                or card.financial_status == FinancialStatus.ACTIVE
            ):
                reasons.append(Reason.CARD_NOT_ELIGIBLE)
        elif application.card_number and card_registered:
            reasons.append(Reason.CARD_NOT_ELIGIBLE)
        else:
            reasons.append(Reason.CARD_NOT_FOUND)
    return reasons


def _branch_reasons(application: Application, catalog: ReferenceData) -> list[Reason]:
    """Rules 6-8: the branch, its bank and its issuing area."""
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
