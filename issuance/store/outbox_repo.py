"""Choosing published outbox events to send again, and the bank requests no bank has answered yet.

Re-sending is re-opening: the chosen rows lose their `published_at` and the outbox relay sends them as it
sends any unpublished event, with their original event ids and payloads (the consumers' inboxes apply each id
once).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg.rows import class_row

from issuance.domain.lifecycle import Trigger, starts
from issuance.domain.model import ApplicationType
from issuance.messages import bank_request_event_id
from issuance.store.run_repo import Conn

# Published events matching every criterion given (an absent criterion matches all).
_CHOSEN = """
published_at IS NOT NULL
AND (%(run)s::bigint IS NULL OR run_id = %(run)s)
AND (cardinality(%(topics)s::text[]) = 0 OR topic = ANY(%(topics)s::text[]))
AND (%(since)s::timestamptz IS NULL OR published_at >= %(since)s)
AND (%(until)s::timestamptz IS NULL OR published_at < %(until)s)
AND (%(ids)s::text[] IS NULL OR event_id = ANY(%(ids)s::text[]))
"""


@dataclass(frozen=True, slots=True)
class Selection:
    """Which published events to send again: every criterion given must hold."""

    run_id: int | None = None
    topics: tuple[str, ...] = ()
    published_since: datetime | None = None
    published_until: datetime | None = None
    unanswered_after_hours: float | None = None  # the current request of an application still waiting for it

    @property
    def empty(self) -> bool:
        return (
            self.run_id is None
            and not self.topics
            and self.published_since is None
            and self.published_until is None
            and self.unanswered_after_hours is None
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "topics": list(self.topics),
            "published_since": None if self.published_since is None else self.published_since.isoformat(),
            "published_until": None if self.published_until is None else self.published_until.isoformat(),
            "unanswered_after_hours": self.unanswered_after_hours,
        }


@dataclass(frozen=True, slots=True)
class ChosenCount:
    """How many chosen events per topic and type."""

    topic: str
    event_type: str
    events: int


@dataclass(frozen=True, slots=True)
class Waiting:
    """An application waiting for the bank's answer to its current request."""

    application_id: str
    application_type: str
    bank_refusals: int  # refusals so far: the request waited on is attempt refusals + 1

    @property
    def request_event_id(self) -> str:
        # The same rule names the request the night sends (pipelines/personalize.py) and the answer the
        # bureau's consumer applies.
        return bank_request_event_id(
            ApplicationType(self.application_type), self.application_id, self.bank_refusals + 1
        )


# Waiting for the bank is where its answer may apply: an accepted application whose request is not due again
# (the answer triggers need `retry_due` false); for a new card, while its account is still requested.
_NEW, _ACT = ApplicationType.NEW_CARD, ApplicationType.FINANCIAL_ACTIVATION
_WAITING = {
    "new_card": _NEW.value,
    "new_from": starts(Trigger.ACCOUNT_OPENED, _NEW, "application"),
    "account_from": starts(Trigger.ACCOUNT_OPENED, _NEW, "financial"),
    "activation": _ACT.value,
    "activation_from": starts(Trigger.ACTIVATION_COMPLETED, _ACT, "application"),
}


@dataclass(slots=True)
class Chosen:
    """The events a selection stands for right now."""

    counts: list[ChosenCount] = field(default_factory=list)

    @property
    def events(self) -> int:
        return sum(c.events for c in self.counts)


def waiting_since(conn: Conn, hours: float) -> list[Waiting]:
    """Applications waiting for the bank's answer to their current request (an account opening or an
    activation) for at least `hours` (their request was last sent before then)."""
    with conn.cursor(row_factory=class_row(Waiting)) as cur:
        return cur.execute(
            "SELECT a.application_id, a.application_type, a.bank_refusals FROM applications a"
            " LEFT JOIN bank_accounts b ON a.application_type = %(new_card)s"
            "  AND b.application_id = a.application_id"
            " WHERE NOT a.retry_due AND a.updated_at <= now() - make_interval(secs => %(secs)s)"
            "  AND ((a.application_type = %(new_card)s AND a.state = ANY(%(new_from)s)"
            "        AND b.status = ANY(%(account_from)s))"
            "   OR (a.application_type = %(activation)s AND a.state = ANY(%(activation_from)s)))",
            {**_WAITING, "secs": hours * 3600.0},
        ).fetchall()


def _params(conn: Conn, selection: Selection) -> dict[str, Any]:
    ids: list[str] | None = None
    until = selection.published_until
    hours = selection.unanswered_after_hours
    if hours is not None:
        # The current requests of applications waiting that long, themselves published that long ago.
        ids = [w.request_event_id for w in waiting_since(conn, hours)]
        row = conn.execute("SELECT now() - make_interval(secs => %s)", (hours * 3600.0,)).fetchone()
        assert row is not None
        until = row[0] if until is None else min(until, row[0])
    return {
        "run": selection.run_id,
        "topics": list(selection.topics),
        "since": selection.published_since,
        "until": until,
        "ids": ids,
    }


def count_chosen(conn: Conn, selection: Selection) -> Chosen:
    """How many published events the selection chooses, per topic and type (reads only)."""
    with conn.cursor(row_factory=class_row(ChosenCount)) as cur:
        rows = cur.execute(
            f"SELECT topic, event_type, count(*) AS events FROM outbox WHERE {_CHOSEN}"
            " GROUP BY topic, event_type ORDER BY topic, event_type",
            _params(conn, selection),
        ).fetchall()
    return Chosen(rows)


def reopen_chosen(conn: Conn, selection: Selection) -> Chosen:
    """Mark the chosen events unpublished (in the caller's transaction); what was re-opened."""
    with conn.cursor(row_factory=class_row(ChosenCount)) as cur:
        rows = cur.execute(
            f"WITH reopened AS (UPDATE outbox SET published_at = NULL WHERE {_CHOSEN}"
            " RETURNING topic, event_type)"
            " SELECT topic, event_type, count(*) AS events FROM reopened"
            " GROUP BY topic, event_type ORDER BY topic, event_type",
            _params(conn, selection),
        ).fetchall()
    return Chosen(rows)


def pending(conn: Conn) -> int:
    """Events not published yet (never sent, or re-opened and not sent again)."""
    row = conn.execute("SELECT count(*) FROM outbox WHERE published_at IS NULL").fetchone()
    return int(row[0]) if row else 0


def chosen_counts(counts: Sequence[ChosenCount]) -> dict[str, int]:
    """`topic (event type)` -> events, for reports and the audit log."""
    return {f"{c.topic} ({c.event_type})": c.events for c in counts}
