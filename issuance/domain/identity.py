"""Resident ID numbers (GB 11643-1999): parse, validate, age.

Built from python-stdnum's parts (the MOD 11-2 check character formula and the GB/T 2260 area code list of
`stdnum.cn.ric`) but not from its `validate()`, which rejects an area code created after the birth year. The
area code is where the household was registered when the number was assigned, so 310115 (Pudong, 1992) is
right for people born in 1980. An area code is accepted when it appears in stdnum's list with any validity
period, or is one of the residence-permit codes of Hong Kong, Macau and Taiwan residents (810000, 820000,
830000: the permits carry 18-character numbers built by the same standard, and stdnum's list lacks 830000).

A lowercase check character `x` is the same number as `X`: `normalize_id_number` writes it the one way, and
parsing accepts either.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from functools import cache, lru_cache

from stdnum import numdb

EARLIEST_BIRTH_DATE = date(1900, 1, 1)
_DIGIT_CHARACTERS = "0123456789"
_CHECK_CHARACTERS = frozenset("0123456789X")
_EVEN = frozenset("02468")
RESIDENCE_PERMIT_AREAS = frozenset({"810000", "820000", "830000"})  # Hong Kong, Macau, Taiwan residents


class Sex(StrEnum):
    MALE = "MALE"
    FEMALE = "FEMALE"


class IdProblem(StrEnum):
    """Why an ID number is invalid, checked in this order."""

    FORMAT = "FORMAT"  # not 17 digits followed by a digit or "X" (or "x")
    CHECKSUM = "CHECKSUM"  # ISO 7064 MOD 11-2 check character wrong
    BIRTH_DATE = "BIRTH_DATE"  # not a real date, before 1900-01-01 or after the reference day
    AREA_CODE = "AREA_CODE"  # neither in stdnum.cn.ric's area code list nor a residence-permit code


@dataclass(frozen=True, slots=True)
class Identity:
    """What a valid ID number says about its holder."""

    area_code: str
    birth_date: date
    sex: Sex


@dataclass(frozen=True, slots=True)
class InvalidId:
    """A rejected ID number and the first rule it broke."""

    problem: IdProblem


_INVALID = {problem: InvalidId(problem) for problem in IdProblem}


@cache
def area_codes() -> frozenset[str]:
    """Every 6-digit area code in stdnum's GB/T 2260 list, read once per process."""
    codes: set[str] = set()
    for _length, province, _high, _props, counties in numdb.get("cn/loc").prefixes:
        for _clen, low, high, _cprops, _children in counties:
            codes.update(f"{province}{n:04d}" for n in range(int(low), int(high) + 1))
    return frozenset(codes | RESIDENCE_PERMIT_AREAS)


def normalize_id_number(number: str) -> str:
    """The number with a lowercase check character `x` written `X`; anything else unchanged."""
    return number[:17] + "X" if len(number) == 18 and number[17] == "x" else number


def check_character(body: str) -> str:
    """ISO 7064 MOD 11-2 check character of a 17-digit body (stdnum.cn.ric's formula, minus its cleaning)."""
    checksum = (1 - 2 * int(body, 13)) % 11
    return "X" if checksum == 10 else _DIGIT_CHARACTERS[checksum]


def parse_id_number(number: str, on: date | None = None) -> Identity | InvalidId:
    """Parse an ID number (a lowercase `x` check character counts as `X`); `on` rejects birth dates after
    that day."""
    number = normalize_id_number(number)
    body = number[:17]
    if len(number) != 18 or not (body.isascii() and body.isdigit()) or number[17] not in _CHECK_CHARACTERS:
        return _INVALID[IdProblem.FORMAT]
    if number[17] != check_character(body):
        return _INVALID[IdProblem.CHECKSUM]
    birth = _birth_date(number[6:14])
    if birth is None or (on is not None and birth > on):
        return _INVALID[IdProblem.BIRTH_DATE]
    area = number[:6]
    if area not in area_codes():
        return _INVALID[IdProblem.AREA_CODE]
    return Identity(area, birth, Sex.FEMALE if number[16] in _EVEN else Sex.MALE)


@lru_cache(maxsize=1 << 16)
def _birth_date(yyyymmdd: str) -> date | None:
    """The birth date if real and not before 1900 (cached: a million IDs share a few thousand dates)."""
    try:
        birth = date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:]))
    except ValueError:
        return None
    return birth if birth >= EARLIEST_BIRTH_DATE else None


def is_valid_id_number(number: str, on: date | None = None) -> bool:
    """True when `parse_id_number` accepts the number."""
    return isinstance(parse_id_number(number, on), Identity)


def age_on(birth_date: date, day: date) -> int:
    """Completed years on `day`; someone born on 29 February turns a year older on 1 March in common years."""
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))
