"""The simulated bank's account bound to an existing card: a valid number of the bank's own BIN (the bureau
checks an activated account against the bank's BIN), the same for the same card, out of the range the bank's
own openings use."""

from __future__ import annotations

from consumers.bank_simulator import bound_account
from issuance.domain.numbers import bank_account_number, is_valid_assigned_account, is_valid_bank_account


def test_a_bound_account_is_a_valid_account_number_of_the_banks_bin() -> None:
    for bin_ in ("622202", "6217000", "62284800"):
        assert is_valid_bank_account(bound_account(bin_, "A1B2C3D4E"), bin_)
        assert is_valid_assigned_account(bound_account(bin_, "A1B2C3D4E"), bin_)


def test_the_same_card_always_has_the_same_account_and_another_card_another() -> None:
    assert bound_account("622202", "A1B2C3D4E") == bound_account("622202", "A1B2C3D4E")
    assert bound_account("622202", "A1B2C3D4E") != bound_account("622202", "A1B2C3D4F")


def test_a_bound_account_is_above_the_sequences_the_banks_openings_count_up_through() -> None:
    half = bank_account_number("622202", 5 * 10**11)
    assert all(bound_account("622202", f"A1B2C3D4{c}") >= half for c in "0123456789")
