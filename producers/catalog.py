"""The synthetic reference catalog: issuing areas, cooperating banks and their branches, chosen by the seed.

Besides ordinary branches it holds the two deliberately misconfigured ones the generator needs to inject
BANK_NOT_COOPERATING (a branch in an area its bank does not issue in) and AREA_NOT_APPROVED (a branch in an
area the ministry has not approved) as single defects, and one branch in an area whose approval is withdrawn
from night 2 on (Article 5: an area that is no longer approved gets no cards, even for applications it took
while it was). Only the cases written for that withdrawal use this branch, so the withdrawal changes no other
application's outcome.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from stdnum import numdb

# Real bank identification numbers of the large state banks' debit cards.
_BANKS: tuple[tuple[str, str, str], ...] = (
    ("ICBC", "中国工商银行", "622202"),
    ("ABC", "中国农业银行", "622848"),
    ("BOC", "中国银行", "621661"),
    ("CCB", "中国建设银行", "621700"),
    ("BOCOM", "交通银行", "622262"),
    ("PSBC", "中国邮政储蓄银行", "621799"),
)
# Every bank a catalog may draw (docker-compose.yml runs a Kafka principal and a simulator for each).
BANK_CODES = tuple(code for code, _name, _bin in _BANKS)
_BRANCH_NAMES = ("营业部", "人民路支行", "解放路支行", "中山路支行", "新城支行", "开发区支行", "建设路支行")
_RETIRED = re.compile(r"^\[\d*-\d+\]")
_SINCE = re.compile(r"^\[\d+-\]")
_OPEN, _CLOSE = "\u3014", "\u3015"  # the tortoise-shell brackets of official document numbers
AREA_COUNT = 8
UNAPPROVED_COUNT = 2
WITHDRAWN_FROM_NIGHT = 2  # the night from which the withdrawn area is no longer approved
VENDORS = (("VENDOR-A", "华东智能卡制造中心"), ("VENDOR-B", "华南智能卡制造中心"))  # card vendors


@dataclass(frozen=True, slots=True)
class BankSpec:
    bank_code: str
    name: str
    bin: str
    terms_version: str
    outdated_terms_version: str
    area_codes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BranchSpec:
    branch_code: str
    bank_code: str
    area_code: str
    name: str


@dataclass(frozen=True, slots=True)
class Catalog:
    """Areas, banks and branches, plus which branches produce which single defect."""

    areas: tuple[dict[str, Any], ...]
    banks: tuple[BankSpec, ...]
    good_branches: tuple[BranchSpec, ...]  # bank issues in the area, area approved
    uncovered_branch: BranchSpec  # area approved, but its bank does not issue there
    unapproved_branch: BranchSpec  # its bank issues there, but the area is not approved
    withdrawn_branch: BranchSpec  # approved on night 1, its approval withdrawn from WITHDRAWN_FROM_NIGHT on

    def bank(self, bank_code: str) -> BankSpec:
        """The bank with this code."""
        return next(bank for bank in self.banks if bank.bank_code == bank_code)

    def branches_of(self, bank_code: str) -> tuple[BranchSpec, ...]:
        """The good branches of one bank."""
        return tuple(branch for branch in self.good_branches if branch.bank_code == bank_code)

    def areas_on(self, night: int) -> list[dict[str, Any]]:
        """The issuing areas as they stand on that night: the withdrawn area loses its approval."""
        withdrawn = self.withdrawn_branch.area_code
        return [
            {**area, "approved": False, "approval_ref": None}
            if area["area_code"] == withdrawn and night >= WITHDRAWN_FROM_NIGHT
            else area
            for area in self.areas
        ]

    def vendors(self) -> list[dict[str, Any]]:
        """Two card vendors splitting every issuing area between them (by area code, first half and rest);
        derived from the areas, so choosing them takes nothing from the seed's random stream."""
        codes = sorted(str(area["area_code"]) for area in self.areas)
        half = (len(codes) + 1) // 2
        return [
            {"vendor_code": code, "name": name, "area_codes": part}
            for (code, name), part in zip(VENDORS, (codes[:half], codes[half:]), strict=True)
        ]

    def to_json(self, night: int = 1) -> dict[str, Any]:
        """The reference document's areas, banks and branches on that night (persons are streamed
        separately)."""
        branches = (*self.good_branches, self.uncovered_branch, self.unapproved_branch, self.withdrawn_branch)
        return {
            "issuing_areas": self.areas_on(night),
            "banks": [
                {
                    "bank_code": bank.bank_code,
                    "name": bank.name,
                    "bin": bank.bin,
                    "terms_version": bank.terms_version,
                    "area_codes": list(bank.area_codes),
                }
                for bank in self.banks
            ],
            "branches": [
                {
                    "branch_code": branch.branch_code,
                    "bank_code": branch.bank_code,
                    "area_code": branch.area_code,
                    "name": branch.name,
                }
                for branch in sorted(branches, key=lambda b: b.branch_code)
            ],
            "vendors": self.vendors(),
        }


@cache
def city_areas() -> tuple[tuple[str, str], ...]:
    """Current prefecture-level areas of stdnum's GB/T 2260 list as (code, province + city name), sorted."""
    cities: list[tuple[str, str]] = []
    for _length, province, _high, props, counties in numdb.get("cn/loc").prefixes:
        province_name = _SINCE.sub("", str(props.get("province", "")))
        for _clen, low, high, cprops, _children in counties:
            name = str(cprops.get("county", ""))
            if low != high or not low.endswith("00") or low == "0000" or _RETIRED.match(name):
                continue
            name = _SINCE.sub("", name)
            if name.endswith("市") and "辖" not in name:
                cities.append((f"{province}{low}", province_name + name))
    return tuple(sorted(cities))


def build_catalog(rng: random.Random) -> Catalog:
    """Choose 8 issuing areas (2 not approved), 3-5 banks and their branches, and a ninth area approved until
    its approval is withdrawn."""
    picked = sorted(rng.sample(city_areas(), AREA_COUNT))
    unapproved = {code for code, _ in rng.sample(picked, UNAPPROVED_COUNT)}
    areas = tuple(
        {
            "area_code": code,
            "name": name,
            "approved": code not in unapproved,
            "approval_ref": None
            if code in unapproved
            else f"人社部函{_OPEN}{rng.randint(2012, 2023)}{_CLOSE}{rng.randint(10, 199)}号",
        }
        for code, name in picked
    )
    approved = [code for code, _ in picked if code not in unapproved]
    chosen = sorted(rng.sample(range(len(_BANKS)), rng.randint(3, 5)))
    banks: list[BankSpec] = []
    for index in chosen:
        code, name, bin_ = _BANKS[index]
        covered = sorted(rng.sample(approved, rng.randint(3, len(approved) - 1)))
        year, minor = rng.randint(2023, 2025), rng.randint(1, 4)
        banks.append(BankSpec(code, name, bin_, f"{year}.{minor}", f"{year - 1}.{minor}", tuple(covered)))
    # The first bank also issues in one unapproved area (its branch there is the AREA_NOT_APPROVED branch) and
    # in the area whose approval is withdrawn later (its branch there serves only the withdrawal's cases).
    withdrawn_code, withdrawn_name = rng.choice([area for area in city_areas() if area not in picked])
    withdrawn: dict[str, Any] = {
        "area_code": withdrawn_code,
        "name": withdrawn_name,
        "approved": True,
        "approval_ref": f"人社部函{_OPEN}{rng.randint(2012, 2023)}{_CLOSE}{rng.randint(10, 199)}号",
    }
    areas = tuple(sorted((*areas, withdrawn), key=lambda area: str(area["area_code"])))
    first = banks[0]
    unapproved_area = sorted(unapproved)[0]
    banks[0] = BankSpec(
        first.bank_code,
        first.name,
        first.bin,
        first.terms_version,
        first.outdated_terms_version,
        tuple(sorted((*first.area_codes, unapproved_area, withdrawn_code))),
    )
    names = dict(picked)
    good: list[BranchSpec] = []
    for bank in banks:
        for area in bank.area_codes:
            if area in unapproved or area == withdrawn_code:
                continue
            for number, suffix in enumerate(rng.sample(_BRANCH_NAMES, rng.randint(1, 3)), start=1):
                good.append(_branch(bank, area, number, names[area] + suffix))
    first_bank = banks[0]
    outside = next(area for area in approved if area not in first_bank.area_codes)
    return Catalog(
        areas=areas,
        banks=tuple(banks),
        good_branches=tuple(good),
        uncovered_branch=_branch(first_bank, outside, 1, names[outside] + _BRANCH_NAMES[0]),
        unapproved_branch=_branch(first_bank, unapproved_area, 1, names[unapproved_area] + _BRANCH_NAMES[0]),
        withdrawn_branch=_branch(first_bank, withdrawn_code, 1, withdrawn_name + _BRANCH_NAMES[0]),
    )


def _branch(bank: BankSpec, area: str, number: int, place: str) -> BranchSpec:
    return BranchSpec(f"{bank.bank_code}{area}{number:02d}", bank.bank_code, area, f"{bank.name}{place}")
