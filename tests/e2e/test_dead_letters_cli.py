"""`issuance dead-letters` as an operator runs it after a night that set records aside: list and show without
personal data, export for repair, re-drive into the next night, a second re-drive without double effect,
handle with a reason, and the audit rows of all of it."""

from __future__ import annotations

import base64
import json
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from issuance.codec.avro import decode
from issuance.errors import DecodeError
from issuance.settings import Settings
from issuance.store.db import connect
from tests.fixtures_nightly import Generated, load_reference_file, make_generated, publish_night

CLI = [sys.executable, "-c", "from cli.main import main; main()"]
OPERATOR = "ops.li"


def issuance(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, check=False, timeout=600)


def ok(done: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    return done


def night(env: dict[str, str], business_date: str) -> dict[str, Any]:
    done = ok(issuance(env, "batch", "run", "--business-date", business_date, "--json"))
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def personal_values(generated: Generated) -> list[str]:
    """ID numbers, names and phones of the raw messages whose record can be read (a record sealed at submit,
    JSON text or Avro)."""
    values = []
    for line in (generated.directory / "raw_messages.jsonl").read_text(encoding="utf-8").splitlines():
        message = json.loads(line)
        if isinstance(message.get("record"), dict):  # its personal fields opened by `show`, then masked
            applicant = message["record"].get("applicant") or {}
            values += [applicant[k] for k in ("id_number", "name", "phone") if applicant.get(k)]
            continue
        encoded = message["value_b64"]
        if encoded is None:  # a null record: nothing to collect
            continue
        data = base64.b64decode(encoded)
        try:
            record = json.loads(data)
        except ValueError:
            try:
                record = decode(data).record
            except DecodeError:  # undecodable test data: nothing to collect
                continue
        applicant = record.get("applicant") or {}
        values += [applicant[k] for k in ("id_number", "name", "phone") if applicant.get(k)]
    return values


@pytest.fixture
def after_night_one(settings: Settings, cli_env: dict[str, str], tmp_path: Path) -> Generated:
    generated = make_generated(tmp_path / "data", 30, seed=5)
    assert settings.database_url is not None
    load_reference_file(settings, settings.database_url.get_secret_value(), generated)
    publish_night(settings, generated, 1)
    night(cli_env, generated.business_date(1))
    return generated


def listed(env: dict[str, str], *filters: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(
        ok(issuance(env, "dead-letters", "list", "--json", *filters)).stdout
    )["dead_letters"]
    return rows


def audit(settings: Settings) -> list[tuple[str, str, str, dict[str, Any]]]:
    assert settings.database_url is not None
    with connect(settings.database_url.get_secret_value()) as conn:
        rows = conn.execute(
            "SELECT actor, action, entity_id, detail FROM audit_log WHERE entity = 'dead_letter' ORDER BY id"
        ).fetchall()
    return [(str(a), str(b), str(c), dict(d)) for a, b, c, d in rows]


def application(settings: Settings, application_id: str) -> dict[str, Any]:
    """What the nights did to one application: its rows, history, cards and accounts."""
    assert settings.database_url is not None
    with connect(settings.database_url.get_secret_value()) as conn:
        return {
            "applications": conn.execute(
                "SELECT state, reasons, is_open, agreement_id FROM applications WHERE application_id = %s",
                (application_id,),
            ).fetchall(),
            "history": conn.execute(
                "SELECT from_state, to_state, stage, reasons, run_id FROM application_history"
                " WHERE application_id = %s ORDER BY id",
                (application_id,),
            ).fetchall(),
            "cards": conn.execute(
                "SELECT count(*) FROM cards WHERE application_id = %s", (application_id,)
            ).fetchall(),
            "accounts": conn.execute(
                "SELECT count(*) FROM bank_accounts WHERE application_id = %s", (application_id,)
            ).fetchall(),
            "decisions": conn.execute(
                "SELECT count(*) FROM outbox WHERE event_type = 'DecisionIssued' AND message_key = %s",
                (application_id.encode(),),
            ).fetchall(),
        }


def test_list_and_show_reveal_no_personal_data_and_show_is_audited(
    settings: Settings, cli_env: dict[str, str], after_night_one: Generated
) -> None:
    raw = [
        json.loads(line)
        for line in (after_night_one.directory / "raw_messages.jsonl")
        .read_text(encoding="utf-8")
        .splitlines()
    ]
    rows = listed(cli_env)
    # Every raw message is a dead letter; so is a different application under a used id, if night 1 has one.
    reused = len(listed(cli_env, "--reason", "application_id_reused"))
    assert len(rows) == len(raw) + reused and {r["status"] for r in rows} == {"OPEN"}
    unknown = [m for m in raw if m["expected_reason"] == "UNKNOWN_SCHEMA"]
    assert len(listed(cli_env, "--reason", "unknown_schema")) == len(unknown) > 0
    on_agreements = [m for m in raw if m["topic"] == "agreements"]
    assert len(listed(cli_env, "--topic", "agreements")) == len(on_agreements) > 0
    first_page = json.loads(ok(issuance(cli_env, "dead-letters", "list", "--json", "--limit", "4")).stdout)
    second = listed(cli_env, "--limit", "100", "--before", str(first_page["next_before"]))
    assert [r["id"] for r in first_page["dead_letters"] + second] == [r["id"] for r in rows]
    assert issuance(cli_env, "dead-letters", "list", "--status", "lost").returncode == 2

    secrets = personal_values(after_night_one)
    assert len(secrets) >= 9  # the JSON text and the readable Avro records
    screens = [ok(issuance(cli_env, "dead-letters", "list")).stdout]
    for row in rows:
        screens.append(
            ok(issuance(cli_env, "dead-letters", "show", str(row["id"]), "--operator", OPERATOR)).stdout
        )
        shown = json.loads(
            ok(
                issuance(cli_env, "dead-letters", "show", str(row["id"]), "--operator", OPERATOR, "--json")
            ).stdout
        )
        screens.append(json.dumps(shown, ensure_ascii=False))
        payload = shown["payload"]
        assert payload["record"] is not None or payload["hex_excerpt"] or payload["form"] == "empty", payload
    everything = "\n".join(screens)
    leaked = [s for s in secrets if s in everything]
    assert not leaked, f"{len(leaked)} personal values in clear"
    assert "*" in everything

    assert len(audit(settings)) == 2 * len(rows)
    assert {(a, b) for a, b, _, _ in audit(settings)} == {(OPERATOR, "dead_letter.show")}
    missing_operator = issuance(
        {k: v for k, v in cli_env.items() if k != "ISSUANCE_OPERATOR"},
        "dead-letters",
        "show",
        str(rows[0]["id"]),
    )
    assert missing_operator.returncode == 2 and "--operator" in missing_operator.stderr
    unknown = issuance(cli_env, "dead-letters", "show", "999999", "--operator", OPERATOR)
    assert unknown.returncode == 2 and "no dead letter 999999" in unknown.stderr


def test_export_is_owner_only_and_handle_closes_with_a_reason(
    settings: Settings, cli_env: dict[str, str], after_night_one: Generated, tmp_path: Path
) -> None:
    violation = next(r for r in listed(cli_env, "--reason", "SCHEMA_VIOLATION", "--topic", "applications"))
    out = tmp_path / "repair" / "record.json"
    out.parent.mkdir()
    ok(
        issuance(
            cli_env, "dead-letters", "export", str(violation["id"]), "--out", str(out), "--operator", OPERATOR
        )
    )
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    record = json.loads(out.read_text(encoding="utf-8"))
    assert record["application_id"]  # the JSON form of the record, whichever it is
    again = issuance(
        cli_env, "dead-letters", "export", str(violation["id"]), "--out", str(out), "--operator", OPERATOR
    )
    assert again.returncode == 2 and "exists" in again.stderr

    malformed = listed(cli_env, "--reason", "MALFORMED_MESSAGE")[0]
    raw = tmp_path / "repair" / "raw.bin"
    ok(
        issuance(
            cli_env, "dead-letters", "export", str(malformed["id"]), "--out", str(raw), "--operator", OPERATOR
        )
    )
    assert stat.S_IMODE(raw.stat().st_mode) == 0o600 and raw.stat().st_size > 0

    number = "110105198001011238"
    refused = issuance(
        cli_env,
        "dead-letters",
        "handle",
        str(malformed["id"]),
        "--reason",
        f"holder {number}",
        "--operator",
        OPERATOR,
    )
    assert refused.returncode == 2 and number not in refused.stderr
    ok(
        issuance(
            cli_env,
            "dead-letters",
            "handle",
            str(malformed["id"]),
            "--reason",
            "branch resent the application by hand",
            "--operator",
            OPERATOR,
        )
    )
    handled = listed(cli_env, "--status", "handled")
    assert [(r["id"], r["closed_by"], r["handled_reason"]) for r in handled] == [
        (malformed["id"], OPERATOR, "branch resent the application by hand")
    ]
    twice = issuance(
        cli_env, "dead-letters", "handle", str(malformed["id"]), "--reason", "again", "--operator", OPERATOR
    )
    assert twice.returncode == 2 and "handled already" in twice.stderr
    not_redriven = issuance(cli_env, "dead-letters", "redrive", str(malformed["id"]), "--operator", OPERATOR)
    assert not_redriven.returncode == 2 and "--again" in not_redriven.stderr

    assert [(b, c, d.get("form") or d.get("reason")) for _, b, c, d in audit(settings)] == [
        ("dead_letter.export", str(violation["id"]), "json"),
        ("dead_letter.export", str(malformed["id"]), "raw"),
        ("dead_letter.handle", str(malformed["id"]), "branch resent the application by hand"),
    ]


def test_a_repaired_record_is_decided_by_the_next_night_and_a_second_redrive_has_no_double_effect(
    settings: Settings, cli_env: dict[str, str], after_night_one: Generated, tmp_path: Path
) -> None:
    env = dict(cli_env, ISSUANCE_OPERATOR=OPERATOR)
    violations = listed(env, "--reason", "SCHEMA_VIOLATION", "--topic", "applications")
    out = tmp_path / "record.json"
    repaired = None
    for row in violations:  # the one whose submitted_at lacks its offset
        out.unlink(missing_ok=True)
        ok(issuance(env, "dead-letters", "export", str(row["id"]), "--out", str(out)))
        record = json.loads(out.read_text(encoding="utf-8"))
        if isinstance(record.get("submitted_at"), str) and len(record["submitted_at"]) == 19:
            repaired, dead_letter = record, row
            break
    assert repaired is not None
    application_id = repaired["application_id"]

    still_broken = issuance(env, "dead-letters", "redrive", str(dead_letter["id"]), "--file", str(out))
    assert still_broken.returncode == 2 and "submitted_at" in still_broken.stderr
    unknown = listed(env, "--reason", "UNKNOWN_SCHEMA")[0]
    as_it_was = issuance(env, "dead-letters", "redrive", str(unknown["id"]))
    assert as_it_was.returncode == 2 and "still fails" in as_it_was.stderr

    repaired["submitted_at"] += "+08:00"
    out.unlink()
    out.write_text(json.dumps(repaired, ensure_ascii=False), encoding="utf-8")
    first = json.loads(
        ok(
            issuance(env, "dead-letters", "redrive", str(dead_letter["id"]), "--file", str(out), "--json")
        ).stdout
    )
    assert first["record_id"] == application_id and first["status"] == "REDRIVEN"
    refused = issuance(env, "dead-letters", "redrive", str(dead_letter["id"]), "--file", str(out))
    assert refused.returncode == 2 and "already re-driven" in refused.stderr

    night(env, after_night_one.business_date(2))
    decided = application(settings, application_id)
    assert len(decided["applications"]) == 1 and len(decided["history"]) >= 1
    assert decided["decisions"] == [(1,)]

    second = json.loads(
        ok(
            issuance(
                env,
                "dead-letters",
                "redrive",
                str(dead_letter["id"]),
                "--file",
                str(out),
                "--again",
                "--json",
            )
        ).stdout
    )
    assert second["offset"] != first["offset"] or second["partition"] != first["partition"]
    report = night(env, "2026-03-06")  # the next day: within the agreement window, nothing else changes
    assert report["records_planned"] == 1 and report["balanced"]
    assert report["reconciliation"]["total"]["resent"] == 1  # the same application, sent again
    again = application(settings, application_id)
    # No double effect: the same one application, history, cards and accounts; the branch that sent it again
    # is told the first decision again (a second DecisionIssued with the same state and reasons).
    assert {k: v for k, v in again.items() if k != "decisions"} == {
        k: v for k, v in decided.items() if k != "decisions"
    }
    assert again["decisions"] == [(2,)]
    assert listed(env, "--run", str(report["run_id"])) == []  # no new dead letter

    shown = json.loads(ok(issuance(env, "dead-letters", "show", str(dead_letter["id"]), "--json")).stdout)
    assert [(r["repaired"], r["record_id"]) for r in shown["redrives"]] == [(True, application_id)] * 2
    assert shown["status"] == "REDRIVEN" and shown["closed_by"] == OPERATOR
    redrives = [(b, d["again"]) for _, b, _, d in audit(settings) if b == "dead_letter.redrive"]
    assert redrives == [("dead_letter.redrive", False), ("dead_letter.redrive", True)]
