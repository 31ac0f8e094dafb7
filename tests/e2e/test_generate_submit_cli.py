"""`issuance generate` then `issuance submit` as a user types them: summaries, exit codes, no PII."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.fixtures_services import Partners

CLI = [sys.executable, "-c", "from cli.main import main; main()"]


def issuance(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, check=False, timeout=300)


def _json(done: subprocess.CompletedProcess[str]) -> Any:
    assert "Traceback" not in done.stderr, done.stderr
    return json.loads(done.stdout)


def _branches_and_banks(env: dict[str, str], out: Path, partners: Partners) -> None:
    """The generated reference data loaded and its branches' and banks' keys provisioned: a record is
    published only signed by the party it speaks for."""
    assert issuance(env, "setup").returncode == 0
    loaded = issuance(env, "reference", "load", str(out / "reference.json"), "--operator", "ops-1")
    assert loaded.returncode == 0, loaded.stderr
    partners.provision()


def test_generate_then_submit_every_file(cli_env: dict[str, str], partners: Partners, tmp_path: Path) -> None:
    out = tmp_path / "data"
    generated = issuance(
        cli_env, "generate", "--applications", "300", "--seed", "4", "--out", str(out), "--json"
    )
    assert generated.returncode == 0, generated.stderr
    manifest = _json(generated)
    assert manifest["counts"]["applications"] == 300
    _branches_and_banks(cli_env, out, partners)

    for night in manifest["nights"]:
        for kind, name in (
            ("applications", "applications"),
            ("agreements", "agreements"),
            ("raw", "raw_messages"),
        ):
            if not night[name]:
                continue
            path = out / night[name]
            done = issuance(cli_env, "submit", kind, str(path), "--json")
            summary = _json(done)
            lines = len(path.read_text(encoding="utf-8").splitlines())
            assert (done.returncode, summary["published"], summary["rejected"]) == (0, lines, 0), summary


def test_rejected_lines_exit_2_and_name_line_and_field(
    cli_env: dict[str, str], partners: Partners, tmp_path: Path
) -> None:
    out = tmp_path / "data"
    assert issuance(cli_env, "generate", "-n", "20", "--seed", "6", "-o", str(out)).returncode == 0
    _branches_and_banks(cli_env, out, partners)
    records = [
        json.loads(line) for line in (out / "applications.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    secret = records[1]["applicant"]["id_number"]
    records[1]["applicant"]["id_number"] = secret[:-1] + "A"  # a letter other than X: breaks the pattern
    records[2]["channel"] = "FAX"
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n", encoding="utf-8")

    done = issuance(
        cli_env, "submit", "applications", str(path), "--json", "--report", str(tmp_path / "r.jsonl")
    )

    assert done.returncode == 2
    summary = _json(done)
    assert summary["published"] == len(records) - 2
    assert [(r["line"], r["field"]) for r in summary["rejections"]] == [
        (2, "applicant.id_number"),
        (3, "channel"),
    ]
    assert secret[:-1] not in done.stdout + done.stderr
    human = issuance(cli_env, "submit", "applications", str(path))
    assert human.returncode == 2
    assert "applicant.id_number" in human.stderr and secret[:-1] not in human.stdout + human.stderr


def test_a_missing_file_is_bad_input(cli_env: dict[str, str], tmp_path: Path) -> None:
    assert issuance(cli_env, "setup").returncode == 0
    done = issuance(cli_env, "submit", "agreements", str(tmp_path / "nope.jsonl"))
    assert done.returncode == 2
    assert "nope.jsonl" in done.stderr


def test_submit_before_setup_says_to_run_setup(cli_env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "one.jsonl"
    path.write_text("{}\n", encoding="utf-8")
    done = issuance(cli_env, "submit", "applications", str(path))
    assert done.returncode == 1
    assert "issuance setup" in " ".join(done.stderr.split())
