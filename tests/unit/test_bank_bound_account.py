"""The simulated bank's account bound to an existing card: a valid number, the same for the same card."""

from __future__ import annotations

from consumers.bank_simulator import BOUND_ACCOUNT_BIN, bound_account
from issuance.domain.numbers import is_valid_bank_account


def test_a_bound_account_is_a_valid_account_number_of_the_stand_in_bin() -> None:
    assert is_valid_bank_account(bound_account("A1B2C3D4E"), BOUND_ACCOUNT_BIN)


def test_the_same_card_always_has_the_same_account_and_another_card_another() -> None:
    assert bound_account("A1B2C3D4E") == bound_account("A1B2C3D4E")
    assert bound_account("A1B2C3D4E") != bound_account("A1B2C3D4F")
