"""Verification of the audit log's hash chain (migration 0037), recomputed here independently of the database.

The database writes each row's hash; this module recomputes every hash from the row's fields and follows the
links (each row stores its predecessor's hash) to say which rows were altered, removed or inserted since
they were written. What a chain cannot show by itself is the removal of the newest rows together with the
chain head: the head printed by `issuance audit verify`, kept elsewhere and given back with `--expect-head`,
does."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from psycopg import Connection, IsolationLevel

from issuance.errors import InputError

GENESIS = bytes(32)  # the previous hash of the first row
VERSION_TAG = "ssc-audit-v1"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Rows remembered to recognise where a run of inserted rows ends, and how far a removal may reach when the
# rows after it were renumbered; longer runs are still reported, as altered rows.
WINDOW = 4096
RENUMBER_REACH = 64

Kind = Literal["altered", "removed", "inserted"]


@dataclass(frozen=True, slots=True)
class ChainRow:
    """The stored fields of one audit row (detail as PostgreSQL's jsonb text)."""

    seq: int
    prev_hash: bytes
    row_hash: bytes
    at: datetime
    actor: str
    action: str
    entity: str
    entity_id: str
    detail: str


@dataclass(frozen=True, slots=True)
class Problem:
    """A row that is not as it was written: `seq` as stored (for `removed`: the missing number; 0 for a row
    without one)."""

    seq: int
    kind: Kind
    detail: str


@dataclass(frozen=True, slots=True)
class Head:
    """The newest row of the chain: an operator keeps `SEQ:HASH` outside the database."""

    seq: int
    hash: bytes

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash.hex()}"

    @classmethod
    def parse(cls, text: str) -> Head:
        seq, sep, digest = text.strip().partition(":")
        try:
            if not sep or len(digest) != 64:
                raise ValueError(text)
            return cls(int(seq), bytes.fromhex(digest))
        except ValueError as exc:
            raise InputError("--expect-head: give SEQ:HASH as printed by `issuance audit verify`") from exc


@dataclass(slots=True)
class Verdict:
    """What `verify` found: every problem, the number of rows read and the head now."""

    rows: int = 0
    head: Head = field(default_factory=lambda: Head(0, GENESIS))
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "rows": self.rows,
            "head": {"seq": self.head.seq, "hash": self.head.hash.hex(), "text": str(self.head)},
            "problems": [{"seq": p.seq, "kind": p.kind, "detail": p.detail} for p in self.problems],
        }


def _netstring(value: str) -> bytes:
    data = value.encode()
    return f"{len(data)}:".encode() + data + b","


def row_hash(seq: int, prev_hash: bytes, row: ChainRow) -> bytes:
    """SHA-256 of the canonical encoding (see migration 0037), with the sequence number `seq`."""
    micros = (row.at - EPOCH) // timedelta(microseconds=1)
    fields = (VERSION_TAG, str(seq), prev_hash.hex(), str(micros), row.actor, row.action, row.entity)
    encoded = b"".join(map(_netstring, (*fields, row.entity_id, row.detail)))
    return hashlib.sha256(encoded).digest()


@dataclass(slots=True)
class _Link:
    seq: int  # as stored
    original: int  # the number it was written with (differs when rows before it were inserted or removed)
    hash: bytes


class _Walk:
    """Follows the chain row by row, remembering a window of accepted rows by hash."""

    def __init__(self, expect: Head | None) -> None:
        self.verdict = Verdict()
        self.last = _Link(0, 0, GENESIS)
        self.recent: OrderedDict[bytes, _Link] = OrderedDict()
        self.expect = expect
        self.expected_found: bytes | None = None

    def report(self, seq: int, kind: Kind, detail: str) -> None:
        if kind == "inserted":  # a row first seen as altered turns out to be inserted: say it once
            self.verdict.problems = [
                p for p in self.verdict.problems if not (p.seq == seq and p.kind != kind)
            ]
        self.verdict.problems.append(Problem(seq, kind, detail))

    def add(self, row: ChainRow) -> None:
        self.verdict.rows += 1
        if self.expect is not None and row.seq == self.expect.seq:
            self.expected_found = row.row_hash
        if row.seq <= self.last.seq:
            self.report(row.seq, "inserted", "a second row with this sequence number")
            return
        if row.prev_hash == self.last.hash:
            original = self.last.original + 1
        elif row.prev_hash in self.recent:
            original = self._after_inserted(self.recent[row.prev_hash])
        else:
            original = self._unlinked(row)
        if row_hash(original, row.prev_hash, row) != row.row_hash:
            self.report(row.seq, "altered", "its fields do not match its hash")
        self._accept(_Link(row.seq, original, row.row_hash))

    def _after_inserted(self, anchor: _Link) -> int:
        """The row links to an earlier row than the last one: the rows accepted since were inserted."""
        while True:
            link_hash, link = self.recent.popitem()
            if link_hash == anchor.hash:
                self.recent[link_hash] = link
                break
            self.report(link.seq, "inserted", "the next row does not link to it")
        self.last = anchor
        return anchor.original + 1

    def _unlinked(self, row: ChainRow) -> int:
        """The row links to no row we know: rows before it were removed, or its predecessor was rewritten."""
        offset: int = self.last.seq - self.last.original
        reach = range(self.last.original + 1, self.last.original + RENUMBER_REACH)
        candidates: list[int] = [row.seq - offset, *reach]
        for original in candidates:
            if original > self.last.original and row_hash(original, row.prev_hash, row) == row.row_hash:
                if original == self.last.original + 1:
                    self.report(self.last.seq, "altered", "its hash is not the one the next row recorded")
                for missing in range(self.last.original + 1, original):
                    self.report(missing + offset, "removed", "the chain skips this number")
                return original
        self.report(row.seq, "altered", "it does not link to the row before it")
        return row.seq - offset

    def _accept(self, link: _Link) -> None:
        self.last = link
        self.recent[link.hash] = link
        if len(self.recent) > WINDOW:
            self.recent.popitem(last=False)

    def finish(self, recorded: Head | None) -> Verdict:
        verdict = self.verdict
        verdict.head = Head(self.last.seq, self.last.hash)
        if recorded is None:
            self.report(self.last.seq + 1, "removed", "the database's chain head is gone")
        elif recorded.hash != self.last.hash:
            if recorded.seq > self.last.original:
                missing = recorded.seq - self.last.original
                self._removed_tail(self.last.seq + missing, "the database's chain head names a newer row")
            elif recorded.hash in self.recent:
                newer = list(self.recent.values())
                kept = next(i for i, link in enumerate(newer) if link.hash == recorded.hash)
                for link in newer[kept + 1 :]:
                    self.report(link.seq, "inserted", "newer than the database's chain head")
            else:
                self.report(self.last.seq, "altered", "its hash is not the database's chain head")
        if self.expect is not None:
            if self.expect.seq > self.last.seq:
                self._removed_tail(self.expect.seq, "the expected head names a newer row")
            elif self.expected_found is not None and self.expected_found != self.expect.hash:
                self.report(self.expect.seq, "altered", "its hash differs from the expected head")
        unique = {(p.seq, p.kind): p for p in verdict.problems}
        verdict.problems = sorted(unique.values(), key=lambda p: (p.seq, p.kind))
        return verdict

    def _removed_tail(self, newest: int, detail: str) -> None:
        for missing in range(self.last.seq + 1, newest + 1):
            self.report(missing, "removed", detail)


def check(rows: Iterable[ChainRow], *, recorded_head: Head | None, expect: Head | None = None) -> Verdict:
    """Recompute the chain of `rows` (ordered by seq, then id): every problem found, and the head."""
    walk = _Walk(expect)
    for row in rows:
        walk.add(row)
    return walk.finish(recorded_head)


def stored_rows(conn: Connection[Any], batch: int = 10_000) -> Iterator[ChainRow]:
    """Every audit row in chain order, streamed (a server-side cursor, in the connection's transaction)."""
    with conn.cursor(name="audit_chain") as cur:
        cur.itersize = batch
        cur.execute(
            "SELECT seq, prev_hash, row_hash, at, actor, action, entity, entity_id, detail::text"
            " FROM audit_log WHERE seq IS NOT NULL ORDER BY seq, id"
        )
        for seq, prev, digest, at, actor, action, entity, entity_id, detail in cur:
            yield ChainRow(seq, bytes(prev), bytes(digest), at, actor, action, entity, entity_id, detail)


def unchained(conn: Connection[Any]) -> list[int]:
    """Ids of committed rows without a place in the chain: written with the chain trigger bypassed."""
    return [int(r[0]) for r in conn.execute("SELECT id FROM audit_log WHERE seq IS NULL ORDER BY id")]


def recorded_head(conn: Connection[Any]) -> Head | None:
    """The head the database keeps beside the log (None when the row is gone)."""
    found = conn.execute("SELECT seq, row_hash FROM audit_chain_head").fetchone()
    return Head(int(found[0]), bytes(found[1])) if found else None


def verify(conn: Connection[Any], expect: Head | None = None) -> Verdict:
    """Verify the whole log in one snapshot (REPEATABLE READ, read only): rows written meanwhile wait for the
    next verification. `conn` must not be in autocommit mode nor inside a transaction."""
    conn.isolation_level = IsolationLevel.REPEATABLE_READ
    conn.read_only = True
    try:
        with conn.transaction():
            verdict = check(stored_rows(conn), recorded_head=recorded_head(conn), expect=expect)
            for row_id in unchained(conn):
                verdict.rows += 1
                verdict.problems.append(Problem(0, "inserted", f"row id {row_id} has no sequence number"))
            return verdict
    finally:
        conn.isolation_level = None
        conn.read_only = None
