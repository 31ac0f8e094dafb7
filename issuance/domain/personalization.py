"""Card personalization once the bank has opened the account: the numbers, dates and vendor of a card.

A card is personalized by the first night after its account is OPENED (the lifecycle's CARD_PERSONALIZED).
Its numbers come from the slot its application was given when its record was planned: `sequence = slot`, the
card number and the card identification code derived from it (`issuance.domain.numbers`). A slot is unique
system-wide and fixed by the stored plan, so a re-run computes the same numbers. A card the vendor could not
make goes back to ORDERED and is personalized again with the numbers and dates it already carries (the same
card, made again); only its vendor is chosen again, by its area.

Everything here is pure: the Beam stage calls it per card, the final transaction applies the result.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from issuance.domain.identity import Identity, parse_id_number
from issuance.domain.model import Vendor
from issuance.domain.numbers import card_identification_code, card_number

SPEC_VERSION = "3.00"
VALIDITY_YEARS = 10


def valid_until(issued: date) -> date:
    """Ten years of validity: the day before the tenth anniversary (issued 29 February: until 28 February)."""
    try:
        anniversary = issued.replace(year=issued.year + VALIDITY_YEARS)
    except ValueError:
        anniversary = issued.replace(year=issued.year + VALIDITY_YEARS, month=3, day=1)
    return anniversary - timedelta(days=1)


def vendor_by_area(vendors: Mapping[str, Vendor]) -> dict[str, str]:
    """Area code -> the vendor that makes its cards (the reference data names at most one per area)."""
    return {
        area: v.vendor_code
        for v in sorted(vendors.values(), key=lambda v: v.vendor_code)
        for area in v.area_codes
    }


@dataclass(frozen=True, slots=True)
class OrderedCard:
    """A card ORDERED whose account is OPENED: what its personalization needs (numbers when it has some)."""

    application_id: str
    slot: int
    area_code: str
    card_number: str | None = None  # set when it was personalized before (a remake keeps them)
    card_identification_code: str | None = None
    sequence: int | None = None
    issue_date: date | None = None
    valid_until: date | None = None


@dataclass(frozen=True, slots=True)
class PersonalizedCard:
    """The card as it goes into its vendor's file; `vendor_code` None: its area has no vendor, it waits."""

    application_id: str
    card_number: str
    card_identification_code: str
    sequence: int
    issue_date: date
    valid_until: date
    vendor_code: str | None
    spec_version: str = SPEC_VERSION


def personalize_card(card: OrderedCard, vendors: Mapping[str, str], business_date: date) -> PersonalizedCard:
    """The card's numbers from its slot (or the ones it carries), dated the business date, and its vendor."""
    vendor = vendors.get(card.area_code)
    if card.card_number is not None and card.card_identification_code is not None:
        issued = card.issue_date or business_date
        return PersonalizedCard(
            card.application_id,
            card.card_number,
            card.card_identification_code,
            card.sequence if card.sequence is not None else card.slot,
            issued,
            card.valid_until or valid_until(issued),
            vendor,
        )
    return PersonalizedCard(
        card.application_id,
        card_number(card.slot),
        card_identification_code(card.area_code, card.slot),
        card.slot,
        business_date,
        valid_until(business_date),
        vendor,
    )


def chip_holder(id_number: str) -> Identity | None:
    """Sex and birth date for the chip and the card face, read from the holder's ID number (None when it
    cannot be read: verification accepted it, so only data damaged since would do that)."""
    parsed = parse_id_number(id_number)
    return parsed if isinstance(parsed, Identity) else None
