"""The reference-data JSON document (issuing areas, banks, branches, card vendors, person registry): strict
parse and dump.

Every problem is reported with its JSON path (`persons[12].cards[0].status: must be one of VALID, LOST,
CANCELLED`); up to MAX_PROBLEMS are collected before raising. Parsing is one pass over the document so a
registry of a million persons loads in seconds. Unknown fields are ignored, like in the input records.
Registry ID numbers are checked for their shape only (17 digits and a digit or X): whether a number is valid
is verification's call. `vendors` is optional (documents written before card vendors existed stay loadable);
each issuing area is made by at most one vendor, and an area without one has its cards wait, ordered.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from enum import StrEnum
from typing import Any, TypeVar

from issuance.domain.model import (
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
from issuance.errors import InputError

MAX_PROBLEMS = 20
_AREA_CODE = re.compile(r"[0-9]{6}")
_BIN = re.compile(r"[0-9]{6,8}")
_ID_NUMBER = re.compile(r"[0-9]{17}[0-9X]")
# A vendor code names its files (`<VENDOR>.jsonl`): nothing a file system or a shell would read otherwise.
_VENDOR_CODE = re.compile(r"[A-Z0-9][A-Z0-9_-]{0,15}")
_CARD_STATUS: dict[Any, RegistryCardStatus] = {s.value: s for s in RegistryCardStatus}
_FINANCIAL_STATUS: dict[Any, RegistryFinancialStatus] = {s.value: s for s in RegistryFinancialStatus}
_E = TypeVar("_E", bound=StrEnum)
_T = TypeVar("_T")


class ReferenceDataInvalid(InputError):
    """The document breaks the reference-data format; `problems` holds the first ones as `path: what`."""

    def __init__(self, problems: list[str], total: int) -> None:
        self.problems = tuple(problems)
        self.total = total
        more = f"\n  ... and {total - len(problems)} more" if total > len(problems) else ""
        lines = "".join(f"\n  {p}" for p in problems)
        super().__init__(f"reference data is invalid ({total} problems):{lines}{more}")


class _Parser:
    """Collects problems while walking the document."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.total = 0

    def problem(self, path: str, what: str) -> None:
        self.total += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(f"{path}: {what}")

    def obj(self, value: Any, path: str) -> dict[str, Any] | None:
        if isinstance(value, dict):
            return value
        self.problem(path, "must be an object")
        return None

    def items(self, doc: dict[str, Any], key: str, path: str, required: bool = True) -> list[Any]:
        where = f"{path}.{key}" if path else key
        if key not in doc:
            if required:
                self.problem(where, "is required")
            return []
        value = doc[key]
        if isinstance(value, list):
            return value
        self.problem(where, "must be a list")
        return []

    def text(
        self,
        doc: dict[str, Any],
        key: str,
        path: str,
        pattern: re.Pattern[str] | None = None,
        shape: str = "",
    ) -> str:
        value = doc.get(key)
        if isinstance(value, str) and (value if pattern is None else pattern.fullmatch(value)):
            return value
        if key not in doc:
            self.problem(f"{path}.{key}", "is required")
        elif not isinstance(value, str):
            self.problem(f"{path}.{key}", "must be a string")
        else:
            self.problem(f"{path}.{key}", f"must be {shape}" if pattern is not None else "must not be empty")
        return ""

    def optional_text(self, doc: dict[str, Any], key: str, path: str) -> str | None:
        value = doc.get(key)
        if value is None or isinstance(value, str):
            return value
        self.problem(f"{path}.{key}", "must be a string or null")
        return None

    def flag(self, doc: dict[str, Any], key: str, path: str) -> bool:
        value = doc.get(key)
        if isinstance(value, bool):
            return value
        self.problem(f"{path}.{key}", "is required" if key not in doc else "must be true or false")
        return False

    def choice(self, doc: dict[str, Any], key: str, path: str, enum: type[_E]) -> _E | None:
        value = doc.get(key)
        if isinstance(value, str) and value in enum.__members__:
            return enum[value]
        if key not in doc:
            self.problem(f"{path}.{key}", "is required")
        else:
            self.problem(f"{path}.{key}", "must be one of " + ", ".join(enum.__members__))
        return None

    def unique(self, seen: dict[str, str], key: str, path: str) -> None:
        if not key:
            return
        first = seen.setdefault(key, path)
        if first != path:
            self.problem(path, f"duplicate {key!r} (first at {first})")


def _records(
    parser: _Parser,
    doc: dict[str, Any],
    section: str,
    build: Callable[[dict[str, Any], str], _T],
    required: bool = True,
) -> list[tuple[str, _T]]:
    """Parse every object of a top-level list into (path, record)."""
    out: list[tuple[str, _T]] = []
    for i, raw in enumerate(parser.items(doc, section, "", required)):
        path = f"{section}[{i}]"
        item = parser.obj(raw, path)
        if item is not None:
            out.append((path, build(item, path)))
    return out


def _index(p: _Parser, records: list[tuple[str, _T]], key: str) -> dict[str, _T]:
    """Records by their `key` field, the first one winning; a problem for every repeated key."""
    index: dict[str, _T] = {}
    first: dict[str, str] = {}
    for path, record in records:
        value: str = getattr(record, key)
        p.unique(first, value, f"{path}.{key}")
        index.setdefault(value, record)
    return index


def parse_reference(doc: Any) -> ReferenceData:
    """Validate and index the reference-data document; raise ReferenceDataInvalid naming every bad path."""
    p = _Parser()
    root = p.obj(doc, "(document)")
    if root is None:
        raise ReferenceDataInvalid(p.problems, p.total)

    areas = _records(
        p,
        root,
        "issuing_areas",
        lambda d, path: IssuingArea(
            area_code=p.text(d, "area_code", path, _AREA_CODE, "6 digits"),
            name=p.text(d, "name", path),
            approved=p.flag(d, "approved", path),
            approval_ref=p.optional_text(d, "approval_ref", path),
        ),
    )
    area_index = _index(p, areas, "area_code")
    banks = _records(p, root, "banks", lambda d, path: _bank(p, d, path, area_index))
    bank_index = _index(p, banks, "bank_code")
    _index(p, banks, "bin")
    _check_bin_prefixes(p, banks)
    branches = _records(p, root, "branches", lambda d, path: _branch(p, d, path, area_index, bank_index))
    branch_index = _index(p, branches, "branch_code")

    vendors = _records(p, root, "vendors", lambda d, path: _vendor(p, d, path, area_index), required=False)
    vendor_index = _index(p, vendors, "vendor_code")
    _check_one_vendor_per_area(p, vendors)

    person_index = _persons(p, root)
    if p.total:
        raise ReferenceDataInvalid(p.problems, p.total)
    return ReferenceData(area_index, bank_index, branch_index, person_index, vendor_index)


def _area_codes(p: _Parser, d: dict[str, Any], path: str, areas: dict[str, IssuingArea]) -> frozenset[str]:
    """A record's `area_codes`: each a known issuing area, once."""
    codes: set[str] = set()
    for j, code in enumerate(p.items(d, "area_codes", path)):
        where = f"{path}.area_codes[{j}]"
        if not isinstance(code, str) or not _AREA_CODE.fullmatch(code):
            p.problem(where, "must be 6 digits")
        elif code not in areas:
            p.problem(where, f"unknown issuing area {code!r}")
        elif code in codes:
            p.problem(where, f"duplicate {code!r}")
        else:
            codes.add(code)
    return frozenset(codes)


def _vendor(p: _Parser, d: dict[str, Any], path: str, areas: dict[str, IssuingArea]) -> Vendor:
    return Vendor(
        vendor_code=p.text(d, "vendor_code", path, _VENDOR_CODE, "1 to 16 capital letters, digits, - or _"),
        name=p.text(d, "name", path),
        area_codes=_area_codes(p, d, path, areas),
    )


def _check_one_vendor_per_area(p: _Parser, vendors: list[tuple[str, Vendor]]) -> None:
    """Each area's cards go to one vendor file: an area named by two vendors is ambiguous."""
    first: dict[str, str] = {}
    for path, vendor in vendors:
        for code in sorted(vendor.area_codes):
            owner = first.setdefault(code, path)
            if owner != path:
                p.problem(f"{path}.area_codes", f"issuing area {code!r} is already made by {owner}")


def _bank(p: _Parser, d: dict[str, Any], path: str, areas: dict[str, IssuingArea]) -> Bank:
    codes = _area_codes(p, d, path, areas)
    return Bank(
        bank_code=p.text(d, "bank_code", path),
        name=p.text(d, "name", path),
        bin=p.text(d, "bin", path, _BIN, "6 to 8 digits"),
        terms_version=p.text(d, "terms_version", path),
        area_codes=codes,
    )


def _check_bin_prefixes(p: _Parser, banks: list[tuple[str, Bank]]) -> None:
    """A BIN that starts another bank's BIN could make their account numbers collide."""
    for path, bank in banks:
        for other_path, other in banks:
            if bank.bin and other.bin and bank.bin != other.bin and other.bin.startswith(bank.bin):
                p.problem(f"{other_path}.bin", f"starts with the BIN of {path} ({bank.bin})")


def _branch(
    p: _Parser, d: dict[str, Any], path: str, areas: dict[str, IssuingArea], banks: dict[str, Bank]
) -> Branch:
    branch = Branch(
        branch_code=p.text(d, "branch_code", path),
        bank_code=p.text(d, "bank_code", path),
        area_code=p.text(d, "area_code", path, _AREA_CODE, "6 digits"),
        name=p.text(d, "name", path),
    )
    if branch.bank_code and branch.bank_code not in banks:
        p.problem(f"{path}.bank_code", f"unknown bank {branch.bank_code!r}")
    if branch.area_code and branch.area_code not in areas:
        p.problem(f"{path}.area_code", f"unknown issuing area {branch.area_code!r}")
    return branch


def _persons(p: _Parser, root: dict[str, Any]) -> dict[str, Person]:
    """The registry, in one pass: a fast check of the usual well-formed entry, the detailed one otherwise."""
    persons: dict[str, Person] = {}
    cards_seen: set[str] = set()
    for i, raw in enumerate(p.items(root, "persons", "", required=False)):
        person = _well_formed_person(raw)
        if person is None:
            person = _person(p, raw, f"persons[{i}]")
            if person is None:
                continue
        for j, card in enumerate(person.cards):
            if card.card_number in cards_seen:
                p.problem(f"persons[{i}].cards[{j}].card_number", f"duplicate {card.card_number!r}")
            elif card.card_number:
                cards_seen.add(card.card_number)
        if person.id_number in persons:
            p.problem(f"persons[{i}].id_number", f"duplicate {person.id_number!r}")
        elif person.id_number:
            persons[person.id_number] = person
    return persons


def _well_formed_person(raw: Any) -> Person | None:
    """The person when every field is right (no paths built), else None for `_person` to explain."""
    if type(raw) is not dict:
        return None
    id_number, name, insured = raw.get("id_number"), raw.get("name"), raw.get("insured")
    if not (
        type(id_number) is str
        and _ID_NUMBER.fullmatch(id_number)
        and type(name) is str
        and name
        and type(insured) is bool
    ):
        return None
    raw_cards = raw.get("cards", ())
    if not raw_cards:
        return Person(id_number, name, insured)
    if type(raw_cards) is not list:
        return None
    cards = []
    for c in raw_cards:
        if type(c) is not dict:
            return None
        number, bank_code = c.get("card_number"), c.get("bank_code")
        status, financial = (
            _CARD_STATUS.get(c.get("status")),
            _FINANCIAL_STATUS.get(c.get("financial_status")),
        )
        if not (
            type(number) is str and number and type(bank_code) is str and bank_code and status and financial
        ):
            return None
        cards.append(ExistingCard(number, bank_code, status, financial))
    return Person(id_number, name, insured, tuple(cards))


def _person(p: _Parser, raw: Any, path: str) -> Person | None:
    """The person with a problem recorded for every bad field (None when not even an object)."""
    d = p.obj(raw, path)
    if d is None:
        return None
    id_number = p.text(d, "id_number", path, _ID_NUMBER, "17 digits followed by a digit or X")
    cards: list[ExistingCard] = []
    for j, raw_card in enumerate(p.items(d, "cards", path, required=False)):
        card_path = f"{path}.cards[{j}]"
        c = p.obj(raw_card, card_path)
        if c is None:
            continue
        number = p.text(c, "card_number", card_path)
        bank_code = p.text(c, "bank_code", card_path)
        status = p.choice(c, "status", card_path, RegistryCardStatus)
        financial = p.choice(c, "financial_status", card_path, RegistryFinancialStatus)
        if status is not None and financial is not None:
            cards.append(ExistingCard(number, bank_code, status, financial))
    return Person(id_number, p.text(d, "name", path), p.flag(d, "insured", path), tuple(cards))


def reference_to_doc(reference: ReferenceData) -> dict[str, Any]:
    """The JSON document `parse_reference` reads back to an equal ReferenceData."""
    return {
        "issuing_areas": [
            {"area_code": a.area_code, "name": a.name, "approved": a.approved, "approval_ref": a.approval_ref}
            for a in reference.issuing_areas.values()
        ],
        "banks": [
            {
                "bank_code": b.bank_code,
                "name": b.name,
                "bin": b.bin,
                "terms_version": b.terms_version,
                "area_codes": sorted(b.area_codes),
            }
            for b in reference.banks.values()
        ],
        "branches": [
            {"branch_code": b.branch_code, "bank_code": b.bank_code, "area_code": b.area_code, "name": b.name}
            for b in reference.branches.values()
        ],
        "vendors": [
            {"vendor_code": v.vendor_code, "name": v.name, "area_codes": sorted(v.area_codes)}
            for v in reference.vendors.values()
        ],
        "persons": [
            {
                "id_number": p.id_number,
                "name": p.name,
                "insured": p.insured,
                "cards": [
                    {
                        "card_number": c.card_number,
                        "bank_code": c.bank_code,
                        "status": c.status.value,
                        "financial_status": c.financial_status.value,
                    }
                    for c in p.cards
                ],
            }
            for p in reference.persons.values()
        ],
    }
