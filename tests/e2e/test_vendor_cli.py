"""`issuance vendor simulate|receive` and `issuance branch simulate` as an operator runs them: exit codes,
one-line errors, a file received twice, no personal data in the output."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from issuance.domain.lifecycle import CardStatus
from issuance.settings import Settings
from tests.fixtures_partners import VENDOR, rows, seed_cards, sign_return_file, write_vendor_file

# The partner command groups under the same root callback as `issuance` (settings from ISSUANCE_*).
APP = """
import sys, typer
from cli.common import configure, invocation, report_failure
from issuance.settings import Settings
import cli.branch, cli.vendor
app = typer.Typer(pretty_exceptions_enable=False)
@app.callback()
def root(ctx: typer.Context) -> None:
    settings = Settings()
    configure(settings, debug=False)
    ctx.obj = settings
cli.vendor.register(app)
cli.branch.register(app)
invocation.command = "issuance " + " ".join(sys.argv[1:3])
try:
    app()
except Exception as exc:
    sys.exit(report_failure(exc, invocation.command))
"""
CLI = [sys.executable, "-c", APP]
OPERATOR = "ops.wang"


def issuance(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, check=False, timeout=600)


def ok(done: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    return done


def as_json(done: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(ok(done).stdout)


def test_simulate_then_receive_twice(settings: Settings, cli_env: dict[str, str]) -> None:
    cards = seed_cards(settings, 5)
    write_vendor_file(settings, 1, cards)

    written = as_json(issuance(cli_env, "vendor", "simulate", "--fail-rate", "0.4", "--seed", "5", "--json"))
    (entry,) = written["return_files"]
    path = Path(entry["path"])
    assert path == Path(settings.personalization_dir) / "run-000001" / f"{VENDOR}.return.jsonl"
    assert entry["produced"] + entry["failed"] == 5
    content = path.read_bytes()
    rerun = ["vendor", "simulate", "--run", "1", "--fail-rate", "0.4", "--seed", "5", "--json"]
    assert as_json(issuance(cli_env, *rerun)) == written
    assert path.read_bytes() == content  # the same seed writes the same file

    first = ok(issuance(cli_env, "vendor", "receive", str(path), "--operator", OPERATOR))
    counts = f"{entry['produced']} produced and dispatched, {entry['failed']} failed and to be made again"
    assert counts in first.stdout
    for card in cards:
        assert card.id_number not in first.stdout + first.stderr

    second = ok(issuance(cli_env, "vendor", "receive", str(path), "--operator", OPERATOR))
    assert "already received" in second.stdout and "nothing changed" in second.stdout
    report = as_json(issuance(cli_env, "vendor", "receive", str(path), "--operator", OPERATOR, "--json"))
    assert report["already_received"] is True
    assert Counter(status for (status,) in rows(settings, "SELECT status FROM cards")) == {
        CardStatus.PRODUCED.value: entry["produced"],
        CardStatus.ORDERED.value: entry["failed"],
    }
    # Answered: the default simulate has nothing left to do.
    assert as_json(issuance(cli_env, "vendor", "simulate", "--json")) == {"return_files": []}


def test_a_header_that_does_not_match_is_bad_input_in_one_line(
    settings: Settings, cli_env: dict[str, str]
) -> None:
    cards = seed_cards(settings, 2)
    write_vendor_file(settings, 1, cards)
    path = Path(as_json(issuance(cli_env, "vendor", "simulate", "--json"))["return_files"][0]["path"])
    header, *body = path.read_text().splitlines()
    path.write_text(
        "\n".join([json.dumps({**json.loads(header), "manifest_sha256": "f" * 64}), *body]) + "\n"
    )

    altered = issuance(cli_env, "vendor", "receive", str(path), "--operator", OPERATOR)
    assert altered.returncode == 2 and "Traceback" not in altered.stderr
    (line,) = altered.stderr.strip().splitlines()
    assert f"not signed by vendor {VENDOR} (SIGNATURE_INVALID" in line and "nothing applied" in line

    sign_return_file(settings, path)  # signed as it is: the header is what is wrong
    done = issuance(cli_env, "vendor", "receive", str(path), "--operator", OPERATOR)

    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error:") and "manifest_sha256 differs" in line
    assert rows(settings, "SELECT count(*) FROM vendor_returns") == [(0,)]

    missing = issuance(
        cli_env, "vendor", "receive", str(path.with_name("nothing.jsonl")), "--operator", OPERATOR
    )
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    anonymous = issuance({**cli_env, "ISSUANCE_OPERATOR": ""}, "vendor", "receive", str(path))
    assert anonymous.returncode == 2 and "--operator" in anonymous.stderr


def test_branch_simulate_prints_what_it_did(settings: Settings, cli_env: dict[str, str]) -> None:
    stats = as_json(issuance(cli_env, "branch", "simulate", "--until-idle", "1", "--json"))
    assert (stats["receipts"], stats["collections"], stats["activations"]) == (0, 0, 0)
    assert rows(settings, "SELECT count(*) FROM branch_sim.runs") == [(1,)]
