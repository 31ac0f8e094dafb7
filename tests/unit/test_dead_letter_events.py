"""Dead-letter events are bounded whatever the record: an excerpt, the size, digest and row of the whole."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from issuance.dead_letter_events import (
    DETAIL_CHARS,
    EXCERPT_BYTES,
    dead_letter_event,
    parse_payload_location,
    payload_location,
)
from issuance.domain.model import DeadLetterReason
from issuance.kafka.outbox_relay import DEFAULT_MAX_MESSAGE_BYTES, record_size
from issuance.messages import MessageDeadLettered, dead_letter_event_id

AT = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)


def letter(payload: bytes, detail: str = "not an Avro message") -> MessageDeadLettered:
    return dead_letter_event(
        source_topic="t.branch.applications",
        partition=3,
        offset=41,
        stage="decode",
        reason=DeadLetterReason.MALFORMED_MESSAGE,
        detail=detail,
        payload=payload,
        at=AT,
        run_id=7,
    )


@pytest.mark.parametrize("size", [0, 1, EXCERPT_BYTES, EXCERPT_BYTES + 1, 20 * 1024 * 1024])
def test_the_event_carries_an_excerpt_and_the_whole_payloads_size_and_digest(size: int) -> None:
    payload = bytes(i % 251 for i in range(size))
    event = letter(payload)
    assert event.payload == payload[:EXCERPT_BYTES]
    assert event.payload_size == size
    assert event.payload_sha256 == hashlib.sha256(payload).hexdigest()
    assert event.event_id == dead_letter_event_id("t.branch.applications", 3, 41)
    encoded = event.to_bytes()
    assert record_size(None, encoded) < DEFAULT_MAX_MESSAGE_BYTES
    assert MessageDeadLettered.from_bytes(encoded) == event


def test_the_location_names_the_dead_letters_row_and_reads_back() -> None:
    event = letter(b"x")
    assert event.payload_location == "dead_letters:t.branch.applications/3/41"
    assert parse_payload_location(payload_location("a/b.c", 0, 12)) == ("a/b.c", 0, 12, "")
    assert parse_payload_location(payload_location("a.b", 1, 7, "T-1")) == ("a.b", 1, 7, "T-1")
    with pytest.raises(ValueError):
        parse_payload_location("s3://bucket/key")


def test_a_long_detail_is_cut() -> None:
    event = letter(b"x", detail="field: wrong; " * 1000)
    assert len(event.detail) == DETAIL_CHARS and event.detail.endswith("…")
    assert letter(b"x", "short").detail == "short"
