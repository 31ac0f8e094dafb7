"""Duplicate resolution among one person's verified applications."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from issuance.domain.duplicates import DuplicateResolution, resolve_duplicates
from tests.factories import SUBMITTED_AT, application

FIRST = application(application_id="APP-1", submitted_at=SUBMITTED_AT)
SECOND = application(application_id="APP-2", submitted_at=SUBMITTED_AT + timedelta(minutes=1))
THIRD = application(application_id="APP-3", submitted_at=SUBMITTED_AT + timedelta(days=1))


def test_single_application_goes_on() -> None:
    assert resolve_duplicates([FIRST], open_elsewhere=False) == DuplicateResolution(FIRST, ())


def test_earliest_goes_on_whatever_the_input_order() -> None:
    expected = DuplicateResolution(FIRST, (SECOND, THIRD))
    assert resolve_duplicates([THIRD, FIRST, SECOND], open_elsewhere=False) == expected
    assert resolve_duplicates([SECOND, THIRD, FIRST], open_elsewhere=False) == expected


def test_tie_on_submitted_at_goes_to_the_smallest_application_id() -> None:
    b = application(application_id="APP-B")
    a = application(application_id="APP-A")
    assert resolve_duplicates([b, a], open_elsewhere=False) == DuplicateResolution(a, (b,))


def test_same_instant_in_different_offsets_is_a_tie() -> None:
    utc = application(application_id="APP-A", submitted_at=SUBMITTED_AT.astimezone(UTC))
    cst = application(application_id="APP-B")
    assert resolve_duplicates([cst, utc], open_elsewhere=False).kept == utc


def test_earlier_instant_wins_even_if_its_local_time_is_later() -> None:
    # 09:00 UTC is 17:00 in +08:00; 12:00 +08:00 is earlier.
    utc = application(application_id="APP-A", submitted_at=datetime(2026, 11, 1, 9, 0, tzinfo=UTC))
    cst = application(application_id="APP-B", submitted_at=SUBMITTED_AT.replace(hour=12))
    assert resolve_duplicates([utc, cst], open_elsewhere=False) == DuplicateResolution(cst, (utc,))


def test_open_application_from_an_earlier_run_goes_on() -> None:
    assert resolve_duplicates([SECOND, FIRST], open_elsewhere=True) == DuplicateResolution(
        None, (FIRST, SECOND)
    )


def test_nothing_to_resolve() -> None:
    assert resolve_duplicates([], open_elsewhere=False) == DuplicateResolution(None, ())
    assert resolve_duplicates(iter([FIRST]), open_elsewhere=False).kept == FIRST
