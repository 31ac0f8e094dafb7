"""Whether an application that passed verification has a valid signed savings agreement.

Two clocks: the branch system stamps `submitted_at`, the bank's signing system `signed_at`. An agreement
signed up to `CLOCK_TOLERANCE` (two minutes) before the submission is the same visit seen through two clocks,
not a mismatch. The window: an agreement is valid when signed by the end (23:59:59) of the thirtieth calendar
day after the submission day, both days counted in Asia/Shanghai, whatever offset the records carry; the
application expires on the first night whose business date is past that last day. (Calendar days, not working
days: the contract says "within 30 days", and no working-day practice applies to agreements.)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from functools import cache

from issuance.domain.business_dates import business_day
from issuance.domain.decision import normalize_reasons
from issuance.domain.model import Agreement, Application, Bank, Reason

AGREEMENT_WINDOW_DAYS = 30
CLOCK_TOLERANCE = timedelta(minutes=2)


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


def last_day(start: datetime, window_days: int = AGREEMENT_WINDOW_DAYS) -> date:
    """The last Asia/Shanghai day of a window that starts at `start`."""
    return business_day(start) + _days(window_days)


def window_closed(start: datetime, business_date: date, window_days: int = AGREEMENT_WINDOW_DAYS) -> bool:
    """True once the night's business date is past the window's last day (its SQL twin:
    `issuance.store.decisions_repo.WINDOW_CLOSED`)."""
    return business_date > last_day(start, window_days)


def agreement_problems(
    application: Application, agreement: Agreement, bank: Bank, window_days: int = AGREEMENT_WINDOW_DAYS
) -> list[Reason]:
    """Why this agreement is not valid for the application (empty when it is); `bank` is the application's."""
    problems: list[Reason] = []
    signed_at, submitted_at = agreement.signed_at, application.submitted_at
    if agreement.bank_code != application.bank_code or signed_at < submitted_at - CLOCK_TOLERANCE:
        problems.append(Reason.AGREEMENT_MISMATCH)
    if agreement.terms_version != bank.terms_version:
        problems.append(Reason.AGREEMENT_TERMS_OUTDATED)
    # Signed within a day of the exact instant: valid without working out the Asia/Shanghai days.
    if signed_at > submitted_at + _days(window_days - 1) and business_day(signed_at) > last_day(
        submitted_at, window_days
    ):
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
    every matched agreement's problems; else awaiting, or expired once business_date is past the window's
    last day.
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
    if window_closed(application.submitted_at, business_date, window_days):
        return AgreementOutcome(AgreementStatus.EXPIRED, reasons=(Reason.AGREEMENT_EXPIRED,))
    return AgreementOutcome(AgreementStatus.AWAITING)
