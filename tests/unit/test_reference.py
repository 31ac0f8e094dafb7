"""Reference-data document: strict parse with JSON-path problems, and round trip."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from issuance.domain.model import RegistryCardStatus, RegistryFinancialStatus
from issuance.domain.reference import MAX_PROBLEMS, ReferenceDataInvalid, parse_reference, reference_to_doc
from issuance.errors import InputError
from tests.factories import ADULT_ID, CARD, card, holder, reference

VALID = reference_to_doc(reference(persons={ADULT_ID: holder()}))


def doc(_base: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
    """A deep copy of the valid document (or `_base`); keys like `persons[0].cards[0].status` set (or
    delete with ...)."""
    out = copy.deepcopy(VALID if _base is None else _base)
    for dotted, value in changes.items():
        target: Any = out
        parts = dotted.replace("]", "").replace("[", ".").split(".")
        for part in parts[:-1]:
            target = target[int(part)] if part.isdigit() else target[part]
        last: Any = int(parts[-1]) if parts[-1].isdigit() else parts[-1]
        if value is ...:
            del target[last]
        else:
            target[last] = value
    return out


def problems(document: Any) -> list[str]:
    with pytest.raises(ReferenceDataInvalid) as caught:
        parse_reference(document)
    return list(caught.value.problems)


def test_round_trip() -> None:
    ref = reference(persons={ADULT_ID: holder()})
    assert parse_reference(reference_to_doc(ref)) == ref
    assert parse_reference(json.loads(json.dumps(VALID, ensure_ascii=False))) == ref


def test_parsed_values_are_typed() -> None:
    ref = parse_reference(VALID)
    assert ref.persons[ADULT_ID].cards == (card(),)
    assert ref.persons[ADULT_ID].cards[0].status is RegistryCardStatus.VALID
    assert ref.persons[ADULT_ID].cards[0].financial_status is RegistryFinancialStatus.INACTIVE
    assert ref.banks["ICBC"].area_codes == frozenset({"110105", "310115"})


def test_persons_and_cards_are_optional_and_unknown_fields_ignored() -> None:
    minimal = doc(persons=...)
    minimal["extra"] = 1
    minimal["banks"][0]["extra"] = "x"
    assert parse_reference(minimal).persons == {}
    assert parse_reference(doc(**{"persons[0].cards": ...})).persons[ADULT_ID].cards == ()


def test_approval_ref_may_be_null_or_missing() -> None:
    assert (
        parse_reference(doc(**{"issuing_areas[0].approval_ref": ...})).issuing_areas["110105"].approval_ref
        is None
    )


def test_error_is_an_input_error_naming_the_path() -> None:
    with pytest.raises(
        InputError, match=r"persons\[0\]\.cards\[0\]\.status: must be one of VALID, LOST, CANCELLED"
    ):
        parse_reference(doc(**{"persons[0].cards[0].status": "BROKEN"}))


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"issuing_areas": ...}, "issuing_areas: is required"),
        ({"banks": {}}, "banks: must be a list"),
        ({"branches[0]": "BR"}, "branches[0]: must be an object"),
        ({"issuing_areas[0].area_code": "11010"}, "issuing_areas[0].area_code: must be 6 digits"),
        ({"issuing_areas[0].area_code": 110105}, "issuing_areas[0].area_code: must be a string"),
        ({"issuing_areas[1].name": ""}, "issuing_areas[1].name: must not be empty"),
        ({"issuing_areas[0].approved": "yes"}, "issuing_areas[0].approved: must be true or false"),
        ({"issuing_areas[0].approved": ...}, "issuing_areas[0].approved: is required"),
        ({"issuing_areas[0].approval_ref": 7}, "issuing_areas[0].approval_ref: must be a string or null"),
        ({"banks[0].bin": "62220"}, "banks[0].bin: must be 6 to 8 digits"),
        ({"banks[0].bin": "622202001"}, "banks[0].bin: must be 6 to 8 digits"),
        ({"banks[0].terms_version": ...}, "banks[0].terms_version: is required"),
        ({"banks[0].area_codes[0]": "ABCDEF"}, "banks[0].area_codes[0]: must be 6 digits"),
        ({"banks[0].area_codes[0]": "120101"}, "banks[0].area_codes[0]: unknown issuing area '120101'"),
        ({"banks[0].area_codes": "110105"}, "banks[0].area_codes: must be a list"),
        ({"branches[0].bank_code": "ABC"}, "branches[0].bank_code: unknown bank 'ABC'"),
        ({"branches[1].area_code": "120101"}, "branches[1].area_code: unknown issuing area '120101'"),
        (
            {"persons[0].id_number": "11010519800101123x"},
            "persons[0].id_number: must be 17 digits followed by a",
        ),
        ({"persons[0].insured": 1}, "persons[0].insured: must be true or false"),
        ({"persons[0].name": None}, "persons[0].name: must be a string"),
        (
            {"persons[0].cards[0].financial_status": "OPEN"},
            "persons[0].cards[0].financial_status: must be one of",
        ),
        ({"persons[0].cards[0].card_number": ...}, "persons[0].cards[0].card_number: is required"),
    ],
)
def test_problem_names_its_path(change: dict[str, Any], problem: str) -> None:
    found = problems(doc(**change))
    assert any(p.startswith(problem) for p in found), found


def test_document_must_be_an_object() -> None:
    assert problems([]) == ["(document): must be an object"]


def test_duplicate_keys() -> None:
    document = copy.deepcopy(VALID)
    document["issuing_areas"].append(dict(document["issuing_areas"][0]))
    document["banks"].append({**document["banks"][0], "bin": "999999"})
    document["branches"].append(dict(document["branches"][0]))
    document["persons"].append({**document["persons"][0], "cards": []})
    document["persons"].append({**document["persons"][0], "id_number": "310115198003150020"})
    assert problems(document) == [
        "issuing_areas[3].area_code: duplicate '110105' (first at issuing_areas[0].area_code)",
        "banks[2].bank_code: duplicate 'ICBC' (first at banks[0].bank_code)",
        "branches[2].branch_code: duplicate 'BR-110105-001' (first at branches[0].branch_code)",
        f"persons[1].id_number: duplicate '{ADULT_ID}'",
        f"persons[2].cards[0].card_number: duplicate '{CARD}'",
    ]


def test_duplicate_and_overlapping_bins() -> None:
    assert problems(doc(**{"banks[1].bin": "622202"})) == [
        "banks[1].bin: duplicate '622202' (first at banks[0].bin)"
    ]
    assert problems(doc(**{"banks[1].bin": "62220212"})) == [
        "banks[1].bin: starts with the BIN of banks[0] (622202)"
    ]


def test_collects_every_problem_up_to_the_limit() -> None:
    document = copy.deepcopy(VALID)
    document["persons"] = [{"id_number": "bad", "name": "x", "insured": True}] * (MAX_PROBLEMS + 5)
    with pytest.raises(ReferenceDataInvalid) as caught:
        parse_reference(document)
    assert len(caught.value.problems) == MAX_PROBLEMS
    assert caught.value.total == MAX_PROBLEMS + 5
    assert caught.value.problems[-1].startswith(f"persons[{MAX_PROBLEMS - 1}].id_number:")
    assert str(caught.value).endswith("... and 5 more")


def test_several_problems_in_one_record() -> None:
    found = problems(doc(**{"branches[0]": {"branch_code": "B"}}))
    assert found == [
        "branches[0].bank_code: is required",
        "branches[0].area_code: is required",
        "branches[0].name: is required",
    ]


VENDORS = doc(
    vendors=[
        {"vendor_code": "VENDOR-A", "name": "华北智能卡制造中心", "area_codes": ["110105"]},
        {"vendor_code": "VENDOR-B", "name": "华东智能卡制造中心", "area_codes": ["310115", "650102"]},
    ]
)


def test_vendors_are_parsed_and_round_trip() -> None:
    ref = parse_reference(VENDORS)
    assert ref.vendors["VENDOR-B"].area_codes == frozenset({"310115", "650102"})
    assert parse_reference(reference_to_doc(ref)) == ref


def test_a_document_without_vendors_stays_loadable() -> None:
    assert parse_reference(doc(vendors=...)).vendors == {}


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"vendors[0].area_codes[0]": "999999"}, "vendors[0].area_codes[0]: unknown issuing area '999999'"),
        (
            {"vendors[1].area_codes[0]": "110105"},
            "vendors[1].area_codes: issuing area '110105' is already made by vendors[0]",
        ),
        (
            {"vendors[0].vendor_code": "a/b"},
            "vendors[0].vendor_code: must be 1 to 16 capital letters, digits, - or _",
        ),
        (
            {"vendors[1].vendor_code": "VENDOR-A"},
            "vendors[1].vendor_code: duplicate 'VENDOR-A' (first at vendors[0].vendor_code)",
        ),
        ({"vendors[0].name": ...}, "vendors[0].name: is required"),
        ({"vendors": {}}, "vendors: must be a list"),
    ],
)
def test_vendor_problems_name_their_path(change: dict[str, Any], problem: str) -> None:
    assert problem in problems(doc(VENDORS, **change))
