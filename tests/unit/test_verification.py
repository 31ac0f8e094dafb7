"""Verification rules: each test flips one thing of a valid application."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from issuance.domain.model import (
    Application,
    ApplicationType,
    Material,
    Person,
    Reason,
    ReferenceData,
    RegistryCardStatus,
    RegistryFinancialStatus,
)
from issuance.domain.verification import verify
from tests.factories import (
    ADULT_ID,
    BANK,
    BRANCH,
    GUARDIAN_ID,
    MINOR_ID,
    OTHER_AREA,
    OTHER_BANK,
    PUDONG_1980_ID,
    SUBMITTED_AT,
    UNAPPROVED_AREA,
    activation,
    application,
    bank,
    card,
    holder,
    id_number,
    person,
    reference,
)
from tests.factories import catalog as make_catalog

CATALOG = reference()
BAD_CHECKSUM_ID = ADULT_ID[:-1] + "0"


def run(
    app: Application,
    who: Person | None = None,
    catalog: ReferenceData = CATALOG,
    card_registered: bool = False,
    issued_card_holder: bool = False,
    guardian: Person | None = None,
) -> list[Reason]:
    """Verify against `person()` and, when the application names one, a registered guardian."""
    if guardian is None and app.guardian_id_number:
        guardian = person(id_number=app.guardian_id_number, name="张建国")
    return verify(
        app, who if who is not None else person(), catalog, card_registered, issued_card_holder, guardian
    )


def test_valid_new_card_passes() -> None:
    assert run(application()) == []


def test_valid_activation_passes() -> None:
    assert run(activation(), holder(), card_registered=True) == []


def test_pudong_born_before_1992_passes() -> None:
    app = application(id_number=PUDONG_1980_ID)
    assert run(app, person(id_number=PUDONG_1980_ID)) == []


# Rule 1


@pytest.mark.parametrize(
    "bad_id",
    [
        BAD_CHECKSUM_ID,  # check character
        id_number(birth=date(2026, 11, 2)),  # born after the submission day
        id_number(birth=date(1899, 12, 31)),  # before 1900
        id_number(area_code="999999"),  # unknown area code
        "11010519800101123",  # shape
    ],
)
def test_id_number_invalid(bad_id: str) -> None:
    assert Reason.ID_NUMBER_INVALID in run(application(id_number=bad_id))


@pytest.mark.parametrize(
    ("bad_id", "detail"),
    [
        (BAD_CHECKSUM_ID, Reason.ID_NUMBER_CHECKSUM),
        (id_number(birth=date(2026, 11, 2)), Reason.ID_NUMBER_BIRTH_DATE),
        (id_number(birth=date(1899, 12, 31)), Reason.ID_NUMBER_BIRTH_DATE),
        (id_number(area_code="999999"), Reason.ID_NUMBER_AREA_CODE),
        ("11010519800101123", Reason.ID_NUMBER_FORMAT),
    ],
)
def test_id_number_invalid_names_the_problem(bad_id: str, detail: Reason) -> None:
    assert run(application(id_number=bad_id)) == sorted([Reason.ID_NUMBER_INVALID, detail])


@pytest.mark.parametrize("area", ["810000", "820000", "830000"])
def test_residence_permit_numbers_of_hong_kong_macau_and_taiwan_residents_pass(area: str) -> None:
    number = id_number(area_code=area, birth=date(1985, 7, 1))
    assert run(application(id_number=number), person(id_number=number)) == []


def test_lowercase_x_check_character_is_the_same_number() -> None:
    number = "44030420121130005X"
    adult = "11010519491231002X"
    assert run(application(id_number=adult.lower()), person(id_number=adult)) == []
    assert (
        run(application(id_number=number.lower(), guardian_id_number=GUARDIAN_ID), person(id_number=number))
        == []
    )


def test_id_number_invalid_skips_person_checks() -> None:
    stranger = person(name="李娜", insured=False, cards=(card(),))
    invalid = [Reason.ID_NUMBER_CHECKSUM, Reason.ID_NUMBER_INVALID]
    assert run(application(id_number=BAD_CHECKSUM_ID), stranger) == invalid
    assert verify(application(id_number=BAD_CHECKSUM_ID), None, CATALOG, False) == invalid
    assert run(activation(id_number=BAD_CHECKSUM_ID, card_number=None), holder()) == invalid


def test_id_number_invalid_skips_the_guardian_check() -> None:
    minor_bad = MINOR_ID[:-1] + ("1" if MINOR_ID[-1] != "1" else "2")
    assert run(application(id_number=minor_bad)) == [Reason.ID_NUMBER_CHECKSUM, Reason.ID_NUMBER_INVALID]


def test_id_number_invalid_still_checks_materials_and_branch() -> None:
    app = application(id_number=BAD_CHECKSUM_ID, materials=(), branch_code="NOPE")
    assert run(app) == [
        Reason.BRANCH_UNKNOWN,
        Reason.ID_NUMBER_CHECKSUM,
        Reason.ID_NUMBER_INVALID,
        Reason.MATERIALS_MISSING,
        Reason.MISSING_RESIDENT_ID_CARD,
    ]


def test_id_number_invalid_accepts_either_ages_materials() -> None:
    assert run(application(id_number=BAD_CHECKSUM_ID, materials=(Material.HOUSEHOLD_REGISTER,))) == [
        Reason.ID_NUMBER_CHECKSUM,
        Reason.ID_NUMBER_INVALID,
    ]


def test_born_on_the_submission_day_is_valid() -> None:
    newborn = id_number(birth=SUBMITTED_AT.date())
    app = application(id_number=newborn, guardian_id_number=GUARDIAN_ID)
    assert run(app, person(id_number=newborn)) == []


# Rule 2


def test_person_not_found() -> None:
    assert verify(application(), None, CATALOG, False) == [Reason.PERSON_NOT_FOUND]


def test_person_not_found_skips_name_insured_and_card_checks() -> None:
    assert verify(application(name="李娜"), None, CATALOG, False, issued_card_holder=True) == [
        Reason.PERSON_NOT_FOUND
    ]
    assert verify(activation(card_number=None), None, CATALOG, True) == [Reason.PERSON_NOT_FOUND]


def test_person_not_found_still_checks_the_guardian() -> None:
    assert verify(application(id_number=MINOR_ID), None, CATALOG, False) == [
        Reason.GUARDIAN_REQUIRED,
        Reason.PERSON_NOT_FOUND,
    ]


# Rule 3


def test_name_mismatch() -> None:
    assert run(application(name="张玮")) == [Reason.NAME_MISMATCH]


def test_name_compared_after_stripping_whitespace() -> None:
    assert run(application(name=" 张伟\t")) == []
    assert run(application(), person(name="张伟 ")) == []


@pytest.mark.parametrize("dot", ["\u00b7", "\u2022", "\u30fb", "\uff65", "\uff0e", "\u2027", ".", " \u00b7 "])
def test_minority_names_match_however_the_dot_was_typed(dot: str) -> None:
    registered = person(name="买买提·艾力")
    assert run(application(name=f"买买提{dot}艾力"), registered) == []
    assert run(application(name="买买提·艾力"), person(name=f"买买提{dot}艾力")) == []


def test_full_width_forms_match_their_plain_forms() -> None:
    assert run(application(name="ＡＢＣ张"), person(name="ABC张")) == []


def test_a_dot_does_not_make_different_names_equal() -> None:
    assert run(application(name="买买提·艾力"), person(name="买买提·艾山")) == [Reason.NAME_MISMATCH]


def test_not_insured() -> None:
    assert run(application(), person(insured=False)) == [Reason.NOT_INSURED]


# Materials by type and age


@pytest.mark.parametrize(
    "materials",
    [
        (),
        (Material.HOUSEHOLD_REGISTER, Material.SOCIAL_SECURITY_CARD, Material.BANK_CARD),
    ],
)
def test_new_card_materials_missing(materials: tuple[Material, ...]) -> None:
    assert run(application(materials=materials)) == [
        Reason.MATERIALS_MISSING,
        Reason.MISSING_RESIDENT_ID_CARD,
    ]


def test_an_adults_resident_id_card_is_enough_for_a_new_card() -> None:
    assert run(application(materials=(Material.RESIDENT_ID_CARD,))) == []


def test_a_childs_household_register_and_guardian_are_enough_for_a_new_card() -> None:
    app, child = _minor(
        date(2015, 6, 1), guardian_id_number=GUARDIAN_ID, materials=(Material.HOUSEHOLD_REGISTER,)
    )
    assert run(app, child) == []


def test_a_child_without_the_household_register_misses_it() -> None:
    app, child = _minor(
        date(2015, 6, 1), guardian_id_number=GUARDIAN_ID, materials=(Material.RESIDENT_ID_CARD,)
    )
    assert run(app, child) == [Reason.MATERIALS_MISSING, Reason.MISSING_HOUSEHOLD_REGISTER]


def test_activation_materials_missing() -> None:
    app = activation(materials=(Material.RESIDENT_ID_CARD, Material.HOUSEHOLD_REGISTER))
    assert run(app, holder(), card_registered=True) == [
        Reason.MATERIALS_MISSING,
        Reason.MISSING_SOCIAL_SECURITY_CARD,
    ]


def test_activation_materials_missing_names_each_one() -> None:
    app = activation(materials=(Material.BANK_CARD,))
    assert run(app, holder(), card_registered=True) == [
        Reason.MATERIALS_MISSING,
        Reason.MISSING_RESIDENT_ID_CARD,
        Reason.MISSING_SOCIAL_SECURITY_CARD,
    ]


def test_a_childs_activation_needs_the_household_register_and_the_card() -> None:
    number = id_number(birth=date(2015, 6, 1))
    child = holder(id_number=number)
    complete = activation(
        id_number=number,
        guardian_id_number=GUARDIAN_ID,
        materials=(Material.HOUSEHOLD_REGISTER, Material.SOCIAL_SECURITY_CARD),
    )
    assert run(complete, child, card_registered=True) == []
    without = replace(complete, materials=(Material.SOCIAL_SECURITY_CARD,))
    assert run(without, child, card_registered=True) == [
        Reason.MATERIALS_MISSING,
        Reason.MISSING_HOUSEHOLD_REGISTER,
    ]


def test_extra_and_repeated_materials_are_fine() -> None:
    materials = (
        Material.BANK_CARD,
        Material.RESIDENT_ID_CARD,
        Material.HOUSEHOLD_REGISTER,
        Material.BANK_CARD,
    )
    assert run(application(materials=materials)) == []


# Guardians


def _minor(birth: date, **overrides: object) -> tuple[Application, Person]:
    number = id_number(birth=birth)
    return application(id_number=number, **overrides), person(id_number=number)


def test_guardian_required() -> None:
    assert run(*_minor(date(2015, 6, 1))) == [Reason.GUARDIAN_REQUIRED]


def test_guardian_given() -> None:
    assert run(*_minor(date(2015, 6, 1), guardian_id_number=GUARDIAN_ID)) == []


@pytest.mark.parametrize("guardian", ["", GUARDIAN_ID[:-1] + "0", id_number(area_code="999999"), "guardian"])
def test_guardian_id_number_not_valid(guardian: str) -> None:
    assert run(*_minor(date(2015, 6, 1), guardian_id_number=guardian)) == [Reason.GUARDIAN_REQUIRED]


def test_guardian_born_after_the_submission_day_is_not_valid() -> None:
    unborn = id_number(birth=date(2026, 11, 2))
    assert run(*_minor(date(2015, 6, 1), guardian_id_number=unborn)) == [Reason.GUARDIAN_REQUIRED]


def test_sixteenth_birthday_on_the_submission_day_needs_no_guardian() -> None:
    assert run(*_minor(date(2010, 11, 1))) == []


def test_guardian_not_adult() -> None:
    seventeen = id_number(birth=date(2009, 11, 2), sequence=456)
    assert run(*_minor(date(2015, 6, 1), guardian_id_number=seventeen)) == [Reason.GUARDIAN_NOT_ADULT]


def test_guardian_eighteen_on_the_submission_day_is_adult() -> None:
    eighteen = id_number(birth=date(2008, 11, 1), sequence=456)
    assert run(*_minor(date(2015, 6, 1), guardian_id_number=eighteen)) == []


def test_guardian_is_the_applicant() -> None:
    app, child = _minor(date(2015, 6, 1))
    itself = replace(app, guardian_id_number=app.applicant.id_number)
    assert run(itself, child) == [Reason.GUARDIAN_IS_APPLICANT]


def test_guardian_not_in_the_registry() -> None:
    app, child = _minor(date(2015, 6, 1), guardian_id_number=GUARDIAN_ID)
    assert verify(app, child, CATALOG, False, guardian=None) == [Reason.GUARDIAN_NOT_FOUND]


def test_guardian_not_adult_and_not_found_together() -> None:
    seventeen = id_number(birth=date(2009, 11, 2), sequence=456)
    app, child = _minor(date(2015, 6, 1), guardian_id_number=seventeen)
    assert verify(app, child, CATALOG, False) == [Reason.GUARDIAN_NOT_ADULT, Reason.GUARDIAN_NOT_FOUND]


def test_adults_guardian_is_not_checked() -> None:
    assert verify(application(guardian_id_number=ADULT_ID), person(), CATALOG, False) == []


def test_one_day_before_the_sixteenth_birthday_needs_a_guardian() -> None:
    assert run(*_minor(date(2010, 11, 2))) == [Reason.GUARDIAN_REQUIRED]


def test_age_uses_the_submission_day_in_its_own_offset() -> None:
    # 2026-10-31T20:00-08:00 is 2026-11-01 in UTC, but the applicant submitted on 31 October: still 15.
    pacific = datetime(2026, 10, 31, 20, 0, tzinfo=timezone(timedelta(hours=-8)))
    assert run(*_minor(date(2010, 11, 1), submitted_at=pacific)) == [Reason.GUARDIAN_REQUIRED]
    utc = pacific.astimezone(UTC)
    assert run(*_minor(date(2010, 11, 1), submitted_at=utc)) == []


# Rule 6


def test_branch_unknown() -> None:
    assert run(application(branch_code="BR-000000-000")) == [Reason.BRANCH_UNKNOWN]


def test_branch_unknown_skips_bank_and_area_checks() -> None:
    assert run(application(branch_code="BR-000000-000", bank_code="NOPE")) == [Reason.BRANCH_UNKNOWN]


# Rule 7


def test_bank_unknown() -> None:
    assert run(application(bank_code="NOPE")) == [Reason.BANK_NOT_COOPERATING]


def test_bank_is_not_the_branchs_bank() -> None:
    assert run(application(bank_code=OTHER_BANK)) == [Reason.BANK_NOT_COOPERATING]


def test_bank_does_not_issue_in_the_branchs_area() -> None:
    catalog = reference(banks={**CATALOG.banks, BANK: bank(area_codes=frozenset({OTHER_AREA}))})
    assert run(application(), catalog=catalog) == [Reason.BANK_NOT_COOPERATING]


# Rule 8


def test_area_not_approved() -> None:
    areas = {**CATALOG.issuing_areas}
    areas["110105"] = replace(areas["110105"], approved=False)
    assert run(application(), catalog=reference(issuing_areas=areas)) == [Reason.AREA_NOT_APPROVED]


def test_area_unknown() -> None:
    areas = {k: v for k, v in CATALOG.issuing_areas.items() if k != "110105"}
    assert run(application(), catalog=reference(issuing_areas=areas)) == [Reason.AREA_NOT_APPROVED]


def test_unapproved_area_and_bank_mismatch_together() -> None:
    branches = {BRANCH: replace(CATALOG.branches[BRANCH], area_code=UNAPPROVED_AREA)}
    assert run(application(), catalog=reference(branches=branches)) == [
        Reason.AREA_NOT_APPROVED,
        Reason.BANK_NOT_COOPERATING,
    ]


# Rule 9


def test_already_has_a_valid_card() -> None:
    assert run(application(), holder()) == [Reason.ALREADY_HAS_CARD]


@pytest.mark.parametrize("status", [RegistryCardStatus.LOST, RegistryCardStatus.CANCELLED])
def test_lost_or_cancelled_card_allows_a_new_one(status: RegistryCardStatus) -> None:
    assert run(application(), holder(cards=(card(status=status),))) == []


def test_card_issued_by_this_system_counts() -> None:
    assert run(application(), issued_card_holder=True) == [Reason.ALREADY_HAS_CARD]


def test_activation_ignores_already_has_card() -> None:
    assert run(activation(), holder(), card_registered=True, issued_card_holder=True) == []


# Rule 10


def test_card_of_another_bank() -> None:
    assert run(activation(), holder(cards=(card(bank_code=OTHER_BANK),)), card_registered=True) == [
        Reason.CARD_NOT_ELIGIBLE
    ]


@pytest.mark.parametrize("status", [RegistryCardStatus.LOST, RegistryCardStatus.CANCELLED])
def test_card_not_valid(status: RegistryCardStatus) -> None:
    assert run(activation(), holder(cards=(card(status=status),)), card_registered=True) == [
        Reason.CARD_NOT_ELIGIBLE
    ]


def test_card_already_active() -> None:
    active = card(financial_status=RegistryFinancialStatus.ACTIVE)
    assert run(activation(), holder(cards=(active,)), card_registered=True) == [Reason.CARD_NOT_ELIGIBLE]


def test_card_of_someone_else() -> None:
    assert run(activation(), person(), card_registered=True) == [Reason.CARD_NOT_ELIGIBLE]


def test_card_unknown() -> None:
    assert run(activation(card_number="ZZZZZZZZZ"), holder()) == [Reason.CARD_NOT_FOUND]


def test_card_number_missing() -> None:
    assert run(activation(card_number=None), holder(), card_registered=True) == [Reason.CARD_NOT_FOUND]
    assert run(activation(card_number=""), holder(), card_registered=True) == [Reason.CARD_NOT_FOUND]


def test_the_matching_card_among_several_decides() -> None:
    cards = (card(card_number="OTHER0000", status=RegistryCardStatus.CANCELLED), card())
    assert run(activation(), holder(cards=cards), card_registered=True) == []


def test_new_card_ignores_the_card_number() -> None:
    assert run(application(card_number="ZZZZZZZZZ")) == []


# Combinations


def test_reasons_are_sorted_and_unique() -> None:
    app = application(name="李娜", materials=(), bank_code="NOPE", id_number=MINOR_ID)
    who = person(id_number=MINOR_ID, insured=False, cards=(card(),))
    catalog = reference(issuing_areas={})
    reasons = run(app, who, catalog)
    assert reasons == sorted(set(reasons))
    assert reasons == [
        Reason.ALREADY_HAS_CARD,
        Reason.AREA_NOT_APPROVED,
        Reason.BANK_NOT_COOPERATING,
        Reason.GUARDIAN_REQUIRED,
        Reason.MATERIALS_MISSING,
        Reason.MISSING_HOUSEHOLD_REGISTER,
        Reason.NAME_MISMATCH,
        Reason.NOT_INSURED,
    ]


def test_catalog_without_persons_is_enough() -> None:
    assert verify(application(), person(), make_catalog(), False) == []


def test_verification_reads_enum_values_given_as_strings() -> None:
    app = replace(application(), application_type=ApplicationType.NEW_CARD.value)  # type: ignore[arg-type]
    assert run(app, holder(cards=(replace(card(), status="VALID"),))) == [Reason.ALREADY_HAS_CARD]  # type: ignore[arg-type]
