"""`issuance status` and `issuance report` as a user runs them, on applications and cards as the night, the
bank, the vendor and the branch leave them (written straight into PostgreSQL)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta

from issuance.domain.lifecycle import ApplicationState as A
from issuance.domain.lifecycle import CardStatus as C
from issuance.domain.lifecycle import FinancialStatus as F
from issuance.settings import Settings
from issuance.store.db import connect
from tests.factories import BANK, BRANCH
from tests.fixtures_dashboard import fixed_vault
from tests.fixtures_lifecycle import NOW, seed_application, seed_card, seed_history, seed_run, seed_step

CLI = [sys.executable, "-c", "from cli.main import main; main()"]


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=120, check=False)


def _seed(settings: Settings) -> dict[str, str]:
    """A collected card with every step of both sides, its holder's activation, and cards on their way."""
    assert settings.database_url is not None
    vault = fixed_vault()
    with connect(settings.database_url.get_secret_value(), autocommit=True) as conn, conn.transaction():
        run1, run2, run3 = (seed_run(conn, n) for n in (1, 2, 3))
        done = seed_card(conn, vault, 1, C.ISSUED, F.ACTIVE, state=A.COMPLETED, run_id=run1)
        t = NOW - timedelta(days=10)
        seed_history(conn, done.application_id, "SUBMITTED", "ACCEPTED", "verify", t, run1)
        seed_step(conn, done.application_id, "card", None, "ORDERED", "nightly", t, run1)
        seed_step(conn, done.application_id, "financial", "NONE", "REQUESTED", "nightly", t, run1)
        seed_step(
            conn,
            done.application_id,
            "financial",
            "REQUESTED",
            "OPENED",
            f"bank:{BANK}",
            t + timedelta(hours=1),
        )
        seed_step(
            conn,
            done.application_id,
            "card",
            "ORDERED",
            "IN_PRODUCTION",
            "nightly",
            t + timedelta(days=1),
            run2,
        )
        seed_step(
            conn,
            done.application_id,
            "card",
            "IN_PRODUCTION",
            "PRODUCED",
            "vendor:VENDOR-A",
            t + timedelta(days=3),
        )
        seed_step(
            conn,
            done.application_id,
            "card",
            "PRODUCED",
            "AT_BRANCH",
            f"branch:{BRANCH}",
            t + timedelta(days=4),
        )
        seed_step(
            conn,
            done.application_id,
            "card",
            "AT_BRANCH",
            "ISSUED",
            f"branch:{BRANCH}",
            t + timedelta(days=5),
        )
        seed_history(conn, done.application_id, "ACCEPTED", "COMPLETED", "branch", t + timedelta(days=5))
        seed_step(
            conn, done.application_id, "financial", "OPENED", "ACTIVE", f"bank:{BANK}", t + timedelta(days=7)
        )
        # The holder's activation of that card (a FINANCIAL_ACTIVATION of a card this system issued).
        activation = seed_application(
            conn, vault, 2, A.COMPLETED, application_type="FINANCIAL_ACTIVATION", card_number=done.card_number
        )
        seed_history(conn, activation, "SUBMITTED", "ACCEPTED", "verify", t + timedelta(days=6), run3)
        seed_history(conn, activation, "ACCEPTED", "COMPLETED", "activation", t + timedelta(days=7))
        ordered = seed_card(conn, vault, 3, C.ORDERED, F.REQUESTED, days_in_status=2)
        seed_card(conn, vault, 4, C.AT_BRANCH, F.OPENED, days_in_status=40)
        seed_application(conn, vault, 5, A.REJECTED)
    return {
        "done": done.application_id,
        "id_number": done.id_number,
        "card": done.card_number or "",
        "account": done.account_number or "",
        "activation": activation,
        "ordered": ordered.application_id,
    }


def test_status_shows_both_sides_and_every_step_masked(settings: Settings, cli_env: dict[str, str]) -> None:
    seeded = _seed(settings)
    shown = run(["--lang", "en", "status", seeded["done"], "--operator", "ops-1"], cli_env)
    assert shown.returncode == 0, shown.stderr
    assert "COMPLETED" in shown.stdout and seeded["card"] in shown.stdout
    assert (
        "vendor:VENDOR-A" in shown.stdout
        and "nightly run 2" in shown.stdout
        and "(counter-07)" in shown.stdout
    )
    assert seeded["id_number"] not in shown.stdout and seeded["account"] not in shown.stdout
    assert "张伟" not in shown.stdout and "张*" in shown.stdout

    view = json.loads(run(["status", seeded["done"], "--operator", "ops-1", "--json"], cli_env).stdout)
    assert (view["application"]["state"], view["card"]["status"], view["card"]["financial_status"]) == (
        "COMPLETED",
        "ISSUED",
        "ACTIVE",
    )
    assert view["card"]["account_number"].count("*") >= 9 and view["card"]["chip_serial"] == "CHIP00000001"
    steps = [(s["side"], s["to"], s["source"]) for s in view["steps"]]
    assert steps == [
        ("application", "ACCEPTED", "nightly run 1"),
        ("card", "ORDERED", "nightly run 1"),
        ("financial", "REQUESTED", "nightly run 1"),
        ("financial", "OPENED", f"bank:{BANK}"),
        ("card", "IN_PRODUCTION", "nightly run 2"),
        ("card", "PRODUCED", "vendor:VENDOR-A"),
        ("card", "AT_BRANCH", f"branch:{BRANCH}"),
        ("card", "ISSUED", f"branch:{BRANCH}"),
        ("application", "COMPLETED", "branch"),
        ("financial", "ACTIVE", f"bank:{BANK}"),
    ]
    assert [s["operator"] for s in view["steps"] if s["to"] == "ISSUED"] == ["counter-07"]

    # An activation shows the card it activates, with that card's steps.
    activation = json.loads(
        run(["status", seeded["activation"], "--operator", "ops-1", "--json"], cli_env).stdout
    )
    assert activation["card"]["issued_by"] == "this system"
    assert (activation["card"]["status"], activation["card"]["financial_status"]) == ("ISSUED", "ACTIVE")
    assert [s["to"] for s in activation["steps"]][-2:] == ["ACTIVE", "COMPLETED"]  # the bank, then its effect

    ordered = json.loads(run(["status", seeded["ordered"], "--operator", "ops-1", "--json"], cli_env).stdout)
    assert ordered["card"]["card_number"] is None and ordered["card"]["account_number"] is None
    assert (ordered["card"]["status"], ordered["card"]["financial_status"]) == ("ORDERED", "REQUESTED")

    unknown = run(["status", "NO-SUCH-APPLICATION", "--operator", "ops-1"], cli_env)
    assert unknown.returncode == 2
    assert "NO-SUCH-APPLICATION" in unknown.stderr

    anonymous = run(
        ["status", seeded["done"]], {k: v for k, v in cli_env.items() if k != "ISSUANCE_OPERATOR"}
    )
    assert anonymous.returncode == 2 and "--operator" in anonymous.stderr
    # Each read of personal data is in the audit log: who read which application (what was typed when
    # nothing was shown stays out of it).
    assert settings.database_url is not None
    with connect(settings.database_url.get_secret_value()) as conn:
        reads = conn.execute(
            "SELECT actor, entity_id, detail->>'shown' FROM audit_log WHERE action = 'application.read'"
            " ORDER BY seq"
        ).fetchall()
    shown_ids = [seeded["done"], seeded["done"], seeded["activation"], seeded["ordered"]]
    assert reads == [*(("ops-1", i, "true") for i in shown_ids), ("ops-1", "(not shown)", "false")]


def test_report_shows_the_funnel_backlogs_and_reminders(settings: Settings, cli_env: dict[str, str]) -> None:
    _seed(settings)
    report = run(["report", "--json"], cli_env)
    assert report.returncode == 0, report.stderr
    document = json.loads(report.stdout)
    funnel = {f["step"]: f["reached"] for f in document["funnel"]}
    assert funnel == {
        "submitted": 4,  # new cards: the holder's activation is not a step of their journey
        "accepted": 3,
        "account_opened": 2,
        "produced": 2,
        "at_branch": 2,
        "collected": 1,
        "savings_active": 1,
    }
    backlogs = {b["waiting_for"]: b for b in document["backlogs"]}
    assert (backlogs["bank"]["total"], backlogs["bank"]["oldest_days"]) == (1, 2)
    assert (backlogs["branch"]["total"], backlogs["branch"]["oldest_days"]) == (1, 40)
    assert document["uncollected"]["branches"] == [{"branch_code": BRANCH, "cards": 1, "oldest_days": 40}]
    assert document["by_state"]["COMPLETED"] == 2 and document["by_state"]["ACCEPTED"] == 2
    assert sum(document["by_bank"][BANK].values()) == 5
    text = run(["--lang", "en", "report"], cli_env)
    assert text.returncode == 0 and "by bank" in text.stdout and "Savings active" in text.stdout
    reminders = run(["--lang", "en", "report", "--reminders"], cli_env)
    assert reminders.returncode == 0 and BRANCH in reminders.stdout and "oldest 40 days" in reminders.stdout
    # A shorter reminder period lists nothing more here, a longer one nothing at all.
    later = run(["report", "--reminders", "--json"], {**cli_env, "ISSUANCE_COLLECTION_REMINDER_DAYS": "45"})
    assert json.loads(later.stdout)["branches"] == []


def test_text_is_chinese_by_default_english_on_request_and_json_the_same_in_both(
    settings: Settings, cli_env: dict[str, str]
) -> None:
    seeded = _seed(settings)
    status = ["status", seeded["done"], "--operator", "ops-1"]
    commands = {"status": status, "report": ["report"], "reminders": ["report", "--reminders"]}
    for name, args in commands.items():
        chinese, english = run([*args, "--json"], cli_env), run(["--lang", "en", *args, "--json"], cli_env)
        assert chinese.returncode == english.returncode == 0, (name, chinese.stderr, english.stderr)
        assert chinese.stdout == english.stdout, name  # byte for byte: keys and codes are English
        assert json.loads(chinese.stdout)
    by_setting = run([*status, "--json"], {**cli_env, "ISSUANCE_LANGUAGE": "en"})
    assert by_setting.stdout == run([*status, "--json"], cli_env).stdout

    shown = run(status, cli_env)
    assert "申请人" in shown.stdout and "已办结" in shown.stdout and "夜间批次 2" in shown.stdout
    assert "COMPLETED" in shown.stdout  # the state's code beside its label, as the runbook names it
    assert "applicant" not in shown.stdout and "年" in shown.stdout  # times as Chinese dates
    shown_en = run(["--lang", "en", *status], {**cli_env, "ISSUANCE_LANGUAGE": "zh_CN"})
    assert "applicant" in shown_en.stdout and "申请人" not in shown_en.stdout

    report = run(["report"], cli_env).stdout
    assert (
        "生命周期" in report
        and "金融功能已激活" in report
        and "按银行" in report
        and "lifecycle" not in report
    )
    reminders = run(["report", "--reminders"], cli_env).stdout
    assert "最久 40 天" in reminders
    report_en = run(["report"], {**cli_env, "ISSUANCE_LANGUAGE": "en"}).stdout
    assert "lifecycle" in report_en and "Savings active" in report_en and "生命周期" not in report_en

    unknown = run(["status", "NO-SUCH-APPLICATION", "--operator", "ops-1"], cli_env)
    assert unknown.returncode == 2 and unknown.stderr.startswith("error: 没有申请 'NO-SUCH-APPLICATION'")
