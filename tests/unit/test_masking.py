"""Masked values never show the whole value, and show what the standards allow for the usual formats."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from issuance.domain.masking import mask_account, mask_id_number, mask_name, mask_phone


def test_usual_formats() -> None:
    assert mask_id_number("11010519800101123X") == "110*************3X"
    assert mask_name("张伟") == "张*"
    assert mask_name("欧阳娜娜") == "欧***"
    assert mask_account("6222020200112233445") == "622202*********3445"
    assert mask_account("6222020200112233") == "622202******2233"
    assert mask_phone("13800138000") == "138****8000"


def test_surrounding_whitespace_is_ignored() -> None:
    assert mask_id_number(" 11010519800101123X ") == "110*************3X"
    assert mask_name(" 张伟 ") == "张*"


@pytest.mark.parametrize("mask", [mask_id_number, mask_account, mask_phone, mask_name])
@pytest.mark.parametrize("value", ["", "1", "12", "1234", "12345", "123456789", "0123456789012345678901"])
def test_never_the_whole_value_and_length_kept(mask: Callable[[str], str], value: str) -> None:
    masked = mask(value)
    assert len(masked) == len(value)
    if value:
        assert masked != value
        assert masked.count("*") >= min(len(value), 4) or mask is mask_name


def test_a_one_character_name_is_all_stars() -> None:
    assert mask_name("张") == "*"
