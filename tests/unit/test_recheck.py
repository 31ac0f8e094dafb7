"""The re-check of re-examined and retried applications: tonight's reference data, the first night's rule."""

from __future__ import annotations

from dataclasses import replace

import pytest

from issuance.domain.model import Bank, IssuingArea, Material, Person, ReferenceData
from pipelines.commit import Recheck, recheck
from tests import factories as f

KEY = b"person-key"


def _candidate(from_state: str = "AWAITING_AGREEMENT", **overrides: object) -> Recheck:
    base = Recheck(from_state, "AGR-000001", f.application(), KEY, False, False)
    return replace(base, **overrides)


def _decide(
    candidate: Recheck, reference: ReferenceData, person: Person | None = None
) -> list[tuple[object, ...]]:
    return [tuple(r) for r in recheck([candidate], {KEY: person or f.person()}, reference)]


@pytest.mark.parametrize("from_state", ["AWAITING_AGREEMENT", "ACCEPTED"])
def test_an_unchanged_registry_lets_it_go_on(from_state: str) -> None:
    assert _decide(_candidate(from_state), f.reference()) == []


def test_an_issuing_area_whose_approval_was_withdrawn_rejects_it() -> None:
    reference = f.reference()
    areas = {**reference.issuing_areas, f.AREA: IssuingArea(f.AREA, "北京市朝阳区", approved=False)}
    assert _decide(_candidate(), replace(reference, issuing_areas=areas)) == [
        ("APP-000001", "AWAITING_AGREEMENT", "AGR-000001", ["AREA_NOT_APPROVED"])
    ]


def test_a_bank_that_stopped_cooperating_in_the_area_rejects_a_retry() -> None:
    reference = f.reference()
    banks = {**reference.banks, f.BANK: f.bank(area_codes=frozenset({f.OTHER_AREA}))}
    assert _decide(_candidate("ACCEPTED"), replace(reference, banks=banks)) == [
        ("APP-000001", "ACCEPTED", "AGR-000001", ["BANK_NOT_COOPERATING"])
    ]


def test_a_holder_no_longer_insured_is_rejected() -> None:
    assert _decide(_candidate(), f.reference(), f.person(insured=False)) == [
        ("APP-000001", "AWAITING_AGREEMENT", "AGR-000001", ["NOT_INSURED"])
    ]


def test_a_person_gone_from_the_registry_is_rejected() -> None:
    assert recheck([_candidate()], {}, f.reference())[0][3] == ["PERSON_NOT_FOUND"]


def test_a_valid_card_issued_meanwhile_rejects_a_new_card() -> None:
    assert recheck([_candidate(issued_card_holder=True)], {KEY: f.person()}, f.reference())[0][3] == [
        "ALREADY_HAS_CARD"
    ]


def test_an_activation_on_a_card_activated_meanwhile_is_rejected() -> None:
    active = f.holder(cards=(f.card(financial_status="ACTIVE"),))
    candidate = _candidate(application=f.activation(), card_registered=True)
    assert recheck([candidate], {KEY: active}, f.reference())[0][3] == ["CARD_NOT_ELIGIBLE"]


def test_an_activation_on_an_eligible_card_goes_on() -> None:
    candidate = _candidate(application=f.activation(), card_registered=True)
    assert recheck([candidate], {KEY: f.holder()}, f.reference()) == []


def test_only_the_candidates_that_fail_are_returned() -> None:
    other = Bank("ABC", "农业银行", "622848", "2026.1", frozenset())
    reference = replace(f.reference(), banks={**f.reference().banks, "ABC": other})
    failing = _candidate(application=f.application(application_id="APP-2", bank_code="ABC"))
    found = recheck([_candidate(), failing], {KEY: f.person()}, reference)
    assert [r[0] for r in found] == ["APP-2"]


def test_a_childs_guardian_is_looked_up_again_like_on_the_first_night() -> None:
    born = f.id_number(birth=f.SUBMITTED_AT.date().replace(year=f.SUBMITTED_AT.year - 10))
    child = f.person(id_number=born)
    app = f.application(
        id_number=born, guardian_id_number=f.GUARDIAN_ID, materials=(Material.HOUSEHOLD_REGISTER,)
    )
    guardian_key = b"guardian-key"
    candidate = _candidate(application=app, guardian_key=guardian_key)
    guardian = f.person(id_number=f.GUARDIAN_ID, name="张建国")
    assert recheck([candidate], {KEY: child, guardian_key: guardian}, f.reference()) == []
    assert recheck([candidate], {KEY: child}, f.reference())[0][3] == ["GUARDIAN_NOT_FOUND"]
