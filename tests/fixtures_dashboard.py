"""Dashboard fixtures: a filled database, users of each role, the app in-process or served on a port."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from starlette.applications import Starlette

from benchmarks.dashboard import Filled, fill
from dashboard.app import DashboardConfig, create_app
from dashboard.server import server_config
from dashboard.users import hash_password, load_users
from issuance.crypto import Vault, parse_data_keys
from tests.fixtures_services import TEST_BLIND_INDEX_KEY, TEST_DATA_KEYS

APPLICATIONS = 1500
PASSWORD = "correct horse battery"


@dataclass(frozen=True)
class DashboardData:
    """A filled database and the users who may look at it."""

    database_url: str
    vault: Vault
    filled: Filled
    users_file: Path
    branch: str  # the branch user's branch
    other_branch: str  # a branch of another bank and area
    bank: str  # the bank user's bank

    def config(self, **overrides: Any) -> DashboardConfig:
        """The app's configuration for this data."""
        return DashboardConfig(
            database_url=self.database_url, users=load_users(self.users_file), vault=self.vault, **overrides
        )

    def application_of(self, branch: str) -> str:
        """Some application id submitted at `branch`."""
        with psycopg.connect(self.database_url) as conn:
            row = conn.execute(
                "SELECT application_id FROM applications WHERE branch_code = %s ORDER BY 1 LIMIT 1", (branch,)
            ).fetchone()
        assert row is not None
        return str(row[0])

    def sql_counts(self, where: str = "TRUE", params: tuple[object, ...] = ()) -> dict[str, int]:
        """Applications per state, counted directly (the ground truth)."""
        with psycopg.connect(self.database_url) as conn:
            rows = conn.execute(
                f"SELECT state, count(*) FROM applications WHERE {where} GROUP BY 1", params
            ).fetchall()
        return {state: int(n) for state, n in rows}

    def application_with_card(self, status: str) -> str:
        """A new-card application whose card is in `status` (the first by id)."""
        with psycopg.connect(self.database_url) as conn:
            row = conn.execute(
                "SELECT application_id FROM cards WHERE status = %s ORDER BY 1 LIMIT 1", (status,)
            ).fetchone()
        assert row is not None
        return str(row[0])

    def sql_scalar(self, query: str) -> int:
        """One count, straight from the tables."""
        with psycopg.connect(self.database_url) as conn:
            row = conn.execute(query).fetchone()
        assert row is not None
        return int(row[0])


def fixed_vault() -> Vault:
    """The vault of the fixed test keys (the same as the `settings` fixture's)."""
    return Vault(parse_data_keys(TEST_DATA_KEYS), base64.b64decode(TEST_BLIND_INDEX_KEY))


@pytest.fixture
def dashboard_data(database_url: str, tmp_path: Path) -> DashboardData:
    """A database with a month of nights and a users file with a bureau, a branch and a bank user."""
    vault = fixed_vault()
    with psycopg.connect(database_url) as conn:
        filled = fill(conn, vault, APPLICATIONS)
    branch, bank, area = filled.branches[0]
    other = next(b for b, k, a in filled.branches if k != bank and a != area)
    users = tmp_path / "users.json"
    digest = hash_password(PASSWORD)
    users.write_text(
        json.dumps(
            {
                "users": [
                    {"username": "bureau", "password_hash": digest, "role": "bureau"},
                    {"username": "branch", "password_hash": digest, "role": "branch", "branch_code": branch},
                    {"username": "bank", "password_hash": digest, "role": "bank", "bank_code": bank},
                ]
            }
        )
    )
    return DashboardData(database_url, vault, filled, users, branch, other, bank)


def serve(config: DashboardConfig) -> AbstractContextManager[str]:
    """The dashboard on a free local port as `issuance dashboard` serves it, in a thread; yields its URL."""
    return serve_app(create_app(config))


@contextmanager
def serve_app(app: Starlette) -> Iterator[str]:
    """An app built by create_app, served like `issuance dashboard` serves it, in a thread."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = uvicorn.Server(server_config(app, host="127.0.0.1", port=port))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def dashboard_url(dashboard_data: DashboardData) -> Iterator[str]:
    """The dashboard served over HTTP on a free local port."""
    with serve(dashboard_data.config(metrics_token="scrape-me")) as base:
        yield base


def report_counts(cli_env: dict[str, str]) -> dict[str, int] | None:
    """Counts per state printed by `issuance report --json`, or None while that command does not exist."""
    import importlib.util

    if importlib.util.find_spec("cli.report") is None:
        return None
    done = subprocess.run(
        [str(Path(sys.executable).parent / "issuance"), "report", "--json"],
        env=cli_env,
        capture_output=True,
        text=True,
        check=True,
    )
    document = json.loads(done.stdout)
    by_state = document.get("by_state", document.get("states", {}))
    return {str(k): int(v) for k, v in by_state.items()}
