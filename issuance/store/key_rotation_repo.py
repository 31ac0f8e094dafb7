"""Progress of the key rotations at rest (migration 0039), the lock against a night, and the guard that keeps
the night and the consumers from looking anything up while blind indexes are half rotated.

A rotation is one `key_rotations` row per kind and target key; each column it rewrites has a progress row
holding the primary key of the last row done, advanced in the transaction of each batch. A killed rotation is
started again with the same keys and continues from there; every batch is committed on its own.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from psycopg import Connection

from issuance.errors import IssuanceError
from issuance.store import run_repo
from issuance.store.audit import record_action

Conn = Connection[Any]
Kind = Literal["data-key", "blind-index-key"]

DATA_KEY: Kind = "data-key"
BLIND_INDEX_KEY: Kind = "blind-index-key"
FINISH_BLIND_INDEX_ROTATION = "issuance keys rotate --blind-index-key --operator NAME"


class RotationRefused(IssuanceError):
    """A rotation cannot start now (a night runs, a run is in flight, another rotation is unfinished)."""


class BlindIndexRotationUnfinished(IssuanceError):
    """A blind-index rotation stopped half way: lookups would mix the old and the new key."""


@dataclass(frozen=True, slots=True)
class Rotation:
    rotation_id: int
    kind: Kind
    target_key: str
    resumed: bool


@dataclass(frozen=True, slots=True)
class ColumnProgress:
    position: list[str] | None  # primary key of the last row done, as text
    rows_done: int
    finished: bool


def ensure_blind_indexes_settled(conn: Conn) -> None:
    """BlindIndexRotationUnfinished when a blind-index rotation is unfinished (the night and the consumers
    call it before their first lookup)."""
    row = conn.execute(
        "SELECT started_at FROM key_rotations WHERE kind = %s AND finished_at IS NULL", (BLIND_INDEX_KEY,)
    ).fetchone()
    if row is not None:
        raise BlindIndexRotationUnfinished(
            f"a blind-index key rotation started {row[0]:%Y-%m-%d %H:%M %Z} is unfinished: lookups would mix "
            f"the old and the new key; finish it first with `{FINISH_BLIND_INDEX_ROTATION}` (see the runbook)"
        )


@contextmanager
def beside_no_night(conn: Conn) -> Iterator[None]:
    """Hold the nightly lock for the block and refuse while a run is in flight: a night's staging holds
    envelopes and indexes of the keys it started with, and its final transaction writes the same rows. The
    lock is released at the end (a killed rotation releases it with its connection)."""
    try:
        run_repo.lock_nightly(conn)
    except run_repo.NightlyRunning as exc:
        raise RotationRefused("a nightly run is in progress: rotate keys when it has finished") from exc
    try:
        row = conn.execute("SELECT run_id FROM runs WHERE status IN ('PLANNED', 'RUNNING')").fetchone()
        conn.commit()
        if row is not None:
            raise RotationRefused(
                f"run {row[0]} is in flight (a crashed night): finish it with `issuance batch run` first"
            )
        yield
    finally:
        conn.rollback()
        conn.execute("SELECT pg_advisory_unlock(%s)", (run_repo.NIGHTLY_LOCK,))
        conn.commit()


def refuse_beside_lock_holders(conn: Conn, lock_classes: Sequence[int]) -> None:
    """RotationRefused while another session holds an advisory lock of one of these classes."""
    if not lock_classes:
        return
    row = conn.execute(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
        " AND classid = ANY(%s::oid[]) AND pid <> pg_backend_pid()",
        (list(lock_classes),),
    ).fetchone()
    conn.commit()
    if row and row[0]:
        raise RotationRefused(
            f"{row[0]} consumer(s) are running: stop them (they look blind indexes up) and re-run; they will "
            "not start again until the rotation has finished"
        )


def begin(conn: Conn, kind: Kind, target_key: str, *, operator: str) -> Rotation:
    """The unfinished rotation of this kind to the same key (resumed), else a new one; audited, committed.

    An unfinished blind-index rotation to another key is refused (its rows are half under that key); an
    unfinished data-key rotation to another key is closed as superseded: the new one rewrites all it left."""
    row = conn.execute(
        "SELECT rotation_id, target_key FROM key_rotations"
        " WHERE kind = %s AND finished_at IS NULL FOR UPDATE",
        (kind,),
    ).fetchone()
    if row is not None and row[1] == target_key:
        record_action(
            conn, actor=operator, action="keys.rotate.resume", entity="key_rotation", entity_id=str(row[0])
        )
        conn.commit()
        return Rotation(int(row[0]), kind, target_key, resumed=True)
    if row is not None and kind == BLIND_INDEX_KEY:
        conn.rollback()
        raise RotationRefused(
            f"an unfinished blind-index rotation to key {row[1]} is under way: configure that key as "
            "ISSUANCE_BLIND_INDEX_KEY again and re-run to finish it"
        )
    if row is not None:
        conn.execute("UPDATE key_rotations SET finished_at = now() WHERE rotation_id = %s", (row[0],))
        record_action(
            conn,
            actor=operator,
            action="keys.rotate.superseded",
            entity="key_rotation",
            entity_id=str(row[0]),
            detail={"by_target_key": target_key},
        )
    new = conn.execute(
        "INSERT INTO key_rotations (kind, target_key, started_by) VALUES (%s, %s, %s) RETURNING rotation_id",
        (kind, target_key, operator),
    ).fetchone()
    assert new is not None
    record_action(
        conn,
        actor=operator,
        action="keys.rotate.start",
        entity="key_rotation",
        entity_id=str(new[0]),
        detail={"kind": kind, "target_key": target_key},
    )
    conn.commit()
    return Rotation(int(new[0]), kind, target_key, resumed=False)


def column_progress(conn: Conn, rotation_id: int, column: str) -> ColumnProgress:
    """Where the rotation of one column stands (a new progress row when it has not started)."""
    conn.execute(
        "INSERT INTO key_rotation_progress (rotation_id, target_column) VALUES (%s, %s)"
        " ON CONFLICT DO NOTHING",
        (rotation_id, column),
    )
    row = conn.execute(
        "SELECT position, rows_done, finished_at IS NOT NULL FROM key_rotation_progress"
        " WHERE rotation_id = %s AND target_column = %s",
        (rotation_id, column),
    ).fetchone()
    assert row is not None
    return ColumnProgress(list(row[0]) if row[0] is not None else None, int(row[1]), bool(row[2]))


def advance(conn: Conn, rotation_id: int, column: str, position: list[str] | None, rows: int) -> None:
    """Record one batch, in the batch's own transaction."""
    conn.execute(
        "UPDATE key_rotation_progress SET position = %s, rows_done = rows_done + %s, batches = batches + 1"
        " WHERE rotation_id = %s AND target_column = %s",
        (position, rows, rotation_id, column),
    )


def finish_column(conn: Conn, rotation_id: int, column: str) -> None:
    conn.execute(
        "UPDATE key_rotation_progress SET finished_at = now() WHERE rotation_id = %s AND target_column = %s",
        (rotation_id, column),
    )


def finish(conn: Conn, rotation: Rotation, *, operator: str, rewritten: dict[str, int]) -> None:
    """Close the rotation (the guard lets the night and the consumers start again); audited, committed."""
    conn.execute(
        "UPDATE key_rotations SET finished_at = now() WHERE rotation_id = %s", (rotation.rotation_id,)
    )
    record_action(
        conn,
        actor=operator,
        action="keys.rotate.finish",
        entity="key_rotation",
        entity_id=str(rotation.rotation_id),
        detail={"kind": rotation.kind, "target_key": rotation.target_key, "rewritten": rewritten},
    )
    conn.commit()
