"""The bureau's writes for activation results: inbox, application and card state, history, audit, outbox."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from psycopg import Connection
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb

Conn = Connection[TupleRow]


@dataclass(slots=True)
class ActivationTarget:
    """The application a result is about, as locked for this transaction."""

    application_id: str
    application_type: str
    branch_code: str
    bank_code: str
    state: str
    version: int
    bank_refusals: int
    card_number: str | None


@dataclass(frozen=True, slots=True)
class Transition:
    """One state change caused by one event."""

    application_id: str
    from_state: str
    to_state: str
    is_open: bool
    bank_refusals: int
    event_id: str
    detail: str
    account_status: str  # OPEN or FAILED
    card_active: bool
    application_type: str
    card_number: str | None
    # The bank refused for the last time: the application's card still in production is cancelled, so that
    # nothing of it blocks the holder from applying again (its account is FAILED already).
    card_cancelled: bool = False


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """An event to publish, written with the change that caused it."""

    event_id: str
    topic: str
    key: bytes | None
    payload: bytes
    event_type: str
    sealed: bool = False  # payload is a vault envelope (the event carries personal data), opened by the relay


@dataclass(frozen=True, slots=True)
class Audit:
    """One audit-log line."""

    actor: str
    action: str
    entity_id: str
    detail: dict[str, object]


def claim_events(conn: Conn, consumer: str, event_ids: Sequence[str]) -> set[str]:
    """Record event ids in the consumer's inbox; return the ones not processed before."""
    if not event_ids:
        return set()
    rows = conn.execute(
        "INSERT INTO inbox (consumer, event_id) SELECT %s, unnest(%s::text[])"
        " ON CONFLICT (consumer, event_id) DO NOTHING RETURNING event_id",
        (consumer, list(event_ids)),
    ).fetchall()
    return {str(r[0]) for r in rows}


def lock_targets(conn: Conn, application_ids: Sequence[str]) -> dict[str, ActivationTarget]:
    """The applications these results are about, locked until the transaction ends (in a stable order)."""
    rows = conn.execute(
        "SELECT application_id, application_type, branch_code, bank_code, state, version,"
        " bank_refusals,"
        " card_number FROM applications WHERE application_id = ANY(%s) ORDER BY application_id FOR UPDATE",
        (sorted(set(application_ids)),),
    ).fetchall()
    return {str(r[0]): ActivationTarget(*r) for r in rows}


def card_numbers(conn: Conn, application_ids: Sequence[str]) -> dict[str, str]:
    """Cards this system personalized for these applications."""
    rows = conn.execute(
        "SELECT application_id, card_number FROM cards WHERE application_id = ANY(%s)",
        (list(application_ids),),
    ).fetchall()
    return {str(r[0]): str(r[1]) for r in rows}


def apply_transitions(conn: Conn, transitions: Sequence[Transition], stage: str = "activation") -> None:
    """Write the state changes, their history, the card and account status."""
    if not transitions:
        return
    with conn.cursor() as cur:
        cur.executemany(
            "UPDATE applications SET state = %s, is_open = %s, bank_refusals = %s,"
            " version = version + 1,"
            " updated_at = now() WHERE application_id = %s",
            [(t.to_state, t.is_open, t.bank_refusals, t.application_id) for t in transitions],
        )
        cur.executemany(
            "INSERT INTO application_history (application_id, from_state, to_state, stage, event_id, detail)"
            " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            [(t.application_id, t.from_state, t.to_state, stage, t.event_id, t.detail) for t in transitions],
        )
        cur.executemany(
            "UPDATE bank_accounts SET status = %s WHERE application_id = %s",
            [(t.account_status, t.application_id) for t in transitions],
        )
        active = [t for t in transitions if t.card_active]
        cur.executemany(
            "UPDATE cards SET status = 'ACTIVE' WHERE application_id = %s",
            [(t.application_id,) for t in active],
        )
        cur.executemany(
            "UPDATE cards SET status = 'CANCELLED' WHERE application_id = %s AND status = 'IN_PRODUCTION'",
            [(t.application_id,) for t in transitions if t.card_cancelled],
        )
        # An existing card (financial activation) now carries an active financial function.
        existing = [t for t in active if t.application_type == "FINANCIAL_ACTIVATION" and t.card_number]
        cur.executemany(
            "UPDATE person_cards SET financial_status = 'ACTIVE', updated_at = now() WHERE card_number = %s",
            [(t.card_number,) for t in existing],
        )


def add_outbox(conn: Conn, events: Sequence[OutboxEvent]) -> None:
    """Queue events for the relay; an event already queued is left as it is."""
    if not events:
        return
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO outbox (event_id, topic, message_key, payload, event_type, payload_encrypted)"
            " VALUES (%s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (event_id) DO NOTHING",
            [(e.event_id, e.topic, e.key, e.payload, e.event_type, e.sealed) for e in events],
        )


def add_audit(conn: Conn, entries: Sequence[Audit]) -> None:
    """Append to the audit log."""
    if not entries:
        return
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO audit_log (actor, action, entity, entity_id, detail) VALUES (%s, %s,"
            " 'application', %s, %s)",
            [(a.actor, a.action, a.entity_id, Jsonb(a.detail)) for a in entries],
        )


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message this consumer could not read."""

    source_topic: str
    source_partition: int
    source_offset: int
    stage: str
    reason: str
    detail: str
    payload_enc: bytes


def add_dead_letter(conn: Conn, letter: DeadLetter) -> bool:
    """Store a dead letter once per source position; True when it is new."""
    row = conn.execute(
        "INSERT INTO dead_letters (source_topic, source_partition, source_offset, stage, reason, detail,"
        " payload_enc) VALUES (%s, %s, %s, %s, %s, %s, %s)"
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
        ),
    ).fetchone()
    return row is not None
