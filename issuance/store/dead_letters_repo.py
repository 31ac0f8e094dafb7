"""Dead letters for their operators: list and read them, record a re-drive or a hand-off, in the caller's
transaction (the audit row commits with the change it records)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from psycopg import Connection, sql
from psycopg.rows import TupleRow, class_row

Conn = Connection[TupleRow]


class DeadLetterStatus(StrEnum):
    """Where an operator left a dead letter."""

    OPEN = "OPEN"
    REDRIVEN = "REDRIVEN"  # its record was published again to its source topic
    HANDLED = "HANDLED"  # closed without a re-drive, with a reason


@dataclass(frozen=True, slots=True)
class DeadLetterRow:
    """A dead letter without its payload."""

    id: int
    created_at: datetime
    run_id: int | None
    source_topic: str
    source_partition: int
    source_offset: int
    stage: str
    reason: str
    detail: str
    branch_code: str | None
    status: str
    closed_by: str | None
    closed_at: datetime | None
    handled_reason: str | None


@dataclass(frozen=True, slots=True)
class RedriveRow:
    """One re-drive: who, when, and where the published record went."""

    id: int
    at: datetime
    operator: str
    repaired: bool
    record_id: str | None
    topic: str
    topic_partition: int
    topic_offset: int


@dataclass(frozen=True, slots=True)
class Filters:
    """What `dead-letters list` narrows by; None is no filter."""

    run_id: int | None = None
    topic: str | None = None
    reason: str | None = None
    branch_code: str | None = None
    status: DeadLetterStatus | None = None


_COLUMNS = sql.SQL(
    "id, created_at, run_id, source_topic, source_partition, source_offset, stage, reason, detail,"
    " branch_code, status, closed_by, closed_at, handled_reason"
)


def page(conn: Conn, filters: Filters, limit: int, before_id: int | None = None) -> list[DeadLetterRow]:
    """The newest `limit` dead letters matching `filters`, older than `before_id` if given (keyset paging)."""
    conditions: list[sql.Composable] = [sql.SQL("TRUE")]
    for column, value in (
        ("run_id", filters.run_id),
        ("source_topic", filters.topic),
        ("reason", filters.reason),
        ("branch_code", filters.branch_code),
        ("status", filters.status.value if filters.status else None),
    ):
        if value is not None:
            conditions.append(sql.SQL("{} = {}").format(sql.Identifier(column), sql.Literal(value)))
    if before_id is not None:
        conditions.append(sql.SQL("id < {}").format(sql.Literal(before_id)))
    query = sql.SQL("SELECT {} FROM dead_letters WHERE {} ORDER BY id DESC LIMIT {}").format(
        _COLUMNS, sql.SQL(" AND ").join(conditions), sql.Literal(limit)
    )
    with conn.cursor(row_factory=class_row(DeadLetterRow)) as cur:
        return cur.execute(query).fetchall()


def get(conn: Conn, dead_letter_id: int, *, for_update: bool = False) -> DeadLetterRow | None:
    """One dead letter, locked against a concurrent re-drive or hand-off when `for_update`."""
    query = sql.SQL("SELECT {} FROM dead_letters WHERE id = {}{}").format(
        _COLUMNS, sql.Literal(dead_letter_id), sql.SQL(" FOR UPDATE" if for_update else "")
    )
    with conn.cursor(row_factory=class_row(DeadLetterRow)) as cur:
        return cur.execute(query).fetchone()


def payload_envelope(conn: Conn, dead_letter_id: int) -> bytes:
    """The sealed original bytes of a dead letter (decrypt with the Vault)."""
    row = conn.execute("SELECT payload_enc FROM dead_letters WHERE id = %s", (dead_letter_id,)).fetchone()
    if row is None:
        raise LookupError(dead_letter_id)
    (envelope,) = row
    return bytes(envelope)


def headers_envelope(conn: Conn, dead_letter_id: int) -> bytes | None:
    """The sealed headers the dead letter's message came with (decrypt with the Vault), None when none were
    kept."""
    row = conn.execute("SELECT headers_enc FROM dead_letters WHERE id = %s", (dead_letter_id,)).fetchone()
    return None if row is None or row[0] is None else bytes(row[0])


def redrives(conn: Conn, dead_letter_id: int) -> list[RedriveRow]:
    """Every re-drive of a dead letter, oldest first."""
    with conn.cursor(row_factory=class_row(RedriveRow)) as cur:
        return cur.execute(
            "SELECT id, at, operator, repaired, record_id, topic, topic_partition, topic_offset"
            " FROM dead_letter_redrives WHERE dead_letter_id = %s ORDER BY id",
            (dead_letter_id,),
        ).fetchall()


def record_redrive(
    conn: Conn,
    dead_letter_id: int,
    *,
    operator: str,
    repaired: bool,
    record_id: str | None,
    topic: str,
    partition: int,
    offset: int,
) -> RedriveRow:
    """Keep a re-drive and mark the dead letter REDRIVEN (closed by its first re-drive)."""
    with conn.cursor(row_factory=class_row(RedriveRow)) as cur:
        redrive = cur.execute(
            "INSERT INTO dead_letter_redrives"
            " (dead_letter_id, operator, repaired, record_id, topic, topic_partition, topic_offset)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " RETURNING id, at, operator, repaired, record_id, topic, topic_partition, topic_offset",
            (dead_letter_id, operator, repaired, record_id, topic, partition, offset),
        ).fetchone()
    assert redrive is not None
    conn.execute(
        "UPDATE dead_letters SET status = %(redriven)s, handled_reason = NULL,"
        " closed_by = CASE WHEN status = %(redriven)s THEN closed_by ELSE %(operator)s END,"
        " closed_at = CASE WHEN status = %(redriven)s THEN closed_at ELSE %(at)s END"
        " WHERE id = %(id)s",
        {
            "redriven": DeadLetterStatus.REDRIVEN.value,
            "operator": operator,
            "at": redrive.at,
            "id": dead_letter_id,
        },
    )
    return redrive


def mark_handled(conn: Conn, dead_letter_id: int, *, operator: str, reason: str) -> None:
    """Close an open dead letter without a re-drive."""
    conn.execute(
        "UPDATE dead_letters SET status = %s, closed_by = %s, closed_at = now(), handled_reason = %s"
        " WHERE id = %s AND status = %s",
        (DeadLetterStatus.HANDLED.value, operator, reason, dead_letter_id, DeadLetterStatus.OPEN.value),
    )
