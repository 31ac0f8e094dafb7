"""The nightly runs' own tables: runs and their plans, checkpoints, and the run-scoped staging tables."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from psycopg import Connection, sql
from psycopg.rows import TupleRow, class_row
from psycopg.types.json import Jsonb

from issuance.domain.lifecycle import CardStatus
from issuance.errors import IssuanceError
from issuance.store.db import copy_rows

Conn = Connection[TupleRow]

STAGED_APPLICATION_COLUMNS = (
    "run_id",
    "source_topic",
    "source_partition",
    "source_offset",
    "application_id",
    "application_type",
    "branch_code",
    "bank_code",
    "channel",
    "person_key",
    "id_number_enc",
    "name_enc",
    "phone_enc",
    "guardian_id_enc",
    "card_number",
    "materials",
    "submitted_at",
    "submitted_utc_offset",
    "area_code",
    "reasons",
    "slot",
    "content_digest",
)
STAGED_AGREEMENT_COLUMNS = (
    "run_id",
    "source_topic",
    "source_partition",
    "source_offset",
    "agreement_id",
    "application_id",
    "bank_code",
    "terms_version",
    "document_sha256",
    "signed_at",
    "channel",
)
STAGED_DEAD_LETTER_COLUMNS = (
    "run_id",
    "source_topic",
    "source_partition",
    "source_offset",
    "stage",
    "reason",
    "detail",
    "payload_enc",
    "branch_code",
    "headers_enc",
)
STAGING_TABLES = {
    "staged_applications": STAGED_APPLICATION_COLUMNS,
    "staged_agreements": STAGED_AGREEMENT_COLUMNS,
    "staged_dead_letters": STAGED_DEAD_LETTER_COLUMNS,
}


@dataclass(frozen=True, slots=True)
class Run:
    """A nightly run as stored: its business date, its plan and how far it got."""

    run_id: int
    business_date: date
    status: str
    plan: list[dict[str, Any]]
    staged: bool
    counters: dict[str, Any] | None
    first_slot: int  # the slot of the plan's first application record (see migration 0009)


def _run(row: Sequence[Any]) -> Run:
    return Run(int(row[0]), row[1], str(row[2]), list(row[3]), row[4] is not None, row[5], int(row[6] or 0))


_RUN_COLUMNS = "run_id, business_date, status, plan, staged_at, counters, first_slot"
SLOT_COUNTER = "slot"


NIGHTLY_LOCK = 0x155C_0001  # advisory lock key: one nightly process at a time


class NightlyRunning(IssuanceError):
    """Another `issuance batch run` holds the nightly lock."""


def lock_nightly(conn: Conn) -> None:
    """Hold the nightly lock for this session (released when the connection ends, also by a crash)."""
    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (NIGHTLY_LOCK,)).fetchone()
    if not (row and row[0]):
        raise NightlyRunning("another nightly run is in progress (it holds the nightly lock); wait for it")


def open_run(conn: Conn) -> Run | None:
    """The run in flight (PLANNED or RUNNING), locked for this transaction, if a crashed one is left."""
    row = conn.execute(
        f"SELECT {_RUN_COLUMNS} FROM runs WHERE status IN ('PLANNED', 'RUNNING') FOR UPDATE"
    ).fetchone()
    return _run(row) if row else None


def last_succeeded_business_date(conn: Conn) -> date | None:
    """The business date of the latest successful run, if any."""
    row = conn.execute(
        "SELECT business_date FROM runs WHERE status = 'SUCCEEDED' ORDER BY run_id DESC LIMIT 1"
    ).fetchone()
    return row[0] if row else None


def get_run(conn: Conn, run_id: int) -> Run:
    row = conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = %s", (run_id,)).fetchone()
    if row is None:
        raise LookupError(f"no run {run_id}")
    return _run(row)


def create_run(conn: Conn, business_date: date, plan: list[dict[str, Any]], slots: int) -> Run:
    """A new PLANNED run with its plan and `slots` slots reserved (one per application record planned); the
    unique index allows one run in flight."""
    first_slot = reserve_slots(conn, slots)
    row = conn.execute(
        "INSERT INTO runs (business_date, status, plan, first_slot) VALUES (%s, 'PLANNED', %s, %s)"
        f" RETURNING {_RUN_COLUMNS}",
        (business_date, Jsonb(plan), first_slot),
    ).fetchone()
    assert row is not None
    return _run(row)


def reserve_slots(conn: Conn, count: int) -> int:
    """The first of `count` consecutive slots, taken from the slot counter (locked until commit)."""
    row = conn.execute(
        "INSERT INTO allocation_counters (name, next_value) VALUES (%(name)s, 1 + %(n)s)"
        " ON CONFLICT (name) DO UPDATE SET next_value = allocation_counters.next_value + %(n)s"
        " RETURNING next_value - %(n)s",
        {"name": SLOT_COUNTER, "n": count},
    ).fetchone()
    assert row is not None
    return int(row[0])


def mark_running(conn: Conn, run_id: int) -> None:
    conn.execute("UPDATE runs SET status = 'RUNNING' WHERE run_id = %s", (run_id,))


def mark_staged(conn: Conn, run_id: int, records_read: int, counters: dict[str, Any]) -> None:
    conn.execute(
        "UPDATE runs SET staged_at = now(), records_read = %s, counters = %s WHERE run_id = %s",
        (records_read, Jsonb(counters), run_id),
    )


def finish_run(
    conn: Conn, run_id: int, *, status: str, balanced: bool, reconciliation: dict[str, Any], error: str | None
) -> None:
    conn.execute(
        "UPDATE runs SET status = %s, finished_at = now(), balanced = %s, reconciliation = %s, error = %s"
        " WHERE run_id = %s",
        (status, balanced, Jsonb(reconciliation), error, run_id),
    )


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Where the next run starts reading one partition, in the log identified by its topic and cluster ids."""

    topic: str
    partition: int
    next_offset: int
    topic_id: str | None
    cluster_id: str | None
    run_id: int | None  # the run that advanced it (None: set by a re-baseline)
    updated_at: datetime


def checkpoints(conn: Conn, topics: Collection[str]) -> dict[tuple[str, int], Checkpoint]:
    """Where the next run starts reading, per (topic, partition)."""
    with conn.cursor(row_factory=class_row(Checkpoint)) as cur:
        rows = cur.execute(
            "SELECT topic, partition, next_offset, topic_id, cluster_id, run_id, updated_at FROM checkpoints"
            " WHERE topic = ANY(%s) ORDER BY topic, partition",
            (list(topics),),
        ).fetchall()
    return {(cp.topic, cp.partition): cp for cp in rows}


def advance_checkpoints(conn: Conn, run_id: int, plan: Iterable[dict[str, Any]]) -> None:
    """Move every planned partition's checkpoint to the plan's end (inside the run's final transaction), with
    the topic and cluster ids the plan was made in."""
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO checkpoints (topic, partition, next_offset, run_id, topic_id, cluster_id)"
            " VALUES (%s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset,"
            " run_id = excluded.run_id, topic_id = excluded.topic_id, cluster_id = excluded.cluster_id,"
            " updated_at = now()",
            [
                (p["topic"], p["partition"], p["end"], run_id, p.get("topic_id"), p.get("cluster_id"))
                for p in plan
            ],
        )


def rebaseline_checkpoint(
    conn: Conn, topic: str, partition: int, next_offset: int, topic_id: str | None, cluster_id: str | None
) -> None:
    """Point one partition's checkpoint at `next_offset` of the log the broker holds now (operator action)."""
    conn.execute(
        "INSERT INTO checkpoints (topic, partition, next_offset, run_id, topic_id, cluster_id)"
        " VALUES (%s, %s, %s, NULL, %s, %s)"
        " ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset, run_id = NULL,"
        " topic_id = excluded.topic_id, cluster_id = excluded.cluster_id, updated_at = now()",
        (topic, partition, next_offset, topic_id, cluster_id),
    )


def drop_checkpoint(conn: Conn, topic: str, partition: int) -> None:
    """Forget a partition the broker no longer has (its topic now has fewer partitions)."""
    conn.execute("DELETE FROM checkpoints WHERE topic = %s AND partition = %s", (topic, partition))


def abandon_run(conn: Conn, run_id: int, error: str) -> None:
    """Close a run left in flight that can never be resumed: FAILED, nothing of it applied."""
    conn.execute(
        "UPDATE runs SET status = 'FAILED', finished_at = now(), balanced = false, error = %s"
        " WHERE run_id = %s AND status IN ('PLANNED', 'RUNNING')",
        (error, run_id),
    )


def clear_staging(conn: Conn) -> None:
    """Empty the staging tables: before a run stages (a crashed attempt's rows are staged again from Kafka)
    and once its commit has applied them. One run is in flight at a time, so they hold nothing else worth
    keeping (a failed run's rows at most)."""
    tables = [
        *STAGING_TABLES,
        "staged_chunks",
        "staged_personalized",
        "staged_cards",
        "staged_agreement_decisions",
    ]
    conn.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(map(sql.Identifier, tables))))


def replace_chunk(
    conn: Conn,
    run_id: int,
    topic: str,
    partition: int,
    start: int,
    end: int,
    rows: dict[str, Sequence[Sequence[Any]]],
) -> None:
    """Replace one chunk's staged rows in one transaction: a retried bundle never adds rows twice."""
    with conn.transaction():
        for table, columns in STAGING_TABLES.items():
            conn.execute(
                sql.SQL(
                    "DELETE FROM {} WHERE run_id = %s AND source_topic = %s AND source_partition = %s"
                    " AND source_offset >= %s AND source_offset < %s"
                ).format(sql.Identifier(table)),
                (run_id, topic, partition, start, end),
            )
            table_rows = rows.get(table, ())
            if table_rows:
                copy_rows(conn, table, columns, table_rows)
        conn.execute(
            "INSERT INTO staged_chunks (run_id, source_topic, source_partition, start_offset, applications,"
            " agreements, dead_letters) VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (run_id, source_topic, source_partition, start_offset) DO UPDATE SET"
            " applications = excluded.applications, agreements = excluded.agreements,"
            " dead_letters = excluded.dead_letters",
            (run_id, topic, partition, start, *(len(rows.get(table, ())) for table in STAGING_TABLES)),
        )


def staged_counts(conn: Conn, run_id: int) -> dict[str, int]:
    """How many rows each staging table holds for the run (progress while the pipeline runs)."""
    row = conn.execute(
        "SELECT coalesce(sum(applications), 0), coalesce(sum(agreements), 0), coalesce(sum(dead_letters), 0)"
        " FROM staged_chunks WHERE run_id = %s",
        (run_id,),
    ).fetchone()
    assert row is not None
    return {table: int(count) for table, count in zip(STAGING_TABLES, row, strict=True)}


def issued_card_holders(conn: Conn, person_keys: Collection[bytes]) -> set[bytes]:
    """The persons among `person_keys` holding a card this system issued that is not cancelled."""
    if not person_keys:
        return set()
    rows = conn.execute(
        "SELECT DISTINCT person_key FROM cards WHERE person_key = ANY(%b) AND status <> %b",
        (list(person_keys), CardStatus.CANCELLED.value),
        binary=True,
    )
    return {bytes(r[0]) for r in rows}
