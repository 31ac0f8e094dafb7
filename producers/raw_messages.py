"""Prepared messages that must end in the dead letters: malformed bytes, unknown schemas, contract breaks,
empty records (null and zero-length values) and oversized ones.

They cannot go through `issuance submit applications` (which refuses them), so they are written as bytes to
raw_messages.jsonl and published verbatim by `issuance submit raw` (`value_b64` null: a null record).
UNPROCESSABLE_RECORD is never generated: it is the safety net behind the contract for a record that meets it
and still cannot be processed, and no valid case reaches it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from issuance.codec.avro import encode
from producers.world import NEW_CARD, Step, World, json_line

APPLICATIONS = "applications"
AGREEMENTS = "agreements"
DEAD_LETTERED = "DEAD_LETTERED"
APPLICATION_RECORD = "ApplicationSubmitted"
AGREEMENT_RECORD = "AgreementSigned"
MARKER = b"\xc3\x01"

# Larger than any limit a night is configured with (`max_record_bytes` defaults to 16 KiB): the oversized
# case is a well-formed application padded in its name, so only the size check can set it aside as oversized.
OVERSIZED_BYTES = 48 * 1024

Maker = Callable[[World], bytes | None]


def _application(w: World) -> dict[str, Any]:
    return w.application(w.person(), NEW_CARD, 1)


def _json_text(w: World) -> bytes:
    return json.dumps(_application(w), ensure_ascii=False).encode()


def _truncated(record_name: str, make: Callable[[World], dict[str, Any]]) -> Maker:
    def build(w: World) -> bytes:
        data = encode(record_name, make(w))
        return data[: len(data) - w.rng.randint(1, 8)]

    return build


def _no_marker(w: World) -> bytes:
    body = bytes(w.rng.randrange(256) for _ in range(w.rng.randint(12, 80)))
    return bytes([w.rng.choice([b for b in range(256) if b != MARKER[0]])]) + body


def _unknown_fingerprint(record_name: str, make: Callable[[World], dict[str, Any]]) -> Maker:
    def build(w: World) -> bytes:
        data = encode(record_name, make(w))
        return MARKER + bytes(w.rng.randrange(256) for _ in range(8)) + data[10:]

    return build


def _bad_id_pattern(w: World) -> bytes:
    record = _application(w)
    record["applicant"]["id_number"] = record["applicant"]["id_number"][: w.rng.randint(8, 16)]
    return encode(APPLICATION_RECORD, record)


def _no_offset(w: World) -> bytes:
    record = _application(w)
    record["submitted_at"] = record["submitted_at"][:19]
    return encode(APPLICATION_RECORD, record)


def _agreement(w: World) -> dict[str, Any]:
    return w.agreement(_application(w))


def _wrong_record(w: World) -> bytes:
    return encode(AGREEMENT_RECORD, _agreement(w))


def _bad_digest(w: World) -> bytes:
    record = _agreement(w)
    record["document_sha256"] = record["document_sha256"][:40].upper()
    return encode(AGREEMENT_RECORD, record)


def _null(_w: World) -> None:
    return None


def _zero_length(_w: World) -> bytes:
    return b""


def _oversized(w: World) -> bytes:
    record = _application(w)
    record["applicant"]["name"] = record["applicant"]["name"] * (OVERSIZED_BYTES // 3)
    return encode(APPLICATION_RECORD, record)


RAW_KINDS: tuple[tuple[str, str, str, Maker], ...] = (
    ("MALFORMED_JSON_TEXT", APPLICATIONS, "MALFORMED_MESSAGE", _json_text),
    ("MALFORMED_TRUNCATED", APPLICATIONS, "MALFORMED_MESSAGE", _truncated(APPLICATION_RECORD, _application)),
    ("MALFORMED_NO_MARKER", APPLICATIONS, "MALFORMED_MESSAGE", _no_marker),
    (
        "UNKNOWN_FINGERPRINT",
        APPLICATIONS,
        "UNKNOWN_SCHEMA",
        _unknown_fingerprint(APPLICATION_RECORD, _application),
    ),
    ("SCHEMA_VIOLATION_ID_PATTERN", APPLICATIONS, "SCHEMA_VIOLATION", _bad_id_pattern),
    ("SCHEMA_VIOLATION_NO_OFFSET", APPLICATIONS, "SCHEMA_VIOLATION", _no_offset),
    ("SCHEMA_VIOLATION_WRONG_RECORD", APPLICATIONS, "SCHEMA_VIOLATION", _wrong_record),
    ("MALFORMED_TRUNCATED", AGREEMENTS, "MALFORMED_MESSAGE", _truncated(AGREEMENT_RECORD, _agreement)),
    ("UNKNOWN_FINGERPRINT", AGREEMENTS, "UNKNOWN_SCHEMA", _unknown_fingerprint(AGREEMENT_RECORD, _agreement)),
    ("SCHEMA_VIOLATION_DIGEST", AGREEMENTS, "SCHEMA_VIOLATION", _bad_digest),
    ("EMPTY_NULL", APPLICATIONS, "EMPTY_MESSAGE", _null),
    ("EMPTY_ZERO_LENGTH", APPLICATIONS, "EMPTY_MESSAGE", _zero_length),
    ("EMPTY_NULL", AGREEMENTS, "EMPTY_MESSAGE", _null),
    ("OVERSIZED", APPLICATIONS, "OVERSIZED_MESSAGE", _oversized),
)


def write_raw_messages(w: World, count: int) -> None:
    """Write `count` raw messages, cycling through every kind, and their expected dead-letter outcome."""
    for index in range(count):
        defect, topic, reason, make = RAW_KINDS[index % len(RAW_KINDS)]
        message_id = f"MSG{w.nights[1].business_date:%Y%m%d}{index + 1:06d}"
        value = make(w)
        w.sinks.raw.write(
            json_line(
                {
                    "message_id": message_id,
                    "topic": topic,
                    "key": message_id,
                    "value_b64": None if value is None else base64.b64encode(value).decode("ascii"),
                    "expected_reason": reason,
                    "defect": defect,
                }
            )
        )
        w.expect("raw_message", None, message_id, 1, defect, [Step(1, DEAD_LETTERED, (reason,))], topic=topic)
