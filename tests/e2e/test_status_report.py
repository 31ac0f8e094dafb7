"""`issuance status` and `issuance report` as a user runs them, after activation results were applied."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

from consumers.bank_simulator import FailurePolicy
from consumers.serve import consume_results, serve_banks
from issuance.kafka.topics import Topics
from issuance.services.endpoints import resolve
from issuance.settings import Settings
from tests.factories import BANK
from tests.fixtures_activation import produce, request_for, seed_waiting

CLI = [sys.executable, "-c", "from cli.main import main; main()"]


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=120, check=False)


def test_status_shows_masked_history_and_report_counts(settings: Settings, cli_env: dict[str, str]) -> None:
    waiting = seed_waiting(settings, 12)
    policy = FailurePolicy(fail_rate=0.3, seed=5)
    requests = [request_for(w) for w in waiting]
    produce(
        settings.kafka_bootstrap or "",
        Topics(settings).bank_requests(BANK),
        [r.to_bytes() for r in requests],
    )
    endpoints = resolve(settings)
    serve_banks(settings, endpoints, None, policy, 1.5, threading.Event())
    consume_results(settings, endpoints, 1.5, threading.Event())
    active = next(w for w, r in zip(waiting, requests, strict=True) if policy.failure(r.event_id) is None)
    failing = [w for w, r in zip(waiting, requests, strict=True) if policy.failure(r.event_id)]

    shown = run(["status", active.application_id], cli_env)
    assert shown.returncode == 0, shown.stderr
    assert "ACTIVE" in shown.stdout and active.card_number in shown.stdout
    assert active.id_number not in shown.stdout and active.account_number not in shown.stdout
    assert "张伟" not in shown.stdout and "张*" in shown.stdout

    as_json = json.loads(run(["status", active.application_id, "--json"], cli_env).stdout)
    assert as_json["state"] == "ACTIVE"
    assert as_json["account"]["status"] == "OPEN"
    assert as_json["account"]["account_number"].count("*") >= 9
    assert [h["to"] for h in as_json["history"]] == ["ACTIVE"]

    unknown = run(["status", "NO-SUCH-APPLICATION"], cli_env)
    assert unknown.returncode == 2
    assert "NO-SUCH-APPLICATION" in unknown.stderr

    report = run(["report", "--json"], cli_env)
    assert report.returncode == 0, report.stderr
    document = json.loads(report.stdout)
    assert document["by_state"]["ACTIVE"] == 12 - len(failing)
    assert document["by_state"]["ACTIVATION_FAILED"] == len(failing)
    assert sum(document["by_bank"][BANK].values()) == 12
    assert sum(document["activation_failures"].values()) == len(failing)
    text = run(["report"], cli_env)
    assert text.returncode == 0 and "by bank" in text.stdout
