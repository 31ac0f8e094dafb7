"""Whether an application that passed verification has a valid signed savings agreement."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from functools import cache

from issuance.domain.decision import normalize_reasons
from issuance.domain.model import Agreement, Application, Bank, Reason

AGREEMENT_WINDOW_DAYS = 30


class AgreementStatus(StrEnum):
    ACCEPTED = "ACCEPTED"  # a valid agreement: the application goes on
    REJECTED = "REJECTED"  # only invalid agreements: rejected with their reasons
    AWAITING = "AWAITING"  # no agreement yet, still inside the window
    EXPIRED = "EXPIRED"  # no agreement and the window has passed: rejected AGREEMENT_EXPIRED


@dataclass(frozen=True, slots=True)
class AgreementOutcome:
    status: AgreementStatus
    agreement: Agreement | None = None  # the chosen agreement when ACCEPTED
    reasons: tuple[Reason, ...] = ()  # sorted by code when REJECTED or EXPIRED


@cache
def _days(days: int) -> timedelta:
    return timedelta(days=days)  # a night checks one window a hundred thousand times


def agreement_problems(
    application: Application, agreement: Agreement, bank: Bank, window_days: int = AGREEMENT_WINDOW_DAYS
) -> list[Reason]:
    """Why this agreement is not valid for the application (empty when it is); `bank` is the application's."""
    problems: list[Reason] = []
    if agreement.bank_code != application.bank_code or agreement.signed_at < application.submitted_at:
        problems.append(Reason.AGREEMENT_MISMATCH)
    if agreement.terms_version != bank.terms_version:
        problems.append(Reason.AGREEMENT_TERMS_OUTDATED)
    if agreement.signed_at > application.submitted_at + _days(window_days):
        problems.append(Reason.AGREEMENT_EXPIRED)
    return problems


def check_agreements(
    application: Application,
    agreements: Iterable[Agreement],
    bank: Bank,
    business_date: date,
    window_days: int = AGREEMENT_WINDOW_DAYS,
) -> AgreementOutcome:
    """Decide on the application's agreements (those naming another application_id are ignored).

    Accepted with the earliest valid agreement by (signed_at, agreement_id); else rejected with the union of
    every matched agreement's problems; else awaiting, or expired once business_date >= submission day +
    window.
    """
    matched = sorted(
        (a for a in agreements if a.application_id == application.application_id),
        key=lambda a: (a.signed_at, a.agreement_id),
    )
    problems: list[Reason] = []
    for agreement in matched:
        found = agreement_problems(application, agreement, bank, window_days)
        if not found:
            return AgreementOutcome(AgreementStatus.ACCEPTED, agreement=agreement)
        problems.extend(found)
    if problems:
        return AgreementOutcome(AgreementStatus.REJECTED, reasons=tuple(normalize_reasons(problems)))
    if business_date >= application.submitted_at.date() + _days(window_days):
        return AgreementOutcome(AgreementStatus.EXPIRED, reasons=(Reason.AGREEMENT_EXPIRED,))
    return AgreementOutcome(AgreementStatus.AWAITING)
