"""Real services for integration and end-to-end tests: one broker and one PostgreSQL per session.

The session starts the embedded services with the same code as `issuance dev up`, in a private directory
outside pytest's shared temporary root, and stops them at the end (no process is left behind). Each test gets
a fresh database cloned from a migrated template and its own topic prefix: tests never see each other's data.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from pydantic import SecretStr

from issuance.services import embedded
from issuance.services.postgres import PostgresProcess, drop_database, ensure_database, running_postgres
from issuance.services.processes import ProcessRef
from issuance.services.state import StateDir
from issuance.settings import Settings
from issuance.store.db import connect
from issuance.store.party_keys_repo import load_directory, provision_simulated_partners, reference_parties
from issuance.trust.keys import Directory, PartyKeys
from issuance.trust.keystore import bureau_keys, partner_keys
from issuance.trust.parties import BUREAU, Party

TEMPLATE_DATABASE = "issuance_template"
PREFIX = "issuance-test-"
SESSION_PREFIX = f"{PREFIX}services-"
# Fixed, test-only key material (never used outside tests).
TEST_DATA_KEYS = "test1:" + base64.b64encode(bytes(range(32))).decode()
TEST_BLIND_INDEX_KEY = base64.b64encode(bytes(range(32, 64))).decode()
# The bureau's signing and sealing keys in tests (a party key file's text, as in ISSUANCE_BUREAU_KEY).
TEST_BUREAU_KEY = PartyKeys.from_raw(BUREAU, bytes(range(64, 96)), bytes(range(96, 128))).to_text()
TEST_ACTOR = "test"


OWNER_FILE = "owner.json"


def private_dir(prefix: str) -> Path:
    """A new directory under the system temp dir with a short path (unix sockets live in it), owned by us."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    me = psutil.Process()
    (root / OWNER_FILE).write_text(json.dumps({"pid": me.pid, "create_time": me.create_time()}))
    return root


def reap_orphans(prefix: str) -> None:
    """Stop the services of test directories whose owner died without cleaning up (a killed session)."""
    for root in Path(tempfile.gettempdir()).glob(f"{prefix}*"):
        try:
            owner = json.loads((root / OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue
        if ProcessRef(pid=int(owner["pid"]), create_time=float(owner["create_time"])).process("") is None:
            stop_services(root)
            shutil.rmtree(root, ignore_errors=True)


def leftover_processes(root: Path) -> list[psutil.Process]:
    """Processes working in root or naming it (the broker runs in the state dir, PostgreSQL in pgdata)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "cwd", "status"]):
        if proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        cwd = proc.info["cwd"] or ""
        cmdline = " ".join(proc.info["cmdline"] or [])
        if cwd == str(root) or cwd.startswith(f"{root}/") or str(root) in cmdline:
            found.append(proc)
    return found


def stop_services(root: Path) -> None:
    """Stop the embedded services under root and make sure nothing of theirs is still running."""
    embedded.down(root)
    for proc in leftover_processes(root):
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            continue


def settings_env(settings: Settings) -> dict[str, str]:
    """The ISSUANCE_* environment variables that reproduce settings in a subprocess."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        env[f"ISSUANCE_{name.upper()}"] = str(value)
    return env


@pytest.fixture(scope="session", autouse=True)
def _reap_orphaned_services() -> None:
    """Services left by an earlier session that was killed are stopped before this one starts."""
    reap_orphans(PREFIX)


@pytest.fixture(scope="session")
def services_root() -> Iterator[Path]:
    """State directory of the session's broker and PostgreSQL (started here, stopped at the end)."""
    root = private_dir(SESSION_PREFIX)
    try:
        embedded.up(root)
        yield root
    finally:
        stop_services(root)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def kafka_bootstrap(services_root: Path) -> str:
    """The session broker's bootstrap address (tests isolate themselves by topic prefix)."""
    bootstrap = embedded.running(services_root).kafka_bootstrap
    assert bootstrap is not None, "the session broker is not running"
    return bootstrap


@pytest.fixture(scope="session")
def postgres_server(services_root: Path) -> PostgresProcess:
    """The session PostgreSQL server, with a migrated template database."""
    from issuance.store.migrate import apply_migrations

    server = running_postgres(StateDir(services_root).pgdata)
    assert server is not None, "the session PostgreSQL is not running"
    apply_migrations(ensure_database(server, TEMPLATE_DATABASE))
    return server


@pytest.fixture
def database_url(postgres_server: PostgresProcess) -> Iterator[str]:
    """A fresh, fully migrated database for this test only (dropped afterwards)."""
    from issuance.store.migrate import apply_migrations

    name = f"t_{uuid.uuid4().hex[:16]}"
    url = ensure_database(postgres_server, name, template=TEMPLATE_DATABASE)
    # A no-op normally; keeps the clone current if a migration was added to the tree during a long session.
    apply_migrations(url)
    yield url
    drop_database(postgres_server, name)


@pytest.fixture
def topic_prefix() -> str:
    """A topic prefix no other test uses."""
    return f"t{uuid.uuid4().hex[:12]}."


@pytest.fixture
def settings(kafka_bootstrap: str, database_url: str, topic_prefix: str, tmp_path: Path) -> Settings:
    """Settings pointing at the session broker and this test's database, with fixed test keys."""
    return Settings(
        kafka_bootstrap=kafka_bootstrap,
        database_url=SecretStr(database_url),
        topic_prefix=topic_prefix,
        state_dir=tmp_path / "state",
        personalization_dir=tmp_path / "personalization",
        data_keys=SecretStr(TEST_DATA_KEYS),
        blind_index_key=SecretStr(TEST_BLIND_INDEX_KEY),
        keys_dir=tmp_path / "keys",
        bureau_key=SecretStr(TEST_BUREAU_KEY),
    )


@dataclass(frozen=True, slots=True)
class Partners:
    """The simulated partners' keys of one test: provisioned (generated into the test's keys_dir and
    registered) once the test has loaded its reference data."""

    settings: Settings

    def _database_url(self) -> str:
        assert self.settings.database_url is not None
        return self.settings.database_url.get_secret_value()

    def provision(self, *extra: Party) -> Directory:
        """Keys for the bureau, every branch, bank and vendor of the loaded reference data and `extra`
        parties; the Directory of every registered key afterwards."""
        with connect(self._database_url()) as conn:
            parties = [*reference_parties(conn), *extra]
            return provision_simulated_partners(self.settings, conn, parties, actor=TEST_ACTOR)

    def directory(self) -> Directory:
        with connect(self._database_url()) as conn:
            return load_directory(conn)

    def keys(self, party: Party) -> PartyKeys:
        """A provisioned party's private keys (the bureau's are TEST_BUREAU_KEY)."""
        return bureau_keys(self.settings) if party == BUREAU else partner_keys(self.settings, party)


@pytest.fixture
def partners(settings: Settings) -> Partners:
    """Keys of the simulated partners: call `partners.provision()` after loading the reference data."""
    return Partners(settings)


@pytest.fixture
def cli_env(settings: Settings) -> dict[str, str]:
    """os.environ without inherited ISSUANCE_* variables, plus the ones matching `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ISSUANCE_")}
    env.update(settings_env(settings))
    return env
