"""Dead-letter events are bounded whatever the record: an excerpt, the size, digest and row of the whole; the
excerpt and the message's headers are sealed to the bureau (nothing in clear on the dead-letter topic)."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from issuance.dead_letter_events import (
    DETAIL_CHARS,
    EXCERPT_BYTES,
    dead_letter_event,
    decode_headers,
    encode_headers,
    open_original,
    parse_payload_location,
    payload_location,
)
from issuance.domain.model import DeadLetterReason
from issuance.kafka.outbox_relay import DEFAULT_MAX_MESSAGE_BYTES, record_size
from issuance.messages import MessageDeadLettered, dead_letter_event_id
from issuance.trust.errors import TrustFailure
from issuance.trust.keys import Directory, PartyKeys
from issuance.trust.parties import BUREAU, branch
from issuance.trust.sealing import Sealer, Unsealer

AT = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)
BUREAU_KEYS = PartyKeys.generate(BUREAU)
OTHER = PartyKeys.generate(branch("BR-1"))
DIRECTORY = Directory([BUREAU_KEYS.public(), OTHER.public()])
HEADERS = [("ssc-channel", b"\x01channel"), ("ssc-mac", b"\x02" * 33)]


def letter(
    payload: bytes, detail: str = "not an Avro message", headers: list[tuple[str, bytes]] | None = None
) -> MessageDeadLettered:
    return dead_letter_event(
        source_topic="t.branch.applications",
        partition=3,
        offset=41,
        stage="decode",
        reason=DeadLetterReason.MALFORMED_MESSAGE,
        detail=detail,
        payload=payload,
        headers=HEADERS if headers is None else headers,
        sealer=Sealer.to(DIRECTORY, BUREAU),
        at=AT,
        run_id=7,
    )


@pytest.mark.parametrize("size", [0, 1, EXCERPT_BYTES, EXCERPT_BYTES + 1, 20 * 1024 * 1024])
def test_the_event_carries_an_excerpt_and_the_whole_payloads_size_and_digest(size: int) -> None:
    payload = bytes(i % 251 for i in range(size))
    event = letter(payload)
    original = open_original(event, Unsealer(BUREAU_KEYS))
    assert original.excerpt == payload[:EXCERPT_BYTES]
    assert original.headers == tuple(HEADERS)
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


def test_the_payload_is_sealed_to_the_bureau_alone() -> None:
    secret = b"110101198001011234 Zhang San"
    event = MessageDeadLettered.from_bytes(letter(secret).to_bytes())
    assert secret not in event.to_bytes() and b"Zhang" not in event.payload
    assert open_original(event, Unsealer(BUREAU_KEYS)).excerpt == secret
    with pytest.raises(TrustFailure) as refused:
        open_original(event, Unsealer(OTHER))
    assert refused.value.reason is DeadLetterReason.SEAL_INVALID
    with pytest.raises(TrustFailure):  # bound to its own event: not opened as another's
        open_original(replace(event, event_id="another-event"), Unsealer(BUREAU_KEYS))


def test_headers_round_trip_through_their_kept_form() -> None:
    assert decode_headers(encode_headers(HEADERS)) == tuple(HEADERS)
    assert decode_headers(None) == () and decode_headers(encode_headers([])) == ()
