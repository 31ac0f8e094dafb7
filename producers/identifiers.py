"""Collision-free synthetic identifiers: resident ID numbers and registry card numbers, in constant memory.

A generator of a million people cannot remember every ID number it handed out, so each number is the image of
a counter under an affine permutation of the whole number space (area x birth day x sequence): distinct
counters give distinct numbers, and consecutive people still look unrelated.
"""

from __future__ import annotations

import math
import random
import re
import string
from datetime import date, timedelta
from functools import cache

from stdnum import numdb
from stdnum.iso7064 import mod_37_36

from issuance.domain.identity import check_character

CARD_ALPHABET = string.digits + string.ascii_uppercase
_SEQUENCES = 1000
_RETIRED = re.compile(r"^\[\d*-\d+\]")


@cache
def county_codes() -> tuple[str, ...]:
    """Current county-level GB/T 2260 codes of stdnum's list (no end year), sorted."""
    codes: list[str] = []
    for _length, province, _high, _props, counties in numdb.get("cn/loc").prefixes:
        for _clen, low, high, props, _children in counties:
            name = str(props.get("county", ""))
            if _RETIRED.match(name) or name == "县" or "辖" in name:
                continue
            codes.extend(f"{province}{n:04d}" for n in range(int(low), int(high) + 1) if n % 100)
    return tuple(sorted(codes))


def make_id_number(area_code: str, birth: str, sequence: int) -> str:
    """An ID number with a correct check character; `birth` is YYYYMMDD, not checked."""
    first17 = f"{area_code}{birth}{sequence:03d}"
    return first17 + check_character(first17)


def card_check_character(body: str) -> str:
    """The ISO 7064 MOD 37,36 check character over the alphabet 0-9A-Z."""
    return mod_37_36.calc_check_digit(body, alphabet=CARD_ALPHABET)


def _coprime_multiplier(rng: random.Random, modulus: int) -> int:
    """A multiplier coprime with the modulus, large enough to scatter consecutive counters."""
    while True:
        candidate = rng.randrange(modulus // 3, modulus) | 1
        if math.gcd(candidate, modulus) == 1:
            return candidate


class AffinePermutation:
    """x -> (a*x + b) mod m: a bijection of range(m) chosen by the random source."""

    def __init__(self, rng: random.Random, modulus: int) -> None:
        self.modulus = modulus
        self._a = _coprime_multiplier(rng, modulus)
        self._b = rng.randrange(modulus)
        self._next = 0

    def take(self) -> int:
        """The image of the next counter; every image is distinct."""
        if self._next >= self.modulus:
            raise OverflowError("identifier space exhausted")
        value = (self._a * self._next + self._b) % self.modulus
        self._next += 1
        return value


class IdNumberAllocator:
    """Hands out distinct valid ID numbers born within [first_birth, last_birth]."""

    def __init__(
        self, rng: random.Random, areas: tuple[str, ...], first_birth: date, last_birth: date
    ) -> None:
        self._areas = areas
        self._first = first_birth
        self._days = (last_birth - first_birth).days + 1
        self._perm = AffinePermutation(rng, len(areas) * self._days * _SEQUENCES)

    def take(self) -> tuple[str, date]:
        """A fresh ID number and its birth date."""
        value = self._perm.take()
        sequence, rest = value % _SEQUENCES, value // _SEQUENCES
        birth = self._first + timedelta(days=rest % self._days)
        return make_id_number(self._areas[rest // self._days], birth.strftime("%Y%m%d"), sequence), birth


class CardNumberAllocator:
    """Distinct 9-character card numbers whose body starts with a fixed letter (R: registry, U: unknown)."""

    def __init__(self, rng: random.Random, prefix: str) -> None:
        self._prefix = prefix
        self._perm = AffinePermutation(rng, len(CARD_ALPHABET) ** 7)

    def take(self) -> str:
        """A fresh card number with its check character."""
        value = self._perm.take()
        digits = []
        for _ in range(7):
            value, digit = divmod(value, len(CARD_ALPHABET))
            digits.append(CARD_ALPHABET[digit])
        body = self._prefix + "".join(reversed(digits))
        return body + card_check_character(body)
