"""Connections to the system of record: one place that sets timeouts and translates connection failures."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import TupleRow

from issuance.errors import IssuanceError

CONNECT_TIMEOUT_S = 10
# A session may wait this long for a row or table lock before failing instead of hanging a night.
LOCK_TIMEOUT = "60s"
# A transaction left open by a crashed client is ended by the server.
IDLE_IN_TRANSACTION_TIMEOUT = "10min"


_ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class DatabaseUnavailable(IssuanceError):
    """PostgreSQL could not be reached or refused the connection."""


def describe(conninfo: str) -> str:
    """Where a connection string points, without its password: 'host:port/dbname'."""
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:
        return "(unparseable connection string)"
    host = str(params.get("host") or "localhost")
    port = str(params.get("port") or "5432")
    return f"{host}:{port}/{params.get('dbname') or params.get('user') or ''}"


def with_role(conninfo: str, role: str | None) -> str:
    """The connection string whose sessions assume `role` (SET ROLE at connection start), or none when None.

    Made once where a process starts, the string carries the role to every connection the process opens
    (its worker threads and pipeline workers included). A login that is not a member of the role is refused
    when it connects, so a wrong deployment fails at once instead of running with more rights."""
    params = conninfo_to_dict(conninfo)
    cleaned: list[str] = []
    for option in str(params.get("options") or "").split():
        if option.startswith(("-crole=", "--role=")):
            continue
        if cleaned and cleaned[-1] == "-c" and option.startswith("role="):  # "-c role=x": two words
            cleaned.pop()
            continue
        cleaned.append(option)
    if role is not None:
        if not _ROLE_NAME.fullmatch(role):
            raise ValueError(f"not a role name: {role!r}")
        cleaned.append(f"-crole={role}")
    params["options"] = " ".join(cleaned)
    return make_conninfo("", **{k: v for k, v in params.items() if v not in (None, "")})


def connect(
    conninfo: str,
    *,
    role: str | None = None,
    autocommit: bool = False,
    application_name: str = "issuance",
    statement_timeout: str | None = None,
    lock_timeout: str = LOCK_TIMEOUT,
) -> psycopg.Connection[TupleRow]:
    """A new connection (autocommit off unless asked) with the project's timeouts set, in `role` when given
    (issuance.store.roles; else the role the connection string names, else the login's own)."""
    if role is not None:
        conninfo = with_role(conninfo, role)
    try:
        conn = psycopg.connect(
            conninfo,
            autocommit=autocommit,
            connect_timeout=CONNECT_TIMEOUT_S,
            application_name=application_name,
        )
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(f"cannot connect to PostgreSQL at {describe(conninfo)}: {exc}") from exc
    settings = {
        "lock_timeout": lock_timeout,
        "idle_in_transaction_session_timeout": IDLE_IN_TRANSACTION_TIMEOUT,
        "statement_timeout": statement_timeout or "0",
    }
    query = sql.SQL("SELECT {}").format(
        sql.SQL(", ").join(sql.SQL("set_config({}, {}, false)").format(k, v) for k, v in settings.items())
    )
    conn.execute(query)
    if not autocommit:
        conn.commit()
    return conn


def copy_rows(
    conn: psycopg.Connection[TupleRow], table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """COPY rows into `table` in the binary format: no text escaping of bytea and timestamps on either side.

    Values must be of the column's type (binary COPY does not cast); the types are read from the catalog."""
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    types = _column_types(conn, table, tuple(columns))
    with conn.cursor() as cur, cur.copy(statement) as copy:
        copy.set_types(types)
        for row in rows:
            copy.write_row(row)


_COLUMN_TYPES: dict[tuple[str, tuple[str, ...]], list[int]] = {}


def _column_types(conn: psycopg.Connection[TupleRow], table: str, columns: tuple[str, ...]) -> list[int]:
    """The type OIDs of the columns (cached by name: a scratch table is re-created with the same types)."""
    key = (table, columns)
    if key not in _COLUMN_TYPES:
        found: dict[str, int] = dict(
            conn.execute(
                "SELECT attname, atttypid::int FROM pg_attribute"
                " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
                (table,),
            ).fetchall()
        )
        _COLUMN_TYPES[key] = [found[column] for column in columns]
    return _COLUMN_TYPES[key]
