"""The bank simulator killed (SIGKILL) or stopped (SIGTERM): each request answered once in effect."""

from __future__ import annotations

import signal

from kafka import KafkaConsumer

from consumers.bank_simulator import FailurePolicy
from issuance.kafka.client_config import KafkaClientConfig
from issuance.kafka.topics import Topics
from issuance.messages import decode_event
from issuance.settings import Settings
from issuance.trust.parties import BUREAU, bank
from tests.factories import BANK
from tests.fixtures_activation import opening_request_for, publish_signed, scalar, seed_accepted
from tests.fixtures_processes import kill_when, run, start

N = 800
SERVE = ["bank", "serve", "--bank", BANK, "--batch-size", "10", "--fail-rate", "0.1", "--seed", "4"]


def answer_ids(settings: Settings) -> list[str]:
    consumer = KafkaConsumer(
        Topics(settings).bank_results(BANK),
        **KafkaClientConfig.from_settings(settings).client_kwargs(),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=3000,
    )
    try:
        return [decode_event(r.value).event_id for r in consumer]  # type: ignore[union-attr]
    finally:
        consumer.close()


def answered(settings: Settings) -> int:
    return scalar(settings, "SELECT count(*) FROM bank_sim.inbox")


def test_killed_bank_answers_every_request_once_in_effect(
    settings: Settings, cli_env: dict[str, str]
) -> None:
    accepted = seed_accepted(settings, N)
    requests = [opening_request_for(a) for a in accepted]
    publish_signed(
        settings, Topics(settings).bank_requests(BANK), [r.to_bytes() for r in requests], BUREAU, bank(BANK)
    )
    for threshold in (100, 400):
        proc = start(SERVE, cli_env)
        kill_when(proc, lambda t=threshold: answered(settings) >= t)
        assert answered(settings) < N  # it really died mid-stream
    done = run([*SERVE, "--until-idle", "2"], cli_env)
    assert done.returncode == 0, done.stderr
    policy = FailurePolicy(0.1, 4)
    failing = sum(1 for r in requests if policy.failure(r.event_id))
    assert answered(settings) == N
    assert scalar(settings, "SELECT count(*) FROM bank_sim.accounts") == N - failing
    # Numbered without a gap: a killed batch's sequences rolled back with its accounts.
    assert scalar(settings, "SELECT max(sequence) FROM bank_sim.accounts") == N - failing
    ids = answer_ids(settings)
    assert len(set(ids)) == N  # every request answered; repeats carry the same event id


def test_sigterm_finishes_the_batch_and_exits_cleanly(settings: Settings, cli_env: dict[str, str]) -> None:
    accepted = seed_accepted(settings, 400)
    requests = [opening_request_for(a).to_bytes() for a in accepted]
    publish_signed(settings, Topics(settings).bank_requests(BANK), requests, BUREAU, bank(BANK))
    proc = start(["bank", "serve", "--bank", BANK, "--batch-size", "10"], cli_env)
    kill_when(proc, lambda: answered(settings) >= 50, sig=signal.SIGTERM)
    assert proc.returncode == 0
    # The batch in hand was finished: every request the bank recorded as answered was also sent.
    assert len(set(answer_ids(settings))) == answered(settings)
