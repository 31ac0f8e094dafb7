"""The audit log (Article 6 of the Measures): one writer for every operator action, read of personal data and
automated change, and the names of those who act.

Every row names an actor of one of three kinds, so that a reader of the log can tell who acted:
- a person at the command line: the `--operator NAME` they gave (`person_actor`), a plain name;
- a person on the dashboard: `dashboard:<username>` (`dashboard_actor`);
- an automated process: `service:<name>` (`service_actor`), e.g. `service:nightly`.
The database chains each row to the one before it (migration 0037); `issuance.store.audit_chain` verifies."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import Connection, sql
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from issuance.errors import InputError

# A person's name as the log records it: letters, digits and . _ @ - (an e-mail-like login fits), no spaces,
# no colon (the colon marks the other kinds of actor), at most 64 characters.
PERSON_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
SERVICE_NAME = re.compile(r"[a-z][a-z0-9.-]{0,47}")


def person_actor(name: str) -> str:
    """An operator's identity as given on the command line; InputError when it is not a name."""
    value = name.strip()
    if not PERSON_NAME.fullmatch(value):
        raise InputError(
            "--operator: give your operator identity, 1 to 64 letters, digits or . _ @ - "
            "(a person's name or login, not a service)"
        )
    return value


def dashboard_actor(username: str) -> str:
    """The actor of what a logged-in dashboard user did or read."""
    return f"dashboard:{username}"


def service_actor(name: str) -> str:
    """The actor of an automated change (a night, a consumer): `service:<name>`."""
    if not SERVICE_NAME.fullmatch(name):
        raise ValueError(f"not a service name: {name!r}")
    return f"service:{name}"


# The entity id of a read that showed nothing: what was asked for is not recorded (it may be personal data).
NOT_SHOWN = "(not shown)"

SERVICE_NIGHTLY = service_actor("nightly")
SERVICE_BANK_RESULTS = service_actor("consumer.bank-results")
SERVICE_CARD_EVENTS = service_actor("consumer.card-events")


def record_action(
    conn: Connection[Any],
    *,
    actor: str,
    action: str,
    entity: str,
    entity_id: str,
    detail: Mapping[str, object] | None = None,
) -> None:
    """Append one line to the audit log, in the caller's transaction (it commits with the change it records).

    One INSERT: the database times the row now and numbers, links and hashes it when the transaction commits
    (migration 0037; the caller chooses none of these), so recording takes no lock that the rest of the
    transaction could wait on. `detail` must never hold personal data in clear: ids, counts, codes and masked
    values only."""
    conn.execute(
        "INSERT INTO audit_log (actor, action, entity, entity_id, detail) VALUES (%s, %s, %s, %s, %s)",
        (actor, action, entity, entity_id, Jsonb(dict(detail or {}))),
    )


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of the log as `issuance audit show` lists it."""

    seq: int
    at: datetime
    actor: str
    action: str
    entity: str
    entity_id: str
    detail: dict[str, Any]


def entries(
    conn: Connection[Any],
    *,
    since: datetime | None = None,
    actor: str | None = None,
    action: str | None = None,
    limit: int = 100,
) -> list[AuditEntry]:
    """The newest `limit` entries matching every filter given, oldest first.

    `action` ending in `.` or `*` matches a prefix (`dead_letter.*` = every dead-letter action)."""
    where: list[sql.Composable] = []
    params: list[Any] = []
    if since is not None:
        where.append(sql.SQL("at >= %s"))
        params.append(since)
    if actor is not None:
        where.append(sql.SQL("actor = %s"))
        params.append(actor)
    if action is not None:
        if action.endswith(("*", ".")):
            where.append(sql.SQL("starts_with(action, %s)"))
            params.append(action.rstrip("*"))
        else:
            where.append(sql.SQL("action = %s"))
            params.append(action)
    query = sql.SQL(
        "SELECT * FROM (SELECT seq, at, actor, action, entity, entity_id, detail FROM audit_log {} "
        "ORDER BY seq DESC LIMIT %s) newest ORDER BY seq"
    ).format(sql.SQL("WHERE ") + sql.SQL(" AND ").join(where) if where else sql.SQL(""))
    with conn.cursor(row_factory=class_row(AuditEntry)) as cur:
        return cur.execute(query, [*params, limit]).fetchall()
