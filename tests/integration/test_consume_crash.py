"""The bureau consumer killed mid-stream (SIGKILL) and started again: each bank answer applied once."""

from __future__ import annotations

import threading

from consumers.bank_simulator import FailurePolicy
from consumers.serve import serve_banks
from issuance.kafka.topics import Topics
from issuance.services.endpoints import resolve
from issuance.settings import Settings
from issuance.trust.parties import BUREAU, bank
from tests.factories import BANK
from tests.fixtures_activation import (
    opening_request_for,
    publish_signed,
    scalar,
    seed_accepted,
    sides,
    states,
)
from tests.fixtures_processes import kill_when, run, start

N = 800
CONSUME = ["consume", "--batch-size", "10"]


def applied(settings: Settings) -> int:
    return scalar(settings, "SELECT count(*) FROM inbox WHERE consumer = 'bank-results'")


def test_killed_consumer_applies_every_result_once(settings: Settings, cli_env: dict[str, str]) -> None:
    accepted = seed_accepted(settings, N)
    requests = [opening_request_for(a) for a in accepted]
    publish_signed(
        settings, Topics(settings).bank_requests(BANK), [r.to_bytes() for r in requests], BUREAU, bank(BANK)
    )
    policy = FailurePolicy(0.1, 9)
    serve_banks(settings, resolve(settings), [BANK], policy, 2.0, threading.Event())
    for threshold in (100, 400):
        proc = start(CONSUME, cli_env)
        kill_when(proc, lambda t=threshold: applied(settings) >= t)
        assert applied(settings) < N  # it really died mid-stream
    done = run([*CONSUME, "--until-idle", "2"], cli_env)
    assert done.returncode == 0, done.stderr
    failing = {r.application_id for r in requests if policy.failure(r.event_id)}
    for app_id, (state, refusals, _open, due) in states(settings).items():
        assert (state, refusals, due) == (
            ("ACCEPTED", 1, True) if app_id in failing else ("ACCEPTED", 0, False)
        )
        assert sides(settings, app_id)[1] == ("REQUESTED" if app_id in failing else "OPENED")
    # Exactly once in effect: one history row, one audit row, one version step per application.
    assert scalar(settings, "SELECT count(*) FROM application_history WHERE stage = 'bank'") == N
    assert scalar(settings, "SELECT count(*) FROM audit_log WHERE action LIKE 'bank.account_%'") == N
    assert scalar(settings, "SELECT count(*) FROM applications WHERE version <> 2") == 0
    assert scalar(settings, "SELECT count(*) FROM card_history WHERE to_status = 'OPENED'") == N - len(
        failing
    )
