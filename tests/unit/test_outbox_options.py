"""`issuance outbox republish` time options: hostile values are bad input (exit 2), never a crash."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cli.outbox import _instant
from issuance.errors import InputError


@pytest.mark.parametrize(
    "value",
    ["", "\x00", "yesterday", "2026-13-01T00:00:00+08:00", "9999-99-99", "2026-11-29\x1b[31m", "9" * 10_000],
)
def test_a_time_that_is_not_one_is_bad_input_naming_the_option(value: str) -> None:
    with pytest.raises(InputError, match="--published-since"):
        _instant("--published-since", value)


def test_a_time_without_its_offset_is_refused() -> None:
    with pytest.raises(InputError, match="needs a UTC offset"):
        _instant("--published-until", "2026-11-29T22:00:00")


def test_a_time_with_its_offset_is_read() -> None:
    read = _instant("--published-since", "2026-11-29T22:00:00+00:00")
    assert read == datetime(2026, 11, 29, 22, tzinfo=UTC)
    assert _instant("--published-since", None) is None
