"""What operators read about the outbox: the events set aside because the broker will not take them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg.rows import class_row

from issuance.store.run_repo import Conn


@dataclass(frozen=True, slots=True)
class SetAsideEvent:
    """An event never published: what it was, where it was going and why the broker would not take it."""

    event_id: str
    event_type: str
    topic: str
    run_id: int | None
    size: int  # bytes stored (a sealed payload is larger than the message it holds)
    created_at: datetime
    set_aside_at: datetime
    reason: str


def set_aside_count(conn: Conn, run_id: int | None = None) -> int:
    """Events set aside (of one run, or all)."""
    row = conn.execute(
        "SELECT count(*) FROM outbox WHERE set_aside_at IS NOT NULL"
        " AND (%(run)s::bigint IS NULL OR run_id = %(run)s)",
        {"run": run_id},
    ).fetchone()
    if not conn.autocommit:
        conn.commit()
    return int(row[0]) if row else 0


def set_aside_events(conn: Conn, limit: int = 50) -> list[SetAsideEvent]:
    """The newest events set aside, without their payloads."""
    with conn.cursor(row_factory=class_row(SetAsideEvent)) as cur:
        return cur.execute(
            "SELECT event_id, event_type, topic, run_id, octet_length(payload) AS size, created_at,"
            " set_aside_at, set_aside_reason AS reason FROM outbox WHERE set_aside_at IS NOT NULL"
            " ORDER BY seq DESC LIMIT %s",
            (limit,),
        ).fetchall()


def release_set_aside(conn: Conn, event_ids: list[str]) -> list[str]:
    """Clear the set-aside mark of these events (the relay sends them again); the ids that were set aside."""
    rows = conn.execute(
        "UPDATE outbox SET set_aside_at = NULL, set_aside_reason = NULL"
        " WHERE event_id = ANY(%s) AND set_aside_at IS NOT NULL AND published_at IS NULL RETURNING event_id",
        (event_ids,),
    ).fetchall()
    return sorted(str(event_id) for (event_id,) in rows)
