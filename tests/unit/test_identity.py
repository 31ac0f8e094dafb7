"""Resident ID numbers: check character, birth date, area code, age."""

from __future__ import annotations

from datetime import date

import pytest
from stdnum.cn import ric

from issuance.domain.identity import (
    Identity,
    IdProblem,
    InvalidId,
    Sex,
    age_on,
    area_codes,
    is_valid_id_number,
    normalize_id_number,
    parse_id_number,
)
from tests.factories import ADULT_ID, MINOR_ID, PUDONG_1980_ID, id_number


def test_parses_a_valid_number() -> None:
    assert parse_id_number(ADULT_ID) == Identity("110105", date(1980, 1, 1), Sex.MALE)
    assert parse_id_number(MINOR_ID) == Identity("310115", date(2015, 6, 1), Sex.FEMALE)


def test_known_vector_from_stdnum() -> None:
    assert is_valid_id_number("360426199101010071")


def test_area_code_newer_than_birth_year_is_accepted() -> None:
    assert not ric.is_valid(PUDONG_1980_ID)  # stdnum's own rule rejects it
    assert parse_id_number(PUDONG_1980_ID) == Identity("310115", date(1980, 3, 15), Sex.FEMALE)


def test_check_character_x() -> None:
    number = "44030420121130005X"
    assert isinstance(parse_id_number(number), Identity)
    assert parse_id_number(number[:-1] + "0") == InvalidId(IdProblem.CHECKSUM)


def test_lowercase_check_character_x_is_normalized() -> None:
    assert normalize_id_number("44030420121130005x") == "44030420121130005X"
    assert normalize_id_number("44030420121130005X") == "44030420121130005X"
    assert normalize_id_number("x4030420121130005x"[:-1]) == "x4030420121130005"  # only the check character
    assert parse_id_number("44030420121130005x") == parse_id_number("44030420121130005X")
    assert parse_id_number("11010519800101123x") == InvalidId(IdProblem.CHECKSUM)  # lowercase of a wrong X


@pytest.mark.parametrize("area", ["810000", "820000", "830000"])
def test_residence_permit_area_codes_are_valid(area: str) -> None:
    number = id_number(area_code=area, birth=date(1990, 2, 3))
    assert parse_id_number(number) == Identity(area, date(1990, 2, 3), Sex.MALE)
    assert area in area_codes()


@pytest.mark.parametrize("position", range(18))
def test_one_changed_character_is_detected(position: int) -> None:
    original = ADULT_ID[position]
    replacement = "X" if position == 17 else str((int(original) + 1) % 10)
    changed = ADULT_ID[:position] + replacement + ADULT_ID[position + 1 :]
    assert parse_id_number(changed) == InvalidId(IdProblem.CHECKSUM)


@pytest.mark.parametrize(
    "number",
    [
        "",
        "11010519800101123",
        "1101051980010112380",
        "1101051980010112X8",
        "A10105198001011238",
    ],
)
def test_malformed_numbers(number: str) -> None:
    assert parse_id_number(number) == InvalidId(IdProblem.FORMAT)


def test_birth_date_not_a_real_date() -> None:
    body = "11010519900229001"  # 1990 is not a leap year
    assert parse_id_number(body + ric.calc_check_digit(body + "0")) == InvalidId(IdProblem.BIRTH_DATE)


def test_birth_date_before_1900() -> None:
    assert parse_id_number(id_number(birth=date(1899, 12, 31))) == InvalidId(IdProblem.BIRTH_DATE)
    assert isinstance(parse_id_number(id_number(birth=date(1900, 1, 1))), Identity)


def test_birth_date_after_the_reference_day() -> None:
    number = id_number(birth=date(2026, 11, 2))
    assert parse_id_number(number, on=date(2026, 11, 1)) == InvalidId(IdProblem.BIRTH_DATE)
    assert isinstance(parse_id_number(number, on=date(2026, 11, 2)), Identity)


def test_unknown_area_code() -> None:
    assert "999999" not in area_codes()
    assert parse_id_number(id_number(area_code="999999")) == InvalidId(IdProblem.AREA_CODE)
    assert parse_id_number(id_number(area_code="119999")) == InvalidId(IdProblem.AREA_CODE)


def test_area_codes_include_retired_and_new_codes() -> None:
    codes = area_codes()
    assert {"110103", "110118", "310115", "110000"} <= codes  # 崇文区 (until 2010), 密云区 (since 2015)
    assert area_codes() is codes  # read once


def test_sex_from_the_sequence() -> None:
    assert parse_id_number(id_number(sequence=7)) == Identity("110105", date(1980, 1, 1), Sex.MALE)
    assert parse_id_number(id_number(sequence=8)) == Identity("110105", date(1980, 1, 1), Sex.FEMALE)


@pytest.mark.parametrize(
    ("birth", "day", "age"),
    [
        (date(2010, 11, 1), date(2026, 10, 31), 15),
        (date(2010, 11, 1), date(2026, 11, 1), 16),  # birthday on the day itself
        (date(2008, 2, 29), date(2024, 2, 28), 15),
        (date(2008, 2, 29), date(2024, 2, 29), 16),
        (date(2008, 2, 29), date(2025, 2, 28), 16),
        (date(2008, 2, 29), date(2026, 2, 28), 17),
        (date(2009, 2, 28), date(2025, 3, 1), 16),
        (date(2026, 11, 1), date(2026, 11, 1), 0),
    ],
)
def test_age_on(birth: date, day: date, age: int) -> None:
    assert age_on(birth, day) == age


def test_age_on_leap_day_birth_in_common_year() -> None:
    assert age_on(date(2008, 2, 29), date(2023, 2, 28)) == 14
    assert age_on(date(2008, 2, 29), date(2023, 3, 1)) == 15
