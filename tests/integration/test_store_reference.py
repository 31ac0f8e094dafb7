"""The pipeline's reads of reference data give back what the loader stored, decrypted, in bulk."""

from __future__ import annotations

from dataclasses import replace

from issuance.crypto import Vault
from issuance.domain.model import Person
from issuance.settings import Settings
from issuance.store.db import connect
from issuance.store.reference_load import load_reference
from issuance.store.reference_repo import load_catalog, lookup_cards, lookup_persons
from tests import factories as f

SECOND_ID = f.id_number(area_code=f.OTHER_AREA, sequence=456)
SECOND = Person(SECOND_ID, "李娜", insured=False, cards=(f.card(card_number="Z9Y8X7W6V"), f.card()))


def test_catalog_and_persons_round_trip(database_url: str, settings: Settings) -> None:
    vault = Vault.from_settings(settings)
    reference = f.reference(persons={f.ADULT_ID: f.person(), SECOND_ID: SECOND})
    with connect(database_url) as conn:
        load_reference(conn, vault, reference, actor="test", source="test")
        assert load_catalog(conn) == replace(reference, persons={})
        adult, second, absent = (vault.blind_index(i) for i in (f.ADULT_ID, SECOND_ID, f.GUARDIAN_ID))
        found = lookup_persons(conn, vault, [adult, second, absent])
        assert found == {adult: f.person(), second: replace(SECOND, cards=(f.card(), SECOND.cards[0]))}
        assert lookup_persons(conn, vault, []) == {}
        assert lookup_cards(conn, [f.CARD, "Z9Y8X7W6V", "NOSUCHONE"]) == {f.CARD: second, "Z9Y8X7W6V": second}
        assert lookup_cards(conn, []) == {}


def test_a_person_key_is_the_blind_index_of_the_normalized_id_number(
    database_url: str, settings: Settings
) -> None:
    vault = Vault.from_settings(settings)
    with connect(database_url) as conn:
        load_reference(conn, vault, f.reference(), actor="test", source="test")
        found = lookup_persons(conn, vault, [vault.blind_index(f" {f.ADULT_ID.lower()} ")])
    assert list(found.values()) == [f.person()]


def test_vendors_load_and_an_older_document_without_them_keeps_them(
    database_url: str, settings: Settings
) -> None:
    from tests.fixtures_personalization import vendor_reference

    vault = Vault.from_settings(settings)
    reference = vendor_reference()
    with connect(database_url) as conn:
        report = load_reference(conn, vault, reference, actor="test", source="test")
        assert report.vendors.inserted == 1
        assert load_catalog(conn).vendors == reference.vendors
        again = load_reference(conn, vault, f.reference(), actor="test", source="older")  # no vendors
        assert again.vendors.inserted == again.vendors.updated == 0
        assert load_catalog(conn).vendors == reference.vendors
