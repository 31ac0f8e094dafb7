"""Card personalization's pure rules: numbers from the slot, dates, vendor by area; a remake keeps its own."""

from __future__ import annotations

from datetime import date

from issuance.domain.identity import Sex
from issuance.domain.model import Vendor
from issuance.domain.numbers import card_identification_code, card_number, is_valid_card_number
from issuance.domain.personalization import (
    OrderedCard,
    chip_holder,
    personalize_card,
    valid_until,
    vendor_by_area,
)
from tests import factories

VENDORS = {"110105": "VENDOR-A", "310115": "VENDOR-B"}
NIGHT = date(2026, 11, 3)


def test_valid_until_is_the_day_before_the_tenth_anniversary() -> None:
    assert valid_until(date(2026, 3, 2)) == date(2036, 3, 1)
    assert valid_until(date(2028, 2, 29)) == date(2038, 2, 28)


def test_a_card_is_numbered_from_its_slot_dated_the_night_and_given_its_areas_vendor() -> None:
    card = personalize_card(OrderedCard("APP-1", 4242, "110105"), VENDORS, NIGHT)
    assert card.card_number == card_number(4242) and is_valid_card_number(card.card_number)
    assert card.card_identification_code == card_identification_code("110105", 4242)
    assert (card.sequence, card.issue_date, card.valid_until) == (4242, NIGHT, date(2036, 11, 2))
    assert (card.vendor_code, card.spec_version) == ("VENDOR-A", "3.00")


def test_the_same_slot_gives_the_same_card_on_every_run() -> None:
    ordered = OrderedCard("APP-1", 77, "310115")
    assert personalize_card(ordered, VENDORS, NIGHT) == personalize_card(ordered, VENDORS, NIGHT)


def test_an_area_without_a_vendor_is_numbered_but_has_no_vendor() -> None:
    assert personalize_card(OrderedCard("APP-1", 5, "650102"), VENDORS, NIGHT).vendor_code is None


def test_a_card_made_again_keeps_its_numbers_and_dates_and_takes_its_areas_vendor_now() -> None:
    earlier = date(2026, 10, 1)
    remade = OrderedCard("APP-1", 5, "310115", "OLDNUMBER", "C" * 32, 3, earlier, valid_until(earlier))
    card = personalize_card(remade, VENDORS, NIGHT)
    assert (card.card_number, card.card_identification_code, card.sequence) == ("OLDNUMBER", "C" * 32, 3)
    assert (card.issue_date, card.valid_until, card.vendor_code) == (earlier, date(2036, 9, 30), "VENDOR-B")


def test_vendor_by_area() -> None:
    vendors = {
        "B": Vendor("B", "b", frozenset({"310115"})),
        "A": Vendor("A", "a", frozenset({"110105", "650102"})),
    }
    assert vendor_by_area(vendors) == {"110105": "A", "650102": "A", "310115": "B"}


def test_chip_holder_reads_sex_and_birth_date_from_the_id_number() -> None:
    holder = chip_holder(factories.PUDONG_1980_ID)
    assert holder is not None
    assert (holder.sex, holder.birth_date) == (Sex.FEMALE, date(1980, 3, 15))
    assert chip_holder("not an id") is None


def test_the_stage_rate_is_cards_per_second_of_its_workers_time() -> None:
    from pipelines.transforms.personalize_cards import with_rate

    counters = {"personalize.cards": 900, "personalize.no_vendor": 100, "personalize.busy_ms": 500}
    assert with_rate(counters) == {"personalize.cards_per_s": 2000}
    assert with_rate({}) == {"personalize.cards_per_s": 0}
