"""Registered party keys: registering is idempotent and audited, a key of another party is refused, a revoked
key stops verifying, keys fail closed with configured servers, and the `issuance keys` commands round-trip."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from issuance.crypto import Vault
from issuance.domain.model import DeadLetterReason
from issuance.errors import ConfigurationError, InputError
from issuance.settings import Settings
from issuance.store.db import connect
from issuance.store.party_keys_repo import list_keys, load_directory, register, revoke
from issuance.store.reference_load import load_reference
from issuance.trust import BUREAU, PartyKeys, Signer, TrustFailure, Verifier
from issuance.trust.keys import PublicKeys
from issuance.trust.keystore import bureau_keys
from issuance.trust.parties import bank, branch, vendor
from tests import factories as f
from tests.fixtures_services import TEST_BUREAU_KEY, Partners

CLI = [sys.executable, "-c", "from cli.main import main; main()"]
ICBC = bank(f.BANK)


def _url(settings: Settings) -> str:
    assert settings.database_url is not None
    return settings.database_url.get_secret_value()


def audit_lines(settings: Settings, action: str) -> list[tuple[str, str, dict[str, Any]]]:
    with connect(_url(settings)) as conn:
        rows = conn.execute(
            "SELECT actor, entity_id, detail FROM audit_log WHERE action = %s ORDER BY id", (action,)
        ).fetchall()
    return [(str(a), str(e), dict(d)) for a, e, d in rows]


def test_register_is_idempotent_and_audited(settings: Settings) -> None:
    public = PartyKeys.generate(ICBC).public()
    with connect(_url(settings)) as conn:
        assert register(conn, public, actor="alice") == [public.sign_key_id, public.seal_key_id]
        assert register(conn, public, actor="bob") == []
        directory = load_directory(conn)
        assert directory.sealing_key(ICBC)[0] == public.seal_key_id
        rows = list_keys(conn)
    assert [(r.key_id, r.registered_by, r.revoked_at) for r in rows] == [
        (public.seal_key_id, "alice", None),
        (public.sign_key_id, "alice", None),
    ]
    lines = audit_lines(settings, "party_key.registered")
    assert [(actor, kid) for actor, kid, _ in lines] == [
        ("alice", public.sign_key_id),
        ("alice", public.seal_key_id),
    ]
    assert lines[0][2] == {"party": "bank:ICBC", "purpose": "sign"}


def test_a_key_of_another_party_is_refused(settings: Settings) -> None:
    icbc = PartyKeys.generate(ICBC).public()
    # The same public keys claimed by another bank: other ids, same key bytes.
    other = PartyKeys.from_raw(bank("ABC"), b"\x01" * 32, b"\x02" * 32).public()
    stolen = PartyKeys.from_raw(bank("CCB"), b"\x01" * 32, b"\x02" * 32).public()
    with connect(_url(settings)) as conn:
        register(conn, icbc, actor="alice")
        register(conn, other, actor="alice")
        with pytest.raises(ConfigurationError, match="already registered for bank:ABC"):
            register(conn, stolen, actor="mallory")
        # A row whose id names another key than the one given is refused too (the id names the key).
        forged = PublicKeys(ICBC, icbc.sign_key_id, other.signing, icbc.seal_key_id, icbc.sealing)
        with pytest.raises(ConfigurationError, match="already registered for bank:ICBC with another key"):
            register(conn, forged, actor="mallory")
        assert {r.party for r in list_keys(conn)} == {"bank:ICBC", "bank:ABC"}
    assert all(actor == "alice" for actor, _, _ in audit_lines(settings, "party_key.registered"))


def test_revoked_keys_stop_verifying(settings: Settings) -> None:
    bureau, icbc = PartyKeys.from_text(TEST_BUREAU_KEY), PartyKeys.generate(ICBC)
    with connect(_url(settings)) as conn:
        register(conn, bureau.public(), actor="alice")
        register(conn, icbc.public(), actor="alice")
        headers = Signer(icbc, load_directory(conn)).headers(BUREAU, b"k", b"v")
        assert Verifier(bureau, load_directory(conn)).sender(headers, b"k", b"v") == ICBC
        assert revoke(conn, icbc.sign_key_id, actor="carol") is True
        assert revoke(conn, icbc.sign_key_id, actor="carol") is False
        with pytest.raises(InputError, match="no key"):
            revoke(conn, "bank:ICBC:sign:000000000000", actor="carol")
        with pytest.raises(TrustFailure) as caught:
            Verifier(bureau, load_directory(conn)).sender(headers, b"k", b"v")
        assert caught.value.reason is DeadLetterReason.SIGNATURE_INVALID
        with pytest.raises(ConfigurationError, match="was revoked"):
            register(conn, icbc.public(), actor="alice")
    assert [(a, e) for a, e, _ in audit_lines(settings, "party_key.revoked")] == [("carol", icbc.sign_key_id)]


def test_partners_of_the_reference_data_are_provisioned(settings: Settings, partners: Partners) -> None:
    with connect(_url(settings)) as conn:
        load_reference(conn, Vault.from_settings(settings), f.reference(), actor="test", source="test")
    directory = partners.provision()
    assert {BUREAU, ICBC, branch(f.BRANCH), bank(f.OTHER_BANK)} <= directory.parties
    assert any(p.kind.value == "vendor" for p in directory.parties) or not f.reference().vendors
    assert partners.provision().rows() == directory.rows()  # again: nothing new
    assert directory.sealing_key(BUREAU)[0] == PartyKeys.from_text(TEST_BUREAU_KEY).seal_key_id
    headers = Signer(partners.keys(branch(f.BRANCH)), directory).headers(BUREAU, None, b"v")
    assert Verifier(partners.keys(BUREAU), directory).sender(headers, None, b"v") == branch(f.BRANCH)
    assert (settings.keys_dir / "parties" / f"branch-{f.BRANCH}.key").exists()
    extra = partners.provision(vendor("V9"))
    assert vendor("V9") in extra.parties


def test_configured_servers_without_a_bureau_key_fail_closed(settings: Settings) -> None:
    without = settings.model_copy(update={"bureau_key": None})
    with pytest.raises(ConfigurationError, match="ISSUANCE_BUREAU_KEY"):
        bureau_keys(without)
    assert not (settings.keys_dir / "bureau.key").exists()


def issuance(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env=env, input=stdin, capture_output=True, text=True, check=False, timeout=120
    )


def test_keys_commands_round_trip(cli_env: dict[str, str], settings: Settings, tmp_path: Path) -> None:
    made = issuance(cli_env, "keys", "generate", "--party", "bank:ICBC", "--json")
    assert made.returncode == 0, made.stderr
    generated = json.loads(made.stdout)
    assert generated["created"] and Path(generated["path"]) == settings.keys_dir / "parties" / "bank-ICBC.key"
    again = issuance(cli_env, "keys", "generate", "--party", "bank:ICBC")
    assert again.returncode == 0 and "kept" in again.stdout and generated["seal_key_id"] in again.stdout

    exported = issuance(cli_env, "keys", "export-public", "--party", "bank:ICBC")
    assert exported.returncode == 0, exported.stderr
    assert "signing" in exported.stdout and json.loads(exported.stdout)["keys"][0]["party"] == "bank:ICBC"
    private = json.loads((settings.keys_dir / "parties" / "bank-ICBC.key").read_text())
    assert private["signing"] not in exported.stdout and private["sealing"] not in exported.stdout
    document = tmp_path / "icbc.json"
    document.write_text(exported.stdout)

    denied = issuance(cli_env, "keys", "register", str(document))
    assert denied.returncode == 2 and "--operator" in denied.stderr
    registered = issuance(cli_env, "keys", "register", str(document), "--operator", "alice", "--json")
    assert registered.returncode == 0, registered.stderr
    assert json.loads(registered.stdout)["registered"] == [generated["sign_key_id"], generated["seal_key_id"]]
    bureau = issuance(cli_env, "keys", "export-public")
    piped = issuance(cli_env, "keys", "register", "-", "--operator", "alice", stdin=bureau.stdout)
    assert piped.returncode == 0 and "registered bureau:bureau:seal:" in piped.stdout, piped.stderr

    broken = tmp_path / "broken.json"
    broken.write_text(
        json.dumps({"format": "ssc-public-keys", "version": 1, "keys": [{"party": "bank:ICBC"}]})
    )
    refused = issuance(cli_env, "keys", "register", str(broken), "--operator", "alice")
    assert refused.returncode == 2 and "keys[0]" in refused.stderr and "Traceback" not in refused.stderr

    revoked = issuance(cli_env, "keys", "revoke", generated["sign_key_id"], "--operator", "carol")
    assert revoked.returncode == 0 and "revoked" in revoked.stdout, revoked.stderr
    listed = issuance(cli_env, "keys", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {r["key_id"]: r for r in json.loads(listed.stdout)}
    assert rows[generated["sign_key_id"]]["revoked_at"] is not None
    assert (
        rows[generated["seal_key_id"]]["revoked_at"] is None
        and rows[generated["seal_key_id"]]["party"] == "bank:ICBC"
    )
    plain = issuance(cli_env, "keys", "list")
    assert plain.returncode == 0 and generated["seal_key_id"] in plain.stdout and "revoked" in plain.stdout

    no_bureau_key = {k: v for k, v in cli_env.items() if k != "ISSUANCE_BUREAU_KEY"}
    closed = issuance(no_bureau_key, "keys", "export-public")
    assert closed.returncode == 1 and "ISSUANCE_BUREAU_KEY" in closed.stderr
    unknown = issuance(cli_env, "keys", "export-public", "--party", "vendor:V1")
    assert unknown.returncode == 1 and "issuance keys generate --party vendor:V1" in unknown.stderr
