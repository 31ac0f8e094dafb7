"""A small pool of read-mostly PostgreSQL connections for the dashboard's request threads."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg.rows import TupleRow

from issuance.store.db import connect

STATEMENT_TIMEOUT = "10s"


class Database:
    """Lends connections (autocommit, with a statement timeout) and keeps up to `size` idle ones."""

    def __init__(self, conninfo: str, size: int = 8, timezone: str = "Asia/Shanghai") -> None:
        self.conninfo = conninfo
        self.timezone = timezone
        self._idle: queue.LifoQueue[psycopg.Connection[TupleRow]] = queue.LifoQueue(maxsize=size)

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[TupleRow]]:
        """A connection for one request; a broken one is closed instead of returned."""
        try:
            conn = self._idle.get_nowait()
        except queue.Empty:
            conn = connect(
                self.conninfo,
                autocommit=True,
                application_name="issuance-dashboard",
                statement_timeout=STATEMENT_TIMEOUT,
            )
            # Times on the pages are read in the bureau's time zone.
            conn.execute("SELECT set_config('TimeZone', %s, false)", (self.timezone,))
        try:
            yield conn
        except BaseException:
            conn.close()
            raise
        if conn.closed or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.close()
            return
        try:
            self._idle.put_nowait(conn)
        except queue.Full:
            conn.close()

    def close(self) -> None:
        """Close every idle connection."""
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return
