"""Dashboard sessions kept in PostgreSQL (table dashboard_sessions, migration 0036).

The browser holds a random session id; the table holds its SHA-256. A session is live until it is revoked
(logout, a new login with the same cookie, an operator), until it has been idle for `idle_s`, or until
`absolute_s` after the login, whichever comes first; every check is made by the database's clock in the one
statement that also records the request. Anonymous requests write nothing.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import Connection

from issuance.store.audit import record_action

SESSION_ID_BYTES = 32
MAX_SESSION_ID_CHARS = 64  # a cookie longer than any id we issue is not looked up
KEEP_ENDED_DAYS = 30  # ended sessions stay listable this long, then the dashboard deletes them
AUDIT_ENTITY = "dashboard_session"


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    """How long a session lives: without a request, and at most after its login."""

    idle_s: float
    absolute_s: float


@dataclass(frozen=True, slots=True)
class SessionRow:
    """One session as an operator sees it (never its id, which only the browser holds)."""

    id: int
    username: str
    address: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    revoked_by: str | None
    state: str  # live, idle, expired or revoked

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


def _digest(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode()).digest()


def open_session(
    conn: Connection[Any], username: str, address: str, policy: SessionPolicy, replaces: str | None = None
) -> str:
    """A new session for a user who just logged in; the session the browser held before (if any) ends."""
    session_id = secrets.token_urlsafe(SESSION_ID_BYTES)
    with conn.transaction():
        if replaces:
            end_session(conn, replaces, by="login")
        conn.execute(
            "INSERT INTO dashboard_sessions (session_hash, username, address, expires_at)"
            " VALUES (%s, %s, %s, now() + make_interval(secs => %s))",
            (_digest(session_id), username, address, policy.absolute_s),
        )
    return session_id


def touch(conn: Connection[Any], session_id: str, policy: SessionPolicy) -> str | None:
    """The username of a live session, recording this request as its last; None when it is not live."""
    if not session_id or len(session_id) > MAX_SESSION_ID_CHARS:
        return None
    row = conn.execute(
        "UPDATE dashboard_sessions SET last_seen_at = now()"
        " WHERE session_hash = %s AND revoked_at IS NULL AND expires_at > now()"
        " AND last_seen_at > now() - make_interval(secs => %s)"
        " RETURNING username",
        (_digest(session_id), policy.idle_s),
    ).fetchone()
    return None if row is None else str(row[0])


def end_session(conn: Connection[Any], session_id: str, *, by: str) -> None:
    """Revoke the browser's session (logout); nothing happens for an unknown or ended one."""
    if not session_id or len(session_id) > MAX_SESSION_ID_CHARS:
        return
    conn.execute(
        "UPDATE dashboard_sessions SET revoked_at = now(), revoked_by = %s"
        " WHERE session_hash = %s AND revoked_at IS NULL",
        (by, _digest(session_id)),
    )


_ROW = (
    "id, username, address, created_at, last_seen_at, expires_at, revoked_at, revoked_by,"
    " CASE WHEN revoked_at IS NOT NULL THEN 'revoked' WHEN expires_at <= now() THEN 'expired'"
    " WHEN last_seen_at <= now() - make_interval(secs => %(idle)s) THEN 'idle' ELSE 'live' END"
)


def list_sessions(
    conn: Connection[Any],
    policy: SessionPolicy,
    *,
    username: str | None = None,
    include_ended: bool = False,
    limit: int = 500,
) -> list[SessionRow]:
    """Sessions, newest first: the live ones only unless `include_ended`."""
    live = (
        "TRUE"
        if include_ended
        else "revoked_at IS NULL AND expires_at > now()"
        " AND last_seen_at > now() - make_interval(secs => %(idle)s)"
    )
    rows = conn.execute(
        f"SELECT {_ROW} FROM dashboard_sessions"
        f" WHERE {live} AND (%(user)s::text IS NULL OR username = %(user)s)"
        " ORDER BY created_at DESC, id DESC LIMIT %(limit)s",
        {"idle": policy.idle_s, "user": username, "limit": limit},
    ).fetchall()
    return [SessionRow(*row) for row in rows]


def revoke(
    conn: Connection[Any],
    *,
    operator: str,
    ids: Sequence[int] = (),
    username: str | None = None,
) -> list[int]:
    """Revoke sessions by id and/or every unrevoked session of a user, each recorded in the audit log with
    the operator, in one transaction. Returns the ids revoked now (already revoked ones are left alone)."""
    if not ids and username is None:
        raise ValueError("name the sessions to revoke: ids or a username")
    with conn.transaction():
        rows = conn.execute(
            "UPDATE dashboard_sessions SET revoked_at = now(), revoked_by = %s"
            " WHERE revoked_at IS NULL AND (id = ANY(%s) OR username = %s)"
            " RETURNING id, username",
            (operator, list(ids), username),
        ).fetchall()
        for session_id, user in rows:
            record_action(
                conn,
                actor=operator,
                action="dashboard.session.revoke",
                entity=AUDIT_ENTITY,
                entity_id=str(session_id),
                detail={"username": user},
            )
    return sorted(int(r[0]) for r in rows)


def delete_ended(conn: Connection[Any], keep_days: int = KEEP_ENDED_DAYS) -> int:
    """Delete sessions that ended (expired by their absolute end) more than `keep_days` ago."""
    cursor = conn.execute(
        "DELETE FROM dashboard_sessions WHERE expires_at < now() - make_interval(days => %s)", (keep_days,)
    )
    return cursor.rowcount
