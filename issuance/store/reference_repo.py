"""Reads of reference data for the nightly pipeline: the catalog whole, persons and cards in bulk by key."""

from __future__ import annotations

from collections.abc import Collection

import psycopg
from psycopg.rows import TupleRow

from issuance.crypto import Vault
from issuance.domain.lifecycle import FinancialStatus, Trigger, starts
from issuance.domain.model import (
    ApplicationType,
    Bank,
    Branch,
    ExistingCard,
    IssuingArea,
    Person,
    ReferenceData,
    RegistryCardStatus,
    RegistryFinancialStatus,
    Vendor,
)

# The account states an activation may start from (the bank opened it; nobody switched it on yet), and a
# refused account, which leaves the card free.
ACTIVATABLE = [
    *starts(Trigger.ACCEPTED, ApplicationType.FINANCIAL_ACTIVATION, "financial"),
    FinancialStatus.REFUSED.value,
]


def load_catalog(conn: psycopg.Connection[TupleRow]) -> ReferenceData:
    """Issuing areas, banks, branches and card vendors (persons left empty: look them up with
    lookup_persons)."""
    areas = {
        str(code): IssuingArea(str(code), str(name), bool(approved), approval_ref)
        for code, name, approved, approval_ref in conn.execute(
            "SELECT area_code, name, approved, approval_ref FROM issuing_areas"
        )
    }
    banks = {
        str(code): Bank(str(code), str(name), str(bin_), str(terms), frozenset(area_codes))
        for code, name, bin_, terms, area_codes in conn.execute(
            "SELECT bank_code, name, bin, terms_version, area_codes FROM banks"
        )
    }
    branches = {
        str(code): Branch(str(code), str(bank), str(area), str(name))
        for code, bank, area, name in conn.execute(
            "SELECT branch_code, bank_code, area_code, name FROM branches"
        )
    }
    vendors = {
        str(code): Vendor(str(code), str(name), frozenset(area_codes))
        for code, name, area_codes in conn.execute("SELECT vendor_code, name, area_codes FROM vendors")
    }
    return ReferenceData(areas, banks, branches, {}, vendors)


def lookup_persons(
    conn: psycopg.Connection[TupleRow],
    vault: Vault,
    person_keys: Collection[bytes],
    own_applications: Collection[str] = (),
) -> dict[bytes, Person]:
    """The registry persons (decrypted, with their cards) among `person_keys`, by person key.

    Activation is keyed by the card: a card whose account this system knows in a state no activation starts
    from (active, frozen, closed; still requested by an application of an earlier version) counts as
    financially ACTIVE whatever the registry says, so its savings function is never switched on twice. An
    account the bank opened and nobody activated yet (OPENED) or refused leaves the card activatable. The
    accounts of `own_applications` do not count (a retried request is not blocked by its own account)."""
    if not person_keys:
        return {}
    keys = list(person_keys)
    cards: dict[bytes, list[ExistingCard]] = {}
    for card_number, key, bank_code, status, financial in conn.execute(
        "SELECT c.card_number, c.person_key, c.bank_code, c.status, CASE WHEN EXISTS (SELECT 1"
        "  FROM bank_accounts b WHERE b.card_number = c.card_number AND b.status <> ALL(%b)"
        "  AND b.application_id <> ALL(%b)) THEN %b ELSE c.financial_status END"
        " FROM person_cards c WHERE c.person_key = ANY(%b) ORDER BY c.card_number",
        (ACTIVATABLE, list(own_applications), RegistryFinancialStatus.ACTIVE.value, keys),
        binary=True,
    ):
        cards.setdefault(bytes(key), []).append(
            ExistingCard(
                str(card_number),
                str(bank_code),
                RegistryCardStatus(status),
                RegistryFinancialStatus(financial),
            )
        )
    persons: dict[bytes, Person] = {}
    for key, id_enc, name_enc, insured in conn.execute(
        "SELECT person_key, id_number_enc, name_enc, insured FROM persons WHERE person_key = ANY(%b)",
        (keys,),
        binary=True,  # keys and envelopes as raw bytes, not hex text
    ):
        key = bytes(key)
        persons[key] = Person(
            vault.decrypt(id_enc), vault.decrypt(name_enc), bool(insured), tuple(cards.get(key, ()))
        )
    return persons


def lookup_cards(conn: psycopg.Connection[TupleRow], card_numbers: Collection[str]) -> dict[str, bytes]:
    """The registry cards among `card_numbers`: card number -> the holder's person key."""
    if not card_numbers:
        return {}
    rows = conn.execute(
        "SELECT card_number, person_key FROM person_cards WHERE card_number = ANY(%b)",
        (list(card_numbers),),
        binary=True,
    )
    return {str(number): bytes(key) for number, key in rows}
