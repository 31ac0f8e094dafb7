"""The one place a MessageDeadLettered event is built, so that every dead-letter event is bounded alike.

A dead-letter event carries at most EXCERPT_BYTES of the original message, with the whole message's size and
SHA-256 and a locator of the `dead_letters` row that keeps all of it (encrypted). However large the record
that could not be read, its event stays far below any broker's message size limit.

The event's `payload` is sealed to the bureau (`DeadLetterOriginal`: the excerpt and the headers the message
came with, the event id as associated data): the dead-letter topic holds nothing in clear, whoever reads it,
and only the bureau's own keys open it (`open_original`). The headers are kept so that a re-driven message is
still authenticated by its original sender (its channel headers and MAC cover exactly its key and value).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from issuance.domain.model import DeadLetterReason
from issuance.messages import MessageDeadLettered, dead_letter_event_id
from issuance.trust.sealing import Sealer, Unsealer, open_personal, seal_personal

# The first bytes of the original message a dead-letter event carries (enough to recognise a record; every
# contract record is a few hundred bytes). Part of the MessageDeadLettered contract: see schemas/README.md.
EXCERPT_BYTES = 16 * 1024
# What `detail` may hold, in characters: it names the fields that are wrong, never their values.
DETAIL_CHARS = 2_000
LOCATION_PREFIX = "dead_letters:"
SEALED_RECORD = "DeadLetterOriginal"  # schemas/DeadLetterOriginal.v1.avsc: what `payload` seals

Headers = Sequence[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class Original:
    """What a dead-letter event's sealed payload holds: the message's first bytes and its headers."""

    excerpt: bytes
    headers: tuple[tuple[str, bytes], ...]


def encode_headers(headers: Headers | None) -> bytes:
    """A message's headers as bytes to keep beside its payload (JSON of [name, base64 value] pairs)."""
    pairs = [[name, base64.b64encode(bytes(value or b"")).decode("ascii")] for name, value in headers or ()]
    return json.dumps(pairs, separators=(",", ":")).encode()


def decode_headers(data: bytes | None) -> tuple[tuple[str, bytes], ...]:
    """The headers kept by `encode_headers` (none for a dead letter kept before headers were)."""
    if not data:
        return ()
    return tuple((str(name), base64.b64decode(value)) for name, value in json.loads(data))


def payload_location(source_topic: str, partition: int, offset: int, topic_id: str = "") -> str:
    """The stable locator of a dead letter's whole payload: its `dead_letters` row, by source position (with
    `@topic_id` when the broker reports one: a topic created again starts its offsets at 0)."""
    return f"{LOCATION_PREFIX}{source_topic}/{partition}/{offset}" + (f"@{topic_id}" if topic_id else "")


def parse_payload_location(location: str) -> tuple[str, int, int, str]:
    """(source_topic, partition, offset, topic_id) of a locator made by `payload_location`."""
    if not location.startswith(LOCATION_PREFIX):
        raise ValueError("not a dead-letter payload location")
    position, _, topic_id = location[len(LOCATION_PREFIX) :].partition("@")
    topic, partition, offset = position.rsplit("/", 2)
    return topic, int(partition), int(offset), topic_id


def bounded_detail(detail: str) -> str:
    """The detail cut to DETAIL_CHARS (a schema violation may list many fields)."""
    return detail if len(detail) <= DETAIL_CHARS else detail[: DETAIL_CHARS - 1] + "…"


def dead_letter_event(
    *,
    source_topic: str,
    partition: int,
    offset: int,
    stage: str,
    reason: DeadLetterReason,
    detail: str,
    payload: bytes,
    headers: Headers | None,
    sealer: Sealer,
    at: datetime,
    run_id: int | None = None,
    topic_id: str = "",
) -> MessageDeadLettered:
    """The event of one dead letter: an excerpt of `payload` (the whole message) and its `headers` sealed by
    `sealer` (to the bureau; one Sealer serves a whole batch), with the message's size and digest."""
    event_id = dead_letter_event_id(source_topic, partition, offset, topic_id)
    original = {
        "excerpt": payload[:EXCERPT_BYTES],
        "headers": [{"name": name, "value": bytes(value or b"")} for name, value in headers or ()],
    }
    return MessageDeadLettered(
        event_id=event_id,
        source_topic=source_topic,
        partition=partition,
        offset=offset,
        stage=stage,
        reason=reason,
        detail=bounded_detail(detail),
        payload=seal_personal(SEALED_RECORD, original, sealer, aad=event_id),
        dead_lettered_at=at,
        run_id=run_id,
        payload_size=len(payload),
        payload_sha256=hashlib.sha256(payload).hexdigest(),
        payload_location=payload_location(source_topic, partition, offset, topic_id),
    )


def open_original(event: MessageDeadLettered, unsealer: Unsealer) -> Original:
    """The excerpt and headers sealed in a dead-letter event (TrustFailure SEAL_INVALID: not the bureau's)."""
    record = open_personal(SEALED_RECORD, event.payload, unsealer, aad=event.event_id)
    headers = tuple((str(h["name"]), bytes(h["value"])) for h in record["headers"])
    return Original(bytes(record["excerpt"]), headers)
