"""A dead letter's original bytes, read as far as they go, for an operator's screen and for repair.

The bytes of a dead letter may hold personal data in clear. What an operator sees on a screen is the record
with every personal field masked: fields known to be harmless (ids, codes, enums, timestamps) are shown, known
personal fields get their masked form, and every other value only its length. Bytes that do not decode are
shown as their size, SHA-256 and a short hex excerpt (the Avro header and the first bytes of the body, which
starts with the record id). The unmasked record is only ever written to a file by `export`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from issuance.application_wire import PERSONAL_FIELD, open_application
from issuance.codec.avro import HEADER_SIZE, decode, registry
from issuance.codec.registry import MAGIC
from issuance.domain.contract import (
    AGREEMENT_RECORD,
    APPLICATION_RECORD,
    parse_agreement,
    parse_application,
)
from issuance.domain.masking import STAR, mask_account, mask_id_number, mask_name, mask_phone
from issuance.errors import DecodeError, SchemaViolation
from issuance.trust.errors import TrustFailure
from issuance.trust.sealing import Unsealer

HEX_EXCERPT_BYTES = 16

# Values shown as they are: business keys, codes, enums and timestamps of the contract records.
CLEAR_FIELDS = frozenset(
    {
        "application_id",
        "application_type",
        "branch_code",
        "bank_code",
        "channel",
        "materials",
        "submitted_at",
        "submission_source",
        "agreement_id",
        "terms_version",
        "document_sha256",
        "signed_at",
    }
)
# Personal fields, each with its masked form.
MASKS: Mapping[str, Callable[[str], str]] = {
    "id_number": mask_id_number,
    "guardian_id_number": mask_id_number,
    "name": mask_name,
    "phone": mask_phone,
    "card_number": mask_account,
    "account_number": mask_account,
}


SEALED_APPLICATION_VERSION = 3  # ApplicationSubmitted's first version with the personal fields sealed


class PayloadForm(StrEnum):
    """How far the bytes could be read."""

    AVRO = "avro"  # a contract record in Avro single-object encoding (it may still break the contract)
    JSON_TEXT = "json-text"  # a JSON object sent as text instead of Avro
    EMPTY = "empty"  # no bytes at all (a null or zero-length record)
    UNDECODABLE = "undecodable"


class RecordKind(StrEnum):
    """What a source topic carries."""

    APPLICATION = APPLICATION_RECORD
    AGREEMENT = AGREEMENT_RECORD


@dataclass(frozen=True, slots=True)
class PayloadView:
    """What could be read of a payload; `record` is the unmasked record, for export only."""

    size: int
    sha256: str
    form: PayloadForm
    record_name: str | None = None  # the writer schema's record, when the header names a known one
    version: int | None = None
    record: dict[str, Any] | None = field(default=None, repr=False)
    problems: tuple[tuple[str, str], ...] = ()  # (field, what is wrong): never values
    error: str | None = None  # why it does not decode (never content)
    hex_excerpt: str | None = None

    @property
    def valid(self) -> bool:
        """Whether the bytes are a contract record of the expected kind that meets the contract."""
        return self.form is PayloadForm.AVRO and self.error is None and not self.problems

    def masked(self) -> dict[str, Any]:
        """The view for a screen: personal fields masked, no raw bytes beyond the excerpt."""
        return {
            "size": self.size,
            "sha256": self.sha256,
            "form": self.form.value,
            "record_name": self.record_name,
            "version": self.version,
            "record": mask_record(self.record) if self.record is not None else None,
            "problems": [{"field": f, "problem": p} for f, p in self.problems],
            "error": self.error,
            "hex_excerpt": self.hex_excerpt,
        }


def mask_value(key: str, value: Any) -> Any:
    """A value for a screen: clear when its field is harmless, masked when personal, else only its length."""
    if isinstance(value, Mapping):
        return mask_record(value)
    if isinstance(value, list | tuple):
        return [mask_value(key, item) for item in value]
    if value is None or isinstance(value, bool):
        return value
    if key in CLEAR_FIELDS:
        return value
    text = str(value)
    mask = MASKS.get(key)
    return mask(text) if mask is not None else STAR * len(text)


def mask_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """Every field of a (possibly nested) record masked by `mask_value`."""
    return {str(key): mask_value(str(key), value) for key, value in record.items()}


def inspect_payload(
    data: bytes, expected: RecordKind | None, unsealer: Unsealer | None = None
) -> PayloadView:
    """Read the bytes as far as they go: an Avro record checked against the contract of `expected`, a JSON
    object sent as text, or nothing (then a hex excerpt).

    An application's sealed personal fields (ApplicationSubmitted v3) are opened with `unsealer` (the
    bureau's keys); without it, or when they do not open, `personal` is a problem and the record is shown
    without them. An older application (v1, v2) is shown as it was written, its personal fields in clear."""
    size, digest = len(data), hashlib.sha256(data).hexdigest()
    if not data:
        return PayloadView(size, digest, PayloadForm.EMPTY, error="the record has no value")
    try:
        decoded = decode(data)
        if decoded.record_name == APPLICATION_RECORD and decoded.version < SEALED_APPLICATION_VERSION:
            decoded = decode(data, as_written=True)
    except DecodeError as exc:
        json_record = _json_object(data)
        if json_record is not None:
            return PayloadView(size, digest, PayloadForm.JSON_TEXT, record=json_record, error=str(exc))
        name, version = _writer(data)
        return PayloadView(
            size,
            digest,
            PayloadForm.UNDECODABLE,
            record_name=name,
            version=version,
            error=str(exc),
            hex_excerpt=data[:HEX_EXCERPT_BYTES].hex(" "),
        )
    problems: tuple[tuple[str, str], ...] = ()
    if expected is not None and decoded.record_name != expected.value:
        problems = (("$record", f"expected {expected.value}, got {decoded.record_name}"),)
    record = decoded.record
    if PERSONAL_FIELD in record and decoded.record_name == APPLICATION_RECORD:
        record, problems = _opened(record, unsealer, problems)
    if expected is not None and not problems:
        problems = contract_problems(expected, record)
    return PayloadView(
        size,
        digest,
        PayloadForm.AVRO,
        record_name=decoded.record_name,
        version=decoded.version,
        record=record,
        problems=problems,
    )


def _opened(
    record: dict[str, Any], unsealer: Unsealer | None, problems: tuple[tuple[str, str], ...]
) -> tuple[dict[str, Any], tuple[tuple[str, str], ...]]:
    """The application with its personal fields opened, or without them and a problem saying why."""
    if unsealer is not None:
        try:
            return open_application(record, unsealer), problems
        except (TrustFailure, DecodeError) as exc:
            detail = exc.detail if isinstance(exc, TrustFailure) else str(exc)
            problem = ("personal", f"does not open for the bureau ({detail})")
    else:
        problem = ("personal", "sealed to the bureau: shown opened only with the bureau's key")
    shown = {name: value for name, value in record.items() if name != PERSONAL_FIELD}
    return shown, (*problems, problem)


def contract_problems(kind: RecordKind, record: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """The contract's problems with a record, by field (empty when it meets the contract)."""
    parse = parse_application if kind is RecordKind.APPLICATION else parse_agreement
    try:
        parse(record)
    except SchemaViolation as exc:
        return exc.problems or (("$", "contract violation"),)
    return ()


def _json_object(data: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _writer(data: bytes) -> tuple[str | None, int | None]:
    """The writer schema named by the header, when it is a known one (the body did not decode)."""
    if len(data) < HEADER_SIZE or data[: len(MAGIC)] != MAGIC:
        return None, None
    writer = registry().by_fingerprint.get(bytes(data[len(MAGIC) : HEADER_SIZE]))
    return (writer.name, writer.version) if writer is not None else (None, None)
