"""Card number, card identification code and bank account number algorithms."""

from __future__ import annotations

import pytest
from stdnum import luhn
from stdnum.iso7064 import mod_37_36

from issuance.domain.numbers import (
    ALPHABET,
    MAX_CARD_SEQUENCE,
    bank_account_number,
    card_body,
    card_identification_code,
    card_number,
    is_valid_bank_account,
    is_valid_card_number,
)


def test_card_body_is_zero_padded_base_36() -> None:
    assert card_body(0) == "00000000"
    assert card_body(35) == "0000000Z"
    assert card_body(36) == "00000010"
    assert card_body(MAX_CARD_SEQUENCE) == "ZZZZZZZZ"


def test_card_body_is_injective_on_a_range() -> None:
    assert len({card_body(n) for n in range(0, 200_000, 7)}) == len(range(0, 200_000, 7))


@pytest.mark.parametrize("sequence", [-1, MAX_CARD_SEQUENCE + 1])
def test_card_sequence_out_of_range(sequence: int) -> None:
    with pytest.raises(ValueError, match="card sequence"):
        card_number(sequence)


def test_card_number_known_vectors() -> None:
    # ISO 7064 MOD 37,36 vector from python-stdnum's documentation, and our own bodies.
    assert mod_37_36.calc_check_digit("A12425GABC1234002") == "M"
    assert card_number(0) == "00000000Y"
    assert card_number(1) == "00000001W"
    assert card_number(1_000_000) == "0000LFLSA"
    assert card_number(123_456_789) == "0021I3V9R"
    assert all(is_valid_card_number(card_number(n)) for n in (0, 1, 35, 36, 1_000_000, MAX_CARD_SEQUENCE))


def test_card_number_shape() -> None:
    number = card_number(123_456_789)
    assert len(number) == 9
    assert set(number) <= set(ALPHABET)
    assert number[:8] == card_body(123_456_789)


@pytest.mark.parametrize("sequence", [0, 42, 987_654_321, MAX_CARD_SEQUENCE])
def test_one_changed_character_is_detected(sequence: int) -> None:
    number = card_number(sequence)
    for position in range(9):
        for char in ALPHABET:
            if char != number[position]:
                changed = number[:position] + char + number[position + 1 :]
                assert not is_valid_card_number(changed), changed


@pytest.mark.parametrize("number", ["", "00000000", "00000000YY", "0000000y0", "00000000-", "0000 000Y"])
def test_malformed_card_numbers(number: str) -> None:
    assert not is_valid_card_number(number)


def test_card_identification_code() -> None:
    code = card_identification_code("110105", 255)
    assert code == "110105D156000005" + "00000000000000FF"
    assert len(code) == 32
    assert card_identification_code("310115", 2**64 - 1).endswith("FFFFFFFFFFFFFFFF")


def test_card_identification_code_unique_per_sequence_whatever_the_area() -> None:
    tails = {card_identification_code(area, n)[16:] for n, area in enumerate(["110105", "310115"] * 500)}
    assert len(tails) == 1000


@pytest.mark.parametrize(
    ("area", "sequence"), [("11010", 1), ("11010A", 1), ("110105", -1), ("110105", 2**64)]
)
def test_card_identification_code_rejects_bad_input(area: str, sequence: int) -> None:
    with pytest.raises(ValueError):
        card_identification_code(area, sequence)


@pytest.mark.parametrize("bin_", ["622202", "6217000", "62148300"])
def test_bank_account_number(bin_: str) -> None:
    number = bank_account_number(bin_, 42)
    assert len(number) == 19
    assert number.startswith(bin_)
    assert int(number[len(bin_) : -1]) == 42
    assert luhn.is_valid(number)
    assert is_valid_bank_account(number, bin_)


def test_bank_account_known_vector() -> None:
    assert bank_account_number("622588", 42) == "6225880000000000424"
    assert luhn.calc_check_digit("7992739871") == "3"  # the textbook Luhn example


def test_bank_account_one_changed_digit_is_detected() -> None:
    number = bank_account_number("622202", 123_456)
    for position in range(19):
        for digit in "0123456789":
            if digit != number[position]:
                assert not is_valid_bank_account(number[:position] + digit + number[position + 1 :])


def test_bank_account_other_bin_or_shape_is_invalid() -> None:
    number = bank_account_number("622202", 7)
    assert not is_valid_bank_account(number, "621700")
    assert not is_valid_bank_account(number[:-1])
    assert not is_valid_bank_account(number[:-1] + "X")


@pytest.mark.parametrize(
    ("bin_", "sequence"), [("62220", 1), ("622020001", 1), ("62220A", 1), ("622202", -1)]
)
def test_bank_account_rejects_bad_input(bin_: str, sequence: int) -> None:
    with pytest.raises(ValueError):
        bank_account_number(bin_, sequence)


def test_bank_account_sequence_must_fit() -> None:
    assert bank_account_number("62148300", 10**10 - 1).startswith("62148300" + "9" * 10)
    with pytest.raises(ValueError, match="does not fit"):
        bank_account_number("62148300", 10**10)
