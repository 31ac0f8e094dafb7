"""Prepared messages that must end in the dead letters: malformed bytes, unknown schemas, contract breaks,
empty records (null and zero-length values), oversized ones, and forgeries of the branches' and banks'
traffic (unsigned, altered after signing, signed by an unregistered key or by another party than the record
speaks for, personal fields sealed to a key that is not the bureau's).

They cannot go through `issuance submit applications` (which refuses them), so they are written to
raw_messages.jsonl and published by `issuance submit raw`: bytes verbatim, or a record that is encoded (an
application's personal fields sealed to the bureau) and signed at submit, as the line says (World.emit_raw).
No raw message carries an ID number, name or phone number in clear: bytes that cannot be sealed here (the
generator holds no key) carry a random stand-in where the sealed personal fields would be.
UNPROCESSABLE_RECORD is never generated: it is the safety net behind the contract for a record that meets it
and still cannot be processed, and no valid case reaches it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from issuance.application_wire import CLEAR_FIELDS
from issuance.codec.avro import encode
from producers.world import NEW_CARD, RAW_AGREEMENTS, RAW_APPLICATIONS, World

APPLICATION_RECORD = "ApplicationSubmitted"
AGREEMENT_RECORD = "AgreementSigned"
MARKER = b"\xc3\x01"
SEALED_SIZE = (120, 200)  # bytes of a sealed ApplicantPersonal, about

# Larger than any limit a night is configured with (`max_record_bytes` defaults to 16 KiB): the oversized
# case is a well-formed application padded in its name, so only the size check can set it aside as oversized.
OVERSIZED_BYTES = 48 * 1024


@dataclass(frozen=True, slots=True)
class Raw:
    """One raw message: bytes (`value`, None without a record: a null record) or a `record` encoded at submit,
    its signer ("kind:code", None: unsigned) and its forgery."""

    value: bytes | None = None
    record: dict[str, Any] | None = None
    sender: str | None = None
    forgery: str | None = None


Maker = Callable[[World], Raw]


def _application(w: World) -> dict[str, Any]:
    return w.application(w.person(), NEW_CARD, 1)


def _branch_of(record: dict[str, Any]) -> str:
    return f"branch:{record['branch_code']}"


def _bank_of(record: dict[str, Any]) -> str:
    return f"bank:{record['bank_code']}"


def _stand_in(w: World, record: dict[str, Any]) -> bytes:
    """The v3 message of an application with random bytes where its sealed personal fields would be."""
    wire = {name: record.get(name) for name in CLEAR_FIELDS}
    wire["personal"] = bytes(w.rng.randrange(256) for _ in range(w.rng.randint(*SEALED_SIZE)))
    return encode(APPLICATION_RECORD, wire)


def _json_text(w: World) -> Raw:
    """A branch system that sent its JSON instead of Avro (without the personal fields, which it seals)."""
    record = _application(w)
    clear = {name: record[name] for name in CLEAR_FIELDS if name in record}
    return Raw(json.dumps(clear, ensure_ascii=False).encode(), sender=_branch_of(record))


def _truncated_application(w: World) -> Raw:
    record = _application(w)
    data = _stand_in(w, record)
    return Raw(data[: len(data) - w.rng.randint(1, 8)], sender=_branch_of(record))


def _truncated_agreement(w: World) -> Raw:
    record = _agreement(w)
    data = encode(AGREEMENT_RECORD, record)
    return Raw(data[: len(data) - w.rng.randint(1, 8)], sender=_bank_of(record))


def _no_marker(w: World) -> Raw:
    body = bytes(w.rng.randrange(256) for _ in range(w.rng.randint(12, 80)))
    first = bytes([w.rng.choice([b for b in range(256) if b != MARKER[0]])])
    return Raw(first + body, sender=f"branch:{w.branch_for().branch_code}")


def _fingerprint_of(w: World, data: bytes) -> bytes:
    return MARKER + bytes(w.rng.randrange(256) for _ in range(8)) + data[10:]


def _unknown_fingerprint_application(w: World) -> Raw:
    record = _application(w)
    return Raw(_fingerprint_of(w, _stand_in(w, record)), sender=_branch_of(record))


def _unknown_fingerprint_agreement(w: World) -> Raw:
    record = _agreement(w)
    return Raw(_fingerprint_of(w, encode(AGREEMENT_RECORD, record)), sender=_bank_of(record))


def _bad_id_pattern(w: World) -> Raw:
    record = _application(w)
    record["applicant"]["id_number"] = record["applicant"]["id_number"][: w.rng.randint(8, 16)]
    return Raw(record=record, sender=_branch_of(record))


def _no_offset(w: World) -> Raw:
    record = _application(w)
    record["submitted_at"] = record["submitted_at"][:19]
    return Raw(record=record, sender=_branch_of(record))


def _agreement(w: World) -> dict[str, Any]:
    return w.agreement(_application(w))


def _wrong_record(w: World) -> Raw:
    record = _agreement(w)
    return Raw(encode(AGREEMENT_RECORD, record), sender=_bank_of(record))


def _bad_digest(w: World) -> Raw:
    record = _agreement(w)
    record["document_sha256"] = record["document_sha256"][:40].upper()
    return Raw(encode(AGREEMENT_RECORD, record), sender=_bank_of(record))


def _null(_w: World) -> Raw:
    return Raw(None)


def _zero_length(_w: World) -> Raw:
    return Raw(b"")


def _oversized(w: World) -> Raw:
    record = _application(w)
    record["applicant"]["name"] = record["applicant"]["name"] * (OVERSIZED_BYTES // 3)
    return Raw(record=record, sender=_branch_of(record))


def _unsigned_application(w: World) -> Raw:
    return Raw(record=_application(w))


def _altered_application(w: World) -> Raw:
    record = _application(w)
    return Raw(record=record, sender=_branch_of(record), forgery="ALTERED")


def _agreement_unregistered_key(w: World) -> Raw:
    record = _agreement(w)
    return Raw(record=record, sender=_bank_of(record), forgery="UNREGISTERED_KEY")


def _application_of_another_branch(w: World) -> Raw:
    record = _application(w)
    other = w.rng.choice([b for b in w.catalog.good_branches if b.branch_code != record["branch_code"]])
    return Raw(record=record, sender=f"branch:{other.branch_code}")


def _agreement_of_another_bank(w: World) -> Raw:
    record = _agreement(w)
    other = w.rng.choice([b for b in w.catalog.banks if b.bank_code != record["bank_code"]])
    return Raw(record=record, sender=f"bank:{other.bank_code}")


def _sealed_to_the_sender(w: World) -> Raw:
    record = _application(w)
    return Raw(record=record, sender=_branch_of(record), forgery="SEALED_TO_SENDER")


RAW_KINDS: tuple[tuple[str, str, str, Maker], ...] = (
    ("MALFORMED_JSON_TEXT", RAW_APPLICATIONS, "MALFORMED_MESSAGE", _json_text),
    ("MALFORMED_TRUNCATED", RAW_APPLICATIONS, "MALFORMED_MESSAGE", _truncated_application),
    ("MALFORMED_NO_MARKER", RAW_APPLICATIONS, "MALFORMED_MESSAGE", _no_marker),
    ("UNKNOWN_FINGERPRINT", RAW_APPLICATIONS, "UNKNOWN_SCHEMA", _unknown_fingerprint_application),
    ("SCHEMA_VIOLATION_ID_PATTERN", RAW_APPLICATIONS, "SCHEMA_VIOLATION", _bad_id_pattern),
    ("SCHEMA_VIOLATION_NO_OFFSET", RAW_APPLICATIONS, "SCHEMA_VIOLATION", _no_offset),
    ("SCHEMA_VIOLATION_WRONG_RECORD", RAW_APPLICATIONS, "SCHEMA_VIOLATION", _wrong_record),
    ("MALFORMED_TRUNCATED", RAW_AGREEMENTS, "MALFORMED_MESSAGE", _truncated_agreement),
    ("UNKNOWN_FINGERPRINT", RAW_AGREEMENTS, "UNKNOWN_SCHEMA", _unknown_fingerprint_agreement),
    ("SCHEMA_VIOLATION_DIGEST", RAW_AGREEMENTS, "SCHEMA_VIOLATION", _bad_digest),
    ("EMPTY_NULL", RAW_APPLICATIONS, "EMPTY_MESSAGE", _null),
    ("EMPTY_ZERO_LENGTH", RAW_APPLICATIONS, "EMPTY_MESSAGE", _zero_length),
    ("EMPTY_NULL", RAW_AGREEMENTS, "EMPTY_MESSAGE", _null),
    ("OVERSIZED", RAW_APPLICATIONS, "OVERSIZED_MESSAGE", _oversized),
    ("FORGED_UNSIGNED", RAW_APPLICATIONS, "SIGNATURE_MISSING", _unsigned_application),
    ("FORGED_ALTERED_AFTER_SIGNING", RAW_APPLICATIONS, "SIGNATURE_INVALID", _altered_application),
    ("FORGED_UNREGISTERED_KEY", RAW_AGREEMENTS, "SIGNATURE_INVALID", _agreement_unregistered_key),
    ("FORGED_OTHER_BRANCH", RAW_APPLICATIONS, "SENDER_MISMATCH", _application_of_another_branch),
    ("FORGED_OTHER_BANK", RAW_AGREEMENTS, "SENDER_MISMATCH", _agreement_of_another_bank),
    ("FORGED_SEALED_TO_SENDER", RAW_APPLICATIONS, "SEAL_INVALID", _sealed_to_the_sender),
)


def write_raw_messages(w: World, count: int) -> None:
    """Write `count` raw messages, cycling through every kind, and their expected dead-letter outcome."""
    for index in range(count):
        defect, topic, reason, make = RAW_KINDS[index % len(RAW_KINDS)]
        raw = make(w)
        w.emit_raw(
            topic, reason, defect, value=raw.value, record=raw.record, sender=raw.sender, forgery=raw.forgery
        )
