"""Agreement decision: valid, invalid (with reasons), awaiting, expired."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

from issuance.domain.agreement import (
    CLOCK_TOLERANCE,
    AgreementOutcome,
    AgreementStatus,
    agreement_problems,
    check_agreements,
)
from issuance.domain.model import Reason
from tests.factories import OTHER_BANK, SUBMITTED_AT, agreement, application, bank

DAY = SUBMITTED_AT.date()
APP = application()
BANK = bank()


def check(*agreements: object, business_date: date = DAY) -> AgreementOutcome:
    return check_agreements(APP, agreements, BANK, business_date)  # type: ignore[arg-type]


def rejected(*reasons: Reason) -> AgreementOutcome:
    return AgreementOutcome(AgreementStatus.REJECTED, reasons=reasons)


def test_valid_agreement_is_accepted() -> None:
    signed = agreement()
    assert check(signed) == AgreementOutcome(AgreementStatus.ACCEPTED, agreement=signed)


def test_signed_at_the_submission_instant_is_valid() -> None:
    assert check(agreement(signed_at=SUBMITTED_AT)).status is AgreementStatus.ACCEPTED


def test_signed_exactly_30_days_after_submission_is_valid() -> None:
    assert check(agreement(signed_at=SUBMITTED_AT + timedelta(days=30))).status is AgreementStatus.ACCEPTED


def test_signed_later_on_the_30th_day_is_valid() -> None:
    # SUBMITTED_AT is 10:00 +08:00; the window ends at 23:59:59 Asia/Shanghai on the 30th day.
    evening = agreement(signed_at=SUBMITTED_AT + timedelta(days=30, hours=13, minutes=59, seconds=59))
    assert check(evening).status is AgreementStatus.ACCEPTED


def test_signed_on_the_31st_day_is_expired() -> None:
    midnight = agreement(signed_at=SUBMITTED_AT + timedelta(days=30, hours=14))
    assert check(midnight) == rejected(Reason.AGREEMENT_EXPIRED)


def test_the_window_counts_asia_shanghai_days_whatever_the_offsets() -> None:
    # Submitted 2026-11-01 23:30 +08:00 (15:30 UTC, still 1 November): last day 1 December in Shanghai.
    late_submission = application(submitted_at=datetime(2026, 11, 1, 15, 30, tzinfo=UTC))
    on_last_day = agreement(signed_at=datetime(2026, 12, 1, 15, 59, 59, tzinfo=UTC))  # 23:59:59 +08:00
    day_after = agreement(signed_at=datetime(2026, 12, 1, 16, 0, tzinfo=UTC))  # 00:00 on 2 December
    assert check_agreements(late_submission, [on_last_day], BANK, DAY).status is AgreementStatus.ACCEPTED
    assert check_agreements(late_submission, [day_after], BANK, DAY) == rejected(Reason.AGREEMENT_EXPIRED)
    # Submitted 2026-11-01 20:00 -08:00 is 2 November 12:00 in Shanghai: last day 2 December.
    pacific = application(submitted_at=datetime(2026, 11, 1, 20, 0, tzinfo=timezone(timedelta(hours=-8))))
    assert check_agreements(pacific, [], BANK, date(2026, 12, 2)).status is AgreementStatus.AWAITING
    assert check_agreements(pacific, [], BANK, date(2026, 12, 3)).status is AgreementStatus.EXPIRED


def test_signed_before_submission_beyond_the_clock_tolerance_is_a_mismatch() -> None:
    early = agreement(signed_at=SUBMITTED_AT - CLOCK_TOLERANCE - timedelta(seconds=1))
    assert check(early) == rejected(Reason.AGREEMENT_MISMATCH)


def test_signed_seconds_before_submission_is_two_clocks_not_a_mismatch() -> None:
    assert check(agreement(signed_at=SUBMITTED_AT - timedelta(seconds=7))).status is AgreementStatus.ACCEPTED
    at_tolerance = agreement(signed_at=SUBMITTED_AT - CLOCK_TOLERANCE)
    assert check(at_tolerance).status is AgreementStatus.ACCEPTED


def test_instants_are_compared_across_offsets() -> None:
    # 02:30 UTC is 10:30 in +08:00, after the 10:00 +08:00 submission.
    utc = agreement(signed_at=datetime(2026, 11, 1, 2, 30, tzinfo=UTC))
    assert check(utc).status is AgreementStatus.ACCEPTED
    before = agreement(signed_at=datetime(2026, 11, 1, 1, 57, tzinfo=UTC))
    assert check(before) == rejected(Reason.AGREEMENT_MISMATCH)


def test_other_bank_is_a_mismatch() -> None:
    assert check(agreement(bank_code=OTHER_BANK)) == rejected(Reason.AGREEMENT_MISMATCH)


def test_outdated_terms() -> None:
    assert check(agreement(terms_version="2025.9")) == rejected(Reason.AGREEMENT_TERMS_OUTDATED)


def test_one_agreement_with_every_problem() -> None:
    bad = agreement(bank_code=OTHER_BANK, terms_version="old", signed_at=SUBMITTED_AT + timedelta(days=40))
    assert agreement_problems(APP, bad, BANK) == [
        Reason.AGREEMENT_MISMATCH,
        Reason.AGREEMENT_TERMS_OUTDATED,
        Reason.AGREEMENT_EXPIRED,
    ]


def test_reasons_are_the_union_over_invalid_agreements() -> None:
    a = agreement(agreement_id="AGR-1", terms_version="old")
    b = agreement(agreement_id="AGR-2", bank_code=OTHER_BANK)
    c = agreement(agreement_id="AGR-3", terms_version="old", bank_code=OTHER_BANK)
    assert check(a, b, c) == rejected(Reason.AGREEMENT_MISMATCH, Reason.AGREEMENT_TERMS_OUTDATED)


def test_any_valid_agreement_wins_over_invalid_ones() -> None:
    valid = agreement(agreement_id="AGR-9", signed_at=SUBMITTED_AT + timedelta(days=2))
    outcome = check(agreement(agreement_id="AGR-1", terms_version="old"), valid)
    assert outcome == AgreementOutcome(AgreementStatus.ACCEPTED, agreement=valid)


def test_earliest_valid_by_signed_at_then_agreement_id() -> None:
    later = agreement(agreement_id="AGR-0", signed_at=SUBMITTED_AT + timedelta(hours=5))
    first_b = agreement(agreement_id="AGR-B", signed_at=SUBMITTED_AT + timedelta(hours=2))
    first_a = agreement(agreement_id="AGR-A", signed_at=SUBMITTED_AT + timedelta(hours=2))
    assert check(later, first_b, first_a).agreement == first_a
    assert check(first_a, first_b, later).agreement == first_a


def test_agreements_of_other_applications_are_ignored() -> None:
    assert check(agreement(application_id="APP-OTHER")).status is AgreementStatus.AWAITING


def test_no_agreement_is_awaiting() -> None:
    assert check() == AgreementOutcome(AgreementStatus.AWAITING)


def test_no_agreement_awaits_until_day_29() -> None:
    assert check(business_date=DAY + timedelta(days=29)).status is AgreementStatus.AWAITING


def test_no_agreement_awaits_through_the_night_of_day_30_and_expires_after_it() -> None:
    assert check(business_date=DAY + timedelta(days=30)).status is AgreementStatus.AWAITING
    assert check(business_date=DAY + timedelta(days=31)) == AgreementOutcome(
        AgreementStatus.EXPIRED, reasons=(Reason.AGREEMENT_EXPIRED,)
    )
    assert check(business_date=DAY + timedelta(days=90)).status is AgreementStatus.EXPIRED


def test_invalid_agreement_rejects_even_inside_the_window() -> None:
    assert check(agreement(terms_version="old"), business_date=DAY) == rejected(
        Reason.AGREEMENT_TERMS_OUTDATED
    )


def test_window_is_configurable() -> None:
    signed = agreement(signed_at=SUBMITTED_AT + timedelta(days=10))
    assert check_agreements(APP, [signed], BANK, DAY, window_days=7) == rejected(Reason.AGREEMENT_EXPIRED)
    assert (
        check_agreements(APP, [], BANK, DAY + timedelta(days=8), window_days=7).status
        is AgreementStatus.EXPIRED
    )
