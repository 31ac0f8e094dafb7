"""The input-record contract of design.md, checked field by field.

Avro checks the shape of a message; this module checks what Avro cannot (lengths, patterns, timestamps with an
offset) and turns records into domain values. The same checks serve JSON lines at `issuance submit` and Avro
records in the nightly decode stage, so both reject exactly the same records. Every problem of a record is
reported at once, by field name; values are never quoted because they may be personal data. Checksums and
other business rules (e.g. ID_NUMBER_INVALID) are not checked here: they are rejections, not contract breaks.

The bounds keep one record from harming a night or a screen, and are the same at submit and in the night:

- text fields: 1 to 64 characters (`terms_version` 16), at least one visible character (not only spaces,
  zero-width or other format characters); no control characters (C0, C1, DEL, line and paragraph separators),
  no lone surrogates, no bidirectional controls (U+061C, U+200E, U+200F, U+202A..U+202E, U+2066..U+2069);
- `materials`: at most MAX_MATERIALS entries;
- `submitted_at` / `signed_at`: an ISO-8601 date-time of at most 40 characters with an explicit offset within
  -12:00..+14:00, not before 2000-01-01T00:00Z and before the end of the day after the business date (00:00
  UTC two days after it). At submit the business date is today (UTC); in the night it is the run's business
  date, stored with the run, so a re-run of the same night judges every record the same way. Without a
  business date only the absolute bound (before 2100) applies;
- a message (Avro bytes) of more than the configured `max_record_bytes` is not decoded at all
  (OversizedMessage), a null or zero-length one is EmptyMessage.

Fields a JSON record carries beyond the contract are not an error here (the contract allows them); Avro cannot
carry them. `unknown_fields` names them so that `issuance submit` reports what it dropped.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from issuance.codec.avro import decode, encode
from issuance.domain.identity import normalize_id_number
from issuance.domain.model import Agreement, Applicant, Application, ApplicationType, Channel, Material
from issuance.errors import EmptyMessage, OversizedMessage, SchemaViolation

APPLICATION_RECORD = "ApplicationSubmitted"
AGREEMENT_RECORD = "AgreementSigned"

# A lowercase check character "x" is accepted, then written "X" (`identity.normalize_id_number`).
ID_NUMBER = re.compile(r"[0-9]{17}[0-9Xx]")
CARD_NUMBER = re.compile(r"[0-9A-Z]{9}")
# Mainland mobile and fixed-line numbers, optionally with a country code; digits, spaces and hyphens.
PHONE = re.compile(r"(\+[0-9]{1,3}[ -]?)?[0-9][0-9 -]{5,18}[0-9]")
SHA256_HEX = re.compile(r"[0-9a-f]{64}")

# Raised whenever the contract refuses more than before: a crashed night staged under an older revision is
# staged again when it is resumed, so that records the current contract refuses become dead letters instead of
# failing its final transaction again and again.
CONTRACT_REVISION = 2
MAX_TEXT = 64
MAX_TERMS_VERSION = 16
MAX_MATERIALS = 8  # four kinds of material; a few repeats are harmless, a list of thousands is not
MAX_TIMESTAMP_TEXT = 40
EARLIEST_TIMESTAMP = datetime(2000, 1, 1, tzinfo=UTC)
ABSOLUTE_LATEST_TIMESTAMP = datetime(2100, 1, 1, tzinfo=UTC)
MIN_OFFSET = timedelta(hours=-12)
MAX_OFFSET = timedelta(hours=14)
DEFAULT_MAX_RECORD_BYTES = 16_384  # Settings.max_record_bytes

APPLICATION_FIELDS = frozenset(
    {
        "application_id",
        "application_type",
        "branch_code",
        "bank_code",
        "channel",
        "applicant",
        "card_number",
        "guardian_id_number",
        "materials",
        "submitted_at",
    }
)
APPLICANT_FIELDS = frozenset({"id_number", "name", "phone"})
AGREEMENT_FIELDS = frozenset(
    {
        "agreement_id",
        "application_id",
        "bank_code",
        "terms_version",
        "document_sha256",
        "signed_at",
        "channel",
    }
)

_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_CONTROL_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})
_VISIBLE_CATEGORY_CLASSES = frozenset("LNPS")
_FILLERS = frozenset("\u115f\u1160\u3164\uffa0")  # Hangul fillers: letters that print as nothing
_FIELD_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}")

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

    __slots__ = ("latest", "prefix", "problems", "record")

    def __init__(
        self,
        record: Mapping[str, Any],
        problems: Problems,
        prefix: str = "",
        latest: datetime = ABSOLUTE_LATEST_TIMESTAMP,
    ) -> None:
        self.record = record
        self.problems = problems
        self.prefix = prefix
        self.latest = latest

    def _fail(self, name: str, problem: str) -> None:
        self.problems.append((self.prefix + name, problem))

    def text(self, name: str, max_length: int = MAX_TEXT, pattern: re.Pattern[str] | None = None) -> str:
        value = self.record.get(name)
        if type(value) is str and _text_ok(value, max_length, pattern):
            return value
        self._text_problem(name, value, max_length, pattern, optional=False)
        return ""

    def optional_text(
        self, name: str, max_length: int = MAX_TEXT, pattern: re.Pattern[str] | None = None
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
            self._fail(name, text_problem(value, max_length) or "invalid")

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
        if len(value) > MAX_MATERIALS:
            self._fail(name, f"must have at most {MAX_MATERIALS} entries")
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
        parsed = None
        if len(value) <= MAX_TIMESTAMP_TEXT:
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                parsed = None
        # fromisoformat also takes a space between date and time; ISO-8601 wants the T.
        if parsed is None or parsed.tzinfo is None or ("T" not in value and "t" not in value):
            self._fail(name, "must be an ISO-8601 date-time with an explicit offset")
            return None
        offset = parsed.utcoffset()
        if offset is None or not MIN_OFFSET <= offset <= MAX_OFFSET:
            self._fail(name, "must have an offset within -12:00..+14:00")
            return None
        # The year first: comparing instants near year 1 or 9999 would overflow.
        latest = self.latest
        if not (
            EARLIEST_TIMESTAMP.year - 1 <= parsed.year <= latest.year
            and EARLIEST_TIMESTAMP <= parsed < latest
        ):
            self._fail(
                name,
                f"must be from {EARLIEST_TIMESTAMP:%Y-%m-%d} and before {latest:%Y-%m-%dT%H:%M}Z"
                " (not implausibly old, at most a day after the business date)",
            )
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
        return _Reader(value, self.problems, f"{self.prefix}{name}.", self.latest)


def _text_ok(value: str, max_length: int, pattern: re.Pattern[str] | None) -> bool:
    if pattern is not None:
        return pattern.fullmatch(value) is not None  # patterns are of ASCII classes: no control characters
    # The fast path of a night: printable ASCII has no control characters, and its only invisible character is
    # the space. Anything else (a Chinese name, say) is judged character by character by text_problem.
    if 0 < len(value) <= max_length and value.isascii() and value.isprintable() and not value.isspace():
        return True
    return 0 < len(value) <= max_length and text_problem(value, max_length) is None


def text_problem(value: str, max_length: int = MAX_TEXT) -> str | None:
    """What is wrong with a free text (None when nothing): the message names the rule, never the value."""
    blank = f"must be 1..{max_length} characters, not blank"  # blank: nothing visible, zero-width included
    if not 0 < len(value) <= max_length:
        return blank
    visible = False
    for char in value:
        if char in _BIDI_CONTROLS:
            return "must not contain bidirectional control characters"
        category = unicodedata.category(char)
        if category in _CONTROL_CATEGORIES:
            return "must not contain control characters"
        if not visible and char not in _FILLERS:
            visible = category[0] in _VISIBLE_CATEGORY_CLASSES or category == "Co"
    return None if visible else blank


def valid_code(value: object) -> str | None:
    """`value` if it is a text the contract accepts (a branch code of a record that broke it), else None."""
    if type(value) is str and _text_ok(value, MAX_TEXT, None):
        return value
    return None


def latest_timestamp(business_date: date) -> datetime:
    """The bound submitted_at and signed_at stay before: the end of the day after `business_date`, UTC."""
    return datetime.combine(business_date + timedelta(days=2), time(), UTC)


def _parse(
    record: object, record_name: str, build: Callable[[_Reader], Any], business_date: date | None
) -> Any:
    problems: Problems = []
    if not isinstance(record, Mapping):
        raise SchemaViolation(f"{record_name}: must be an object", [("$", "must be an object")])
    latest = ABSOLUTE_LATEST_TIMESTAMP if business_date is None else latest_timestamp(business_date)
    result = build(_Reader(record, problems, latest=latest))
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
    terms_version = reader.text("terms_version", max_length=MAX_TERMS_VERSION)
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


def parse_application(record: Mapping[str, Any], business_date: date | None = None) -> Application:
    """An Application from its record (JSON or decoded Avro); SchemaViolation lists every problem by field.

    `business_date` bounds `submitted_at` (see the module docstring); None: only the absolute bounds."""
    application: Application = _parse(record, APPLICATION_RECORD, _build_application, business_date)
    return application


def parse_agreement(record: Mapping[str, Any], business_date: date | None = None) -> Agreement:
    """An Agreement from its record (JSON or decoded Avro); SchemaViolation lists every problem by field."""
    agreement: Agreement = _parse(record, AGREEMENT_RECORD, _build_agreement, business_date)
    return agreement


def unknown_fields(record: Mapping[str, Any], record_name: str) -> list[str]:
    """Dotted names of the fields a JSON record carries beyond the contract (dropped when it is encoded).

    A name that is not a plain identifier is reported as "(unprintable name)": names are input too."""
    known, nested = (
        (APPLICATION_FIELDS, {"applicant": APPLICANT_FIELDS})
        if record_name == APPLICATION_RECORD
        else (AGREEMENT_FIELDS, {})
    )
    found = [_field_name(name) for name in record if name not in known]
    for name, fields in nested.items():
        inner = record.get(name)
        if isinstance(inner, Mapping):
            found.extend(f"{name}.{_field_name(key)}" for key in inner if key not in fields)
    return sorted(set(found))


def _field_name(name: object) -> str:
    return name if isinstance(name, str) and _FIELD_NAME.fullmatch(name) else "(unprintable name)"


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


# The last ApplicationSubmitted version whose personal fields are in the record: what a dead letter raised
# after decoding keeps of an application (stored sealed, never sent).
CLEAR_APPLICATION_VERSION = 2


def record_bytes(record: Application | Agreement) -> bytes:
    """The Avro message of a decoded record, for a dead letter raised after decoding (an application as
    CLEAR_APPLICATION_VERSION); when even that fails, its id (the original stays on its topic at its
    offset)."""
    try:
        if isinstance(record, Application):
            return encode(
                APPLICATION_RECORD, application_to_record(record), version=CLEAR_APPLICATION_VERSION
            )
        return encode(AGREEMENT_RECORD, agreement_to_record(record))
    except SchemaViolation:
        return (record.application_id if isinstance(record, Application) else record.agreement_id).encode(
            "utf-8", "replace"
        )


def check_size(data: bytes | None, max_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> bytes:
    """The value of a message that may be looked at: EmptyMessage (null or zero bytes), OversizedMessage (not
    read any further, not even authenticated)."""
    if not data:
        raise EmptyMessage("the record has no value (null or zero bytes)")
    if len(data) > max_bytes:
        raise OversizedMessage(
            f"the value of {len(data)} bytes is larger than the {max_bytes}-byte limit of a contract record;"
            " not decoded"
        )
    return data


def decode_checked(
    data: bytes | None, record_name: str, max_bytes: int = DEFAULT_MAX_RECORD_BYTES
) -> dict[str, Any]:
    """The record of one message: EmptyMessage, OversizedMessage (not decoded) or the codec's typed errors."""
    return decode(check_size(data, max_bytes), record_name).record


def decode_record(
    data: bytes | None,
    record_name: str,
    *,
    max_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    business_date: date | None = None,
) -> Application | Agreement:
    """Bytes to a contract record: only the DecodeError family is raised, whatever the bytes. An application
    whose personal fields are sealed (v3) does not meet the contract here: the night opens them first
    (`issuance.application_wire.open_application`)."""
    record = decode_checked(data, record_name, max_bytes)
    if record_name == APPLICATION_RECORD:
        return parse_application(record, business_date)
    return parse_agreement(record, business_date)


def decode_application(data: bytes, business_date: date | None = None) -> Application:
    """Decode an ApplicationSubmitted message and check its contract (raises the codec's typed errors)."""
    return parse_application(decode_checked(data, APPLICATION_RECORD), business_date)


def decode_agreement(data: bytes, business_date: date | None = None) -> Agreement:
    """Decode an AgreementSigned message and check its contract (raises the codec's typed errors)."""
    return parse_agreement(decode_checked(data, AGREEMENT_RECORD), business_date)
