"""What every long-running bureau consumer writes besides its own rules: its inbox, the outbox and the dead
letters, each in the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from psycopg import Connection
from psycopg.rows import TupleRow

Conn = Connection[TupleRow]


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """An event to publish, written with the change that caused it."""

    event_id: str
    topic: str
    key: bytes | None
    payload: bytes
    event_type: str
    recipient: str  # the party it is for ("bank:ICBC", "bureau:bureau"...): the relay signs to it
    sealed: bool = False  # payload is a vault envelope (the event carries personal data), opened by the relay


def claim_events(conn: Conn, consumer: str, event_ids: Sequence[str]) -> set[str]:
    """Record event ids in the consumer's inbox; return the ones not processed before."""
    if not event_ids:
        return set()
    rows = conn.execute(
        "INSERT INTO inbox (consumer, event_id) SELECT %s, unnest(%s::text[])"
        " ON CONFLICT (consumer, event_id) DO NOTHING RETURNING event_id",
        (consumer, list(event_ids)),
    ).fetchall()
    return {str(event_id) for (event_id,) in rows}


def add_outbox(conn: Conn, events: Sequence[OutboxEvent]) -> None:
    """Queue events for the relay; an event already queued is left as it is."""
    if not events:
        return
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO outbox (event_id, topic, message_key, payload, event_type, payload_encrypted,"
            " recipient) VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (event_id) DO NOTHING",
            [(e.event_id, e.topic, e.key, e.payload, e.event_type, e.sealed, e.recipient) for e in events],
        )


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message a consumer could not use."""

    source_topic: str
    source_partition: int
    source_offset: int
    stage: str
    reason: str
    detail: str
    payload_enc: bytes
    headers_enc: bytes | None = None  # the message's headers (Vault), for a re-drive with its authentication


def add_dead_letter(conn: Conn, letter: DeadLetter) -> bool:
    """Store a dead letter once per source position; True when it is new."""
    row = conn.execute(
        "INSERT INTO dead_letters (source_topic, source_partition, source_offset, stage, reason, detail,"
        " payload_enc, headers_enc) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (source_topic, source_topic_id, source_partition, source_offset)"
        " DO NOTHING RETURNING id",
        (
            letter.source_topic,
            letter.source_partition,
            letter.source_offset,
            letter.stage,
            letter.reason,
            letter.detail,
            letter.payload_enc,
            letter.headers_enc,
        ),
    ).fetchone()
    return row is not None
