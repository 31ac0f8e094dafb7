"""`issuance demo` as a new user runs it: the whole lifecycle over several nights with the banks, vendors and
branches simulated, and every application at the generator's expected end."""

from __future__ import annotations

import json
from pathlib import Path

from cli.demo import compare, outcomes
from consumers.bank_simulator import FailurePolicy
from issuance.crypto import Vault
from issuance.settings import Settings
from issuance.store.db import connect
from tests.fixtures_lifecycle import scalar
from tests.fixtures_processes import run
from tests.pii_scan import file_blobs, generated_secrets, hex_forms, pg_dump_text, scan, topic_blobs

FAIL_RATE = 0.3
SEED = 11


def test_demo_reaches_every_expected_outcome(settings: Settings, cli_env: dict[str, str]) -> None:
    args = ["demo", "--applications", "300", "--seed", str(SEED), "--fail-rate", str(FAIL_RATE), "--json"]
    done = run(args, cli_env, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["comparison"]["mismatched"] == []
    assert summary["bank_failures"]["refused"] > 0
    # Checked again here from the database and the generator's file, not from the demo's own summary.
    assert settings.database_url is not None
    ended = outcomes(settings.database_url.get_secret_value())
    expected = Path(settings.state_dir) / "demo" / "expected.jsonl"
    result = compare(expected, ended, FailurePolicy(FAIL_RATE, SEED), settings.max_productions)
    applications = sum(1 for line in expected.read_text().splitlines() if '"kind":"application"' in line)
    assert result["mismatched"] == []
    assert result["matched"] + result["injected_failures"] == applications
    assert result["matched"] > applications // 2
    # Nothing is left on its way: every card made, delivered and collected, every activation answered.
    assert scalar(settings, "SELECT count(*) FROM applications WHERE state IN ('SUBMITTED', 'ACCEPTED')") == 0
    assert scalar(settings, "SELECT count(*) FROM cards WHERE status NOT IN ('ISSUED', 'CANCELLED')") == 0
    collected = scalar(settings, "SELECT count(*) FROM cards WHERE status = 'ISSUED'")
    assert collected > 0
    # Every collected card's holder applied to activate it: one activation application per collected card.
    assert (
        scalar(
            settings,
            "SELECT count(*) FROM applications a JOIN cards c ON c.card_number = a.card_number"
            " WHERE a.application_type = 'FINANCIAL_ACTIVATION'",
        )
        == collected
    )
    # Every vendor file was answered by exactly one return file, applied once.
    assert scalar(settings, "SELECT count(*) FROM vendor_files") == scalar(
        settings, "SELECT count(*) FROM vendor_returns"
    )
    # One live account per card; the report's funnel counts what the tables hold.
    doubled = (
        "SELECT count(*) FROM (SELECT card_number FROM bank_accounts WHERE status IN ('OPENED', 'ACTIVE')"
    )
    assert scalar(settings, doubled + " GROUP BY card_number HAVING count(*) > 1) AS twice") == 0
    funnel = {f["step"]: f["reached"] for f in summary["funnel"]}
    assert funnel["collected"] == collected
    assert funnel["savings_active"] == scalar(
        settings, "SELECT count(*) FROM bank_accounts WHERE status = 'ACTIVE'"
    )
    _reload_kept_what_the_system_did(settings, Path(settings.state_dir) / "demo")
    _audited_with_real_actors(settings, cli_env)
    _nothing_personal_in_clear(settings, done.stdout + done.stderr)


def _nothing_personal_in_clear(settings: Settings, output: str) -> None:
    """After the whole demo, no ID number, name, phone or account number of anybody is in clear on any topic,
    in any file the system wrote (vendor files, return files, manifests, state), in its output or in the
    database's dump. The generator's own files (state_dir/demo) are the simulated branches' and registry's
    input, theirs to hold, and are not scanned; the keys directory holds keys only."""
    out = Path(settings.state_dir) / "demo"
    secrets = generated_secrets(out)
    assert settings.database_url is not None
    url = settings.database_url.get_secret_value()
    vault = Vault.from_settings(settings)
    with connect(url, autocommit=True) as conn:
        accounts = {
            vault.decrypt(bytes(row[0]))
            for row in conn.execute(
                "SELECT account_number_enc FROM bank_accounts WHERE account_number_enc IS NOT NULL"
            )
        }
    assert accounts and len(secrets) > 100, "the scan needs the people and accounts it looks for"
    secrets |= accounts
    assert scan([b"control " + next(iter(accounts)).encode()], secrets), "the scan finds a value in clear"
    places: dict[str, list[bytes | None]] = {
        "topics": list(topic_blobs(settings)),
        "output": [output.encode()],
        "dump": [pg_dump_text(url)],
    }
    files = list(file_blobs(Path(settings.state_dir), Path(settings.personalization_dir), skip=[out]))
    places["files"] = [blob for _path, blob in files]
    assert places["topics"] and files
    found = {where: scan(blobs, secrets) for where, blobs in places.items()}
    found["dump as bytea"] = scan(places["dump"], hex_forms(secrets))
    leaks = {
        where: [files[h.blob][0].name if where == "files" else h.blob for h in hits]
        for where, hits in found.items()
        if hits
    }
    assert leaks == {}


def _audited_with_real_actors(settings: Settings, cli_env: dict[str, str]) -> None:
    """Every row of the audit log names the demo's operator or a service, and the chain verifies."""
    assert settings.database_url is not None
    with connect(settings.database_url.get_secret_value()) as conn:
        actors = {str(row[0]) for row in conn.execute("SELECT DISTINCT actor FROM audit_log")}
    assert "demo" in actors and "service:nightly" in actors
    assert all(actor == "demo" or actor.startswith("service:") for actor in actors), actors
    verified = run(["audit", "verify", "--json"], cli_env)
    assert verified.returncode == 0, verified.stdout
    assert json.loads(verified.stdout)["ok"]


def _reload_kept_what_the_system_did(settings: Settings, out: Path) -> None:
    """Night 2's document was loaded over the same persons: the savings functions activated on night 1, which
    that document still lists as INACTIVE (the registry's view), stay ACTIVE."""
    assert scalar(settings, "SELECT count(*) FROM audit_log WHERE action = 'reference.load'") == 2
    night2 = json.loads((out / "reference.night2.json").read_text(encoding="utf-8"))
    listed_inactive = {
        card["card_number"]
        for person in night2["persons"]
        for card in person["cards"]
        if card["financial_status"] == "INACTIVE"
    }
    assert settings.database_url is not None
    from issuance.store.db import connect

    with connect(settings.database_url.get_secret_value(), autocommit=True) as conn:
        # Activations of registry cards on night 1 answered on the first try, before night 2's reload.
        rows = conn.execute(
            "SELECT a.card_number, p.financial_status FROM applications a"
            " JOIN person_cards p USING (card_number)"
            " WHERE a.application_type = 'FINANCIAL_ACTIVATION' AND a.state = 'COMPLETED'"
            " AND a.bank_refusals = 0 AND a.first_run_id = (SELECT min(run_id) FROM runs)"
        ).fetchall()
    reloaded = {str(card): str(status) for card, status in rows if card in listed_inactive}
    assert reloaded, "no savings function was activated before the reload"
    assert set(reloaded.values()) == {"ACTIVE"}
