"""Small factories for domain values, valid and consistent with each other by default.

`application()` passes verification against `reference()` and `agreement()` is a valid agreement for it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from typing import Any

from stdnum.cn import ric

from issuance.domain.model import (
    Agreement,
    Applicant,
    Application,
    ApplicationType,
    Bank,
    Branch,
    Channel,
    ExistingCard,
    IssuingArea,
    Material,
    Person,
    ReferenceData,
    RegistryCardStatus,
    RegistryFinancialStatus,
)

CST = timezone(timedelta(hours=8))
SUBMITTED_AT = datetime(2026, 11, 1, 10, 0, tzinfo=CST)

ADULT_ID = "110105198001011238"  # Beijing Chaoyang, born 1980-01-01, male
PUDONG_1980_ID = "310115198003150020"  # Pudong (created 1992), born 1980-03-15, female
GUARDIAN_ID = "440304197505201234"  # Shenzhen Futian, born 1975-05-20, male
MINOR_ID = "310115201506010040"  # Pudong, born 2015-06-01: 11 on SUBMITTED_AT
ADULT_NAME = "张伟"

AREA = "110105"
OTHER_AREA = "310115"
UNAPPROVED_AREA = "650102"
BANK = "ICBC"
OTHER_BANK = "CCB"
BRANCH = "BR-110105-001"
TERMS = "2026.1"
CARD = "A1B2C3D4E"  # an existing card in the registry (other issuer, so any check character)


def id_number(area_code: str = AREA, birth: date = date(1980, 1, 1), sequence: int = 123) -> str:
    """A valid ID number with the given parts (the check character computed)."""
    body = f"{area_code}{birth:%Y%m%d}{sequence:03d}"
    return body + ric.calc_check_digit(body + "0")


def applicant(**overrides: Any) -> Applicant:
    return replace(Applicant(id_number=ADULT_ID, name=ADULT_NAME, phone="13800138000"), **overrides)


def application(**overrides: Any) -> Application:
    """A NEW_CARD application; `id_number`, `name` and `phone` override the applicant's fields."""
    person_fields = {k: overrides.pop(k) for k in ("id_number", "name", "phone") if k in overrides}
    base = Application(
        application_id="APP-000001",
        application_type=ApplicationType.NEW_CARD,
        branch_code=BRANCH,
        bank_code=BANK,
        channel=Channel.COUNTER,
        applicant=applicant(**person_fields),
        materials=(Material.RESIDENT_ID_CARD, Material.HOUSEHOLD_REGISTER),
        submitted_at=SUBMITTED_AT,
    )
    return replace(base, **overrides)


def activation(**overrides: Any) -> Application:
    """A FINANCIAL_ACTIVATION application on CARD (valid against `reference(persons=...holder())`)."""
    defaults: dict[str, Any] = {
        "application_type": ApplicationType.FINANCIAL_ACTIVATION,
        "card_number": CARD,
        "materials": (Material.RESIDENT_ID_CARD, Material.SOCIAL_SECURITY_CARD),
    }
    return application(**{**defaults, **overrides})


def agreement(**overrides: Any) -> Agreement:
    """A valid agreement for `application()`, signed an hour after submission."""
    base = Agreement(
        agreement_id="AGR-000001",
        application_id="APP-000001",
        bank_code=BANK,
        terms_version=TERMS,
        document_sha256="0" * 64,
        signed_at=SUBMITTED_AT + timedelta(hours=1),
        channel=Channel.COUNTER,
    )
    return replace(base, **overrides)


def card(**overrides: Any) -> ExistingCard:
    """A valid card of BANK whose financial function is not active yet."""
    base = ExistingCard(
        card_number=CARD,
        bank_code=BANK,
        status=RegistryCardStatus.VALID,
        financial_status=RegistryFinancialStatus.INACTIVE,
    )
    return replace(base, **overrides)


def person(**overrides: Any) -> Person:
    """The registry entry of ADULT_ID: insured, no card."""
    return replace(Person(id_number=ADULT_ID, name=ADULT_NAME, insured=True), **overrides)


def holder(**overrides: Any) -> Person:
    """ADULT_ID holding CARD."""
    return person(**{"cards": (card(),), **overrides})


def bank(**overrides: Any) -> Bank:
    base = Bank(
        bank_code=BANK,
        name="中国工商银行",
        bin="622202",
        terms_version=TERMS,
        area_codes=frozenset({AREA, OTHER_AREA}),
    )
    return replace(base, **overrides)


def catalog(**overrides: Any) -> ReferenceData:
    """Areas, banks and branches without a person registry."""
    return reference(**{"persons": {}, **overrides})


def reference(**overrides: Any) -> ReferenceData:
    """Two approved areas and an unapproved one, two banks, one branch per bank, and `person()`."""
    areas = [
        IssuingArea(AREA, "北京市朝阳区", approved=True, approval_ref="MOHRSS-2026-001"),
        IssuingArea(OTHER_AREA, "上海市浦东新区", approved=True, approval_ref="MOHRSS-2026-002"),
        IssuingArea(UNAPPROVED_AREA, "乌鲁木齐市天山区", approved=False),
    ]
    banks = [
        bank(),
        Bank(OTHER_BANK, "中国建设银行", "621700", "2025.3", frozenset({OTHER_AREA, UNAPPROVED_AREA})),
    ]
    branches = [
        Branch(BRANCH, BANK, AREA, "工商银行朝阳支行"),
        Branch("BR-310115-001", OTHER_BANK, OTHER_AREA, "建设银行浦东支行"),
    ]
    base = ReferenceData(
        issuing_areas={a.area_code: a for a in areas},
        banks={b.bank_code: b for b in banks},
        branches={b.branch_code: b for b in branches},
        persons={ADULT_ID: person()},
    )
    return replace(base, **overrides)
