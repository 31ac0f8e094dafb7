"""The input-record contract of design.md, checked field by field.

Avro checks the shape of a message; this module checks what Avro cannot (lengths, patterns, timestamps with an
offset) and turns records into domain values. The same checks serve JSON lines at `issuance submit` and Avro
records in the nightly decode stage, so both reject exactly the same records. Every problem of a record is
reported at once, by field name; values are never quoted because they may be personal data. Checksums and
other business rules (e.g. ID_NUMBER_INVALID) are not checked here: they are rejections, not contract breaks.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from issuance.codec.avro import decode
from issuance.domain.identity import normalize_id_number
from issuance.domain.model import Agreement, Applicant, Application, ApplicationType, Channel, Material
from issuance.errors import SchemaViolation

APPLICATION_RECORD = "ApplicationSubmitted"
AGREEMENT_RECORD = "AgreementSigned"

# A lowercase check character "x" is accepted, then written "X" (`identity.normalize_id_number`).
ID_NUMBER = re.compile(r"[0-9]{17}[0-9Xx]")
CARD_NUMBER = re.compile(r"[0-9A-Z]{9}")
# Mainland mobile and fixed-line numbers, optionally with a country code; digits, spaces and hyphens.
PHONE = re.compile(r"(\+[0-9]{1,3}[ -]?)?[0-9][0-9 -]{5,18}[0-9]")
SHA256_HEX = re.compile(r"[0-9a-f]{64}")

_E = TypeVar("_E", bound=StrEnum)
Problems = list[tuple[str, str]]


_MEMBERS: dict[type[StrEnum], dict[str, StrEnum]] = {}


def _members(kind: type[_E]) -> dict[str, _E]:
    """Value -> member, faster than calling the enum (this runs for every record of a night)."""
    members = _MEMBERS.get(kind)
    if members is None:
        members = _MEMBERS[kind] = {member.value: member for member in kind}
    return members  # type: ignore[return-value]


class _Reader:
    """Reads fields of one record, collecting (field, problem) pairs instead of raising at the first one.

    Each reader returns early on a valid value; the problem is worked out only when it is not.
    """

    __slots__ = ("prefix", "problems", "record")

    def __init__(self, record: Mapping[str, Any], problems: Problems, prefix: str = "") -> None:
        self.record = record
        self.problems = problems
        self.prefix = prefix

    def _fail(self, name: str, problem: str) -> None:
        self.problems.append((self.prefix + name, problem))

    def text(self, name: str, max_length: int = 64, pattern: re.Pattern[str] | None = None) -> str:
        value = self.record.get(name)
        if type(value) is str and _text_ok(value, max_length, pattern):
            return value
        self._text_problem(name, value, max_length, pattern, optional=False)
        return ""

    def optional_text(
        self, name: str, max_length: int = 64, pattern: re.Pattern[str] | None = None
    ) -> str | None:
        value = self.record.get(name)
        if value is None or (type(value) is str and _text_ok(value, max_length, pattern)):
            return value
        self._text_problem(name, value, max_length, pattern, optional=True)
        return None

    def _text_problem(
        self, name: str, value: Any, max_length: int, pattern: re.Pattern[str] | None, optional: bool
    ) -> None:
        if value is None:
            if not optional:
                self._fail(name, "required")
        elif not isinstance(value, str):
            self._fail(name, "must be a string")
        elif pattern is not None:
            self._fail(name, f"does not match ^{pattern.pattern}$")
        else:
            self._fail(name, f"must be 1..{max_length} characters, not blank")

    def enum(self, name: str, kind: type[_E]) -> _E | None:
        value = self.record.get(name)
        if value is None:
            self._fail(name, "required")
            return None
        return self._member(name, kind, value)

    def _member(self, name: str, kind: type[_E], value: Any) -> _E | None:
        if type(value) is str:
            member = _members(kind).get(value)
            if member is not None:
                return member
            self._fail(name, f"must be one of {', '.join(kind)}")
        else:
            self._fail(name, "must be a string")
        return None

    def enum_list(self, name: str, kind: type[_E]) -> tuple[_E, ...]:
        value = self.record.get(name)
        if value is None:
            self._fail(name, "required")
            return ()
        if not isinstance(value, list | tuple):
            self._fail(name, "must be a list")
            return ()
        members = _members(kind)
        if all(type(item) is str and item in members for item in value):
            return tuple(members[item] for item in value)
        found = [self._member(f"{name}[{index}]", kind, item) for index, item in enumerate(value)]
        return tuple(member for member in found if member is not None)

    def timestamp(self, name: str) -> datetime | None:
        value = self.record.get(name)
        if value is None:
            self._fail(name, "required")
            return None
        if not isinstance(value, str):
            self._fail(name, "must be a string")
            return None
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
        # fromisoformat also takes a space between date and time; ISO-8601 wants the T.
        if parsed is None or parsed.tzinfo is None or ("T" not in value and "t" not in value):
            self._fail(name, "must be an ISO-8601 date-time with an explicit offset")
            return None
        return parsed

    def nested(self, name: str) -> _Reader | None:
        value = self.record.get(name)
        if value is None:
            self._fail(name, "required")
            return None
        if not isinstance(value, Mapping):
            self._fail(name, "must be an object")
            return None
        return _Reader(value, self.problems, f"{self.prefix}{name}.")


def _text_ok(value: str, max_length: int, pattern: re.Pattern[str] | None) -> bool:
    if pattern is not None:
        return pattern.fullmatch(value) is not None
    return 0 < len(value) <= max_length and not value.isspace()


def _parse(record: object, record_name: str, build: Callable[[_Reader], Any]) -> Any:
    problems: Problems = []
    if not isinstance(record, Mapping):
        raise SchemaViolation(f"{record_name}: must be an object", [("$", "must be an object")])
    result = build(_Reader(record, problems))
    if problems:
        raise SchemaViolation(
            f"{record_name}: " + "; ".join(f"{field}: {problem}" for field, problem in problems), problems
        )
    return result


def _build_application(reader: _Reader) -> Application | None:
    application_id = reader.text("application_id")
    application_type = reader.enum("application_type", ApplicationType)
    branch_code = reader.text("branch_code")
    bank_code = reader.text("bank_code")
    channel = reader.enum("channel", Channel)
    applicant_reader = reader.nested("applicant")
    applicant = None
    if applicant_reader is not None:
        applicant = Applicant(
            id_number=normalize_id_number(applicant_reader.text("id_number", pattern=ID_NUMBER)),
            name=applicant_reader.text("name"),
            phone=applicant_reader.text("phone", pattern=PHONE),
        )
    card_number = reader.optional_text("card_number", pattern=CARD_NUMBER)
    guardian_id_number = reader.optional_text("guardian_id_number", pattern=ID_NUMBER)
    if guardian_id_number is not None:
        guardian_id_number = normalize_id_number(guardian_id_number)
    materials = reader.enum_list("materials", Material)
    submitted_at = reader.timestamp("submitted_at")
    if reader.problems:
        return None
    assert application_type is not None and channel is not None
    assert applicant is not None and submitted_at is not None
    return Application(
        application_id=application_id,
        application_type=application_type,
        branch_code=branch_code,
        bank_code=bank_code,
        channel=channel,
        applicant=applicant,
        materials=materials,
        submitted_at=submitted_at,
        card_number=card_number,
        guardian_id_number=guardian_id_number,
    )


def _build_agreement(reader: _Reader) -> Agreement | None:
    agreement_id = reader.text("agreement_id")
    application_id = reader.text("application_id")
    bank_code = reader.text("bank_code")
    terms_version = reader.text("terms_version", max_length=16)
    document_sha256 = reader.text("document_sha256", pattern=SHA256_HEX)
    signed_at = reader.timestamp("signed_at")
    channel = reader.enum("channel", Channel)
    if reader.problems:
        return None
    assert signed_at is not None and channel is not None
    return Agreement(
        agreement_id=agreement_id,
        application_id=application_id,
        bank_code=bank_code,
        terms_version=terms_version,
        document_sha256=document_sha256,
        signed_at=signed_at,
        channel=channel,
    )


def parse_application(record: Mapping[str, Any]) -> Application:
    """An Application from its record (JSON or decoded Avro); SchemaViolation lists every problem by field."""
    application: Application = _parse(record, APPLICATION_RECORD, _build_application)
    return application


def parse_agreement(record: Mapping[str, Any]) -> Agreement:
    """An Agreement from its record (JSON or decoded Avro); SchemaViolation lists every problem by field."""
    agreement: Agreement = _parse(record, AGREEMENT_RECORD, _build_agreement)
    return agreement


def application_to_record(application: Application) -> dict[str, Any]:
    """The ApplicationSubmitted record (also the JSON-lines form) of an Application."""
    applicant = application.applicant
    return {
        "application_id": application.application_id,
        "application_type": application.application_type.value,
        "branch_code": application.branch_code,
        "bank_code": application.bank_code,
        "channel": application.channel.value,
        "applicant": {"id_number": applicant.id_number, "name": applicant.name, "phone": applicant.phone},
        "card_number": application.card_number,
        "guardian_id_number": application.guardian_id_number,
        "materials": [material.value for material in application.materials],
        "submitted_at": application.submitted_at.isoformat(),
    }


def agreement_to_record(agreement: Agreement) -> dict[str, Any]:
    """The AgreementSigned record (also the JSON-lines form) of an Agreement."""
    return {
        "agreement_id": agreement.agreement_id,
        "application_id": agreement.application_id,
        "bank_code": agreement.bank_code,
        "terms_version": agreement.terms_version,
        "document_sha256": agreement.document_sha256,
        "signed_at": agreement.signed_at.isoformat(),
        "channel": agreement.channel.value,
    }


def decode_application(data: bytes) -> Application:
    """Decode an ApplicationSubmitted message and check its contract (raises the codec's typed errors)."""
    return parse_application(decode(data, APPLICATION_RECORD).record)


def decode_agreement(data: bytes) -> Agreement:
    """Decode an AgreementSigned message and check its contract (raises the codec's typed errors)."""
    return parse_agreement(decode(data, AGREEMENT_RECORD).record)
