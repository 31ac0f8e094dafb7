"""`issuance branch simulate --date`: a hostile value is bad input (exit 2) naming the option, checked before
any server is reached."""

from __future__ import annotations

from datetime import date

import pytest

from cli.branch import _day
from issuance.errors import InputError


@pytest.mark.parametrize(
    "text", ["", "2026-13-40", "x\x1b[31m", "99999-01-01", "2026-03-02\x00", "1" * 10_000]
)
def test_a_hostile_date_is_bad_input_naming_the_option(text: str) -> None:
    with pytest.raises(InputError, match="--date") as refused:
        _day(text)
    assert len(str(refused.value)) < 100 and "\x1b" not in str(refused.value)  # bounded, escaped


def test_no_date_means_now_and_a_date_is_that_day() -> None:
    assert _day(None) is None
    assert _day("2026-03-02") == date(2026, 3, 2)
