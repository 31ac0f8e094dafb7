"""The one place a MessageDeadLettered event is built, so that every dead-letter event is bounded alike.

A dead-letter event carries at most EXCERPT_BYTES of the original message, with the whole message's size and
SHA-256 and a locator of the `dead_letters` row that keeps all of it (encrypted). However large the record
that could not be read, its event stays far below any broker's message size limit.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from issuance.domain.model import DeadLetterReason
from issuance.messages import MessageDeadLettered, dead_letter_event_id

# The first bytes of the original message a dead-letter event carries (enough to recognise a record; every
# contract record is a few hundred bytes). Part of the MessageDeadLettered contract: see schemas/README.md.
EXCERPT_BYTES = 16 * 1024
# What `detail` may hold, in characters: it names the fields that are wrong, never their values.
DETAIL_CHARS = 2_000
LOCATION_PREFIX = "dead_letters:"


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
    at: datetime,
    run_id: int | None = None,
    topic_id: str = "",
) -> MessageDeadLettered:
    """The event of one dead letter: an excerpt of `payload` (the whole message) with its size and digest."""
    return MessageDeadLettered(
        event_id=dead_letter_event_id(source_topic, partition, offset, topic_id),
        source_topic=source_topic,
        partition=partition,
        offset=offset,
        stage=stage,
        reason=reason,
        detail=bounded_detail(detail),
        payload=payload[:EXCERPT_BYTES],
        dead_lettered_at=at,
        run_id=run_id,
        payload_size=len(payload),
        payload_sha256=hashlib.sha256(payload).hexdigest(),
        payload_location=payload_location(source_topic, partition, offset, topic_id),
    )
