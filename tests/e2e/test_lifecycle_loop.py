"""One night's applications followed from the branch's line to cards in their holders' hands with the savings
function active, step by step as an operator runs the commands, against the real broker and PostgreSQL.

After every step the whole database is held against the lifecycle model: no application or card is in a
combination the model forbids; no card is ISSUED without its branch's confirmed collection; no account is
ACTIVE without its holder's completed activation; every account number the bureau holds is one a bank
assigned. And a vendor's return file applied twice changes nothing."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from issuance.domain.lifecycle import ApplicationState, CardStatus, FinancialStatus, Lifecycle, violations
from issuance.domain.model import ApplicationType
from issuance.settings import Settings
from issuance.store.db import connect
from tests.fixtures_processes import run
from tests.fixtures_services import Partners

pytestmark = pytest.mark.slow
IDLE = "2"


def issuance(env: dict[str, str], *args: str) -> str:
    done = run(list(args), env, timeout=300)
    assert done.returncode == 0, f"issuance {' '.join(args)}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
    return done.stdout


def status(env: dict[str, str], application_id: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        issuance(env, "status", application_id, "--json", "--operator", "ops-1")
    )
    return document


def sides(env: dict[str, str], application_id: str) -> tuple[str, str | None, str | None]:
    shown = status(env, application_id)
    card = shown.get("card") or {}
    return shown["application"]["state"], card.get("status"), card.get("financial_status")


def hold_against_the_model(database_url: str) -> dict[str, int]:
    """Every rule the lifecycle fixes, over every row; the number of cards per status (for the next step)."""
    with connect(database_url) as conn:
        rows = conn.execute(
            "SELECT a.application_id, a.application_type, a.state, a.retry_due, c.status,"
            " coalesce(b.status, 'NONE') FROM applications a"
            " LEFT JOIN cards c USING (application_id) LEFT JOIN bank_accounts b USING (application_id)"
            " WHERE a.application_type = 'NEW_CARD'"
        ).fetchall()
        for application_id, kind, state, retry_due, card, financial in rows:
            lifecycle = Lifecycle(
                ApplicationType(kind),
                ApplicationState(state),
                None if card is None else CardStatus(card),
                FinancialStatus(financial),
                retry_due,
            )
            assert violations(lifecycle) == [], (application_id, lifecycle)
        uncollected = conn.execute(
            "SELECT count(*) FROM cards c WHERE c.status = 'ISSUED' AND (c.collected_at IS NULL OR NOT EXISTS"
            " (SELECT 1 FROM card_history h WHERE h.application_id = c.application_id AND h.side = 'card'"
            "  AND h.to_status = 'ISSUED' AND h.source LIKE 'branch:%%'))"
        ).fetchone()
        assert uncollected == (0,), "a card ISSUED without its branch's confirmed collection"
        unactivated = conn.execute(
            "SELECT count(*) FROM bank_accounts b JOIN cards c USING (application_id)"
            " WHERE b.status = 'ACTIVE' AND NOT EXISTS (SELECT 1 FROM applications f"
            "  WHERE f.application_type = 'FINANCIAL_ACTIVATION' AND f.card_number = c.card_number"
            "  AND f.state = 'COMPLETED')"
        ).fetchone()
        assert unactivated == (0,), "an account ACTIVE without its holder's completed activation"
        invented = conn.execute(
            "SELECT count(*) FROM bank_accounts b WHERE b.account_index IS NOT NULL AND NOT EXISTS"
            " (SELECT 1 FROM bank_sim.accounts s WHERE s.account_index = b.account_index"
            "  AND s.bank_code = b.bank_code)"
        ).fetchone()
        assert invented == (0,), "an account number no bank assigned"
        counts = dict(conn.execute("SELECT status, count(*) FROM cards GROUP BY 1").fetchall())
    return {str(k): int(v) for k, v in counts.items()}


def test_applications_become_cards_in_their_holders_hands_with_the_savings_function_active(
    settings: Settings, cli_env: dict[str, str], tmp_path: Path, partners: Partners
) -> None:
    assert settings.database_url is not None
    database_url = settings.database_url.get_secret_value()
    env = cli_env
    out = tmp_path / "generated"
    issuance(env, "setup")
    issuance(
        env, "generate", "--applications", "12", "--seed", "5", "--invalid-ratio", "0", "--out", str(out)
    )
    manifest = json.loads((out / "manifest.json").read_text())
    night_1 = manifest["nights"][0]
    first = date.fromisoformat(night_1["business_date"])
    issuance(env, "reference", "load", str(out / "reference.json"), "--operator", "ops-1")
    partners.provision()  # the branches', banks' and vendors' keys (configured servers: not automatic)
    issuance(env, "submit", "applications", str(out / night_1["applications"]))
    issuance(env, "submit", "agreements", str(out / night_1["agreements"]))

    # Night 1: verified and accepted; the bank is asked to open the account, no number exists yet.
    issuance(env, "batch", "run", "--business-date", night_1["business_date"])
    cards = hold_against_the_model(database_url)
    assert cards == {"ORDERED": cards["ORDERED"]} and cards["ORDERED"] > 0
    with connect(database_url) as conn:
        first_card = conn.execute("SELECT min(application_id) FROM cards").fetchone()
    assert first_card is not None
    followed = str(first_card[0])
    assert sides(env, followed) == ("ACCEPTED", "ORDERED", "REQUESTED")

    # The bank opens the account and assigns its number.
    issuance(env, "bank", "serve", "--all", "--until-idle", IDLE)
    issuance(env, "consume", "--until-idle", IDLE)
    hold_against_the_model(database_url)
    assert sides(env, followed) == ("ACCEPTED", "ORDERED", "OPENED")

    # Night 2: personalized into its vendor's file.
    issuance(env, "batch", "run", "--business-date", str(first + timedelta(days=1)))
    assert hold_against_the_model(database_url) == {"IN_PRODUCTION": cards["ORDERED"]}
    assert sides(env, followed) == ("ACCEPTED", "IN_PRODUCTION", "OPENED")

    # The vendor returns what it produced; the same file received again changes nothing.
    returned = json.loads(issuance(env, "vendor", "simulate", "--json"))
    paths = [Path(w["path"]) for w in returned["return_files"]]
    assert paths
    for path in paths:
        issuance(env, "vendor", "receive", str(path), "--operator", "vendor-desk")
    produced = hold_against_the_model(database_url)
    assert produced == {"PRODUCED": cards["ORDERED"]}
    for path in paths:
        issuance(env, "vendor", "receive", str(path), "--operator", "vendor-desk")
    assert hold_against_the_model(database_url) == produced
    assert sides(env, followed) == ("ACCEPTED", "PRODUCED", "OPENED")

    # The branch confirms receipt; nobody has collected yet.
    day = str(first + timedelta(days=2))
    branch = ["branch", "simulate", "--until-idle", IDLE, "--date", day]
    issuance(env, *branch, "--collect-rate", "0", "--activate-rate", "0")
    issuance(env, "consume", "--until-idle", IDLE)
    assert hold_against_the_model(database_url) == {"AT_BRANCH": cards["ORDERED"]}
    assert sides(env, followed) == ("ACCEPTED", "AT_BRANCH", "OPENED")

    # The holders collect their cards and go to the bank to activate the savings function.
    issuance(env, *branch, "--collect-rate", "1", "--activate-rate", "1")
    issuance(env, "consume", "--until-idle", IDLE)
    assert hold_against_the_model(database_url) == {"ISSUED": cards["ORDERED"]}
    assert sides(env, followed) == ("COMPLETED", "ISSUED", "OPENED")

    # Night 3 accepts the holders' activations; the bank switches the accounts on.
    issuance(env, "batch", "run", "--business-date", day)
    hold_against_the_model(database_url)
    issuance(env, "bank", "serve", "--all", "--until-idle", IDLE)
    issuance(env, "consume", "--until-idle", IDLE)
    hold_against_the_model(database_url)
    with connect(database_url) as conn:
        activations = conn.execute(
            "SELECT application_id, state, reasons, card_number, bank_refusals, retry_due FROM applications"
            " WHERE application_type = 'FINANCIAL_ACTIVATION' ORDER BY 1"
        ).fetchall()
    assert sides(env, followed) == ("COMPLETED", "ISSUED", "ACTIVE"), activations
    steps = status(env, followed)["steps"]
    sources = [step.get("source", "") for step in steps]
    assert any(s.startswith("bank:") for s in sources) and any(s.startswith("branch:") for s in sources)
    assert any(s.startswith("vendor:") for s in sources)
