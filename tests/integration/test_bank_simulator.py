"""The simulated bank on the real broker and PostgreSQL: each request once in effect, answers repeatable."""

from __future__ import annotations

import threading

from kafka import KafkaConsumer

from consumers.bank_simulator import BankSimulator, BankStats, FailurePolicy
from consumers.dead_letters import DeadLetterSink
from consumers.loop import LoopOptions, make_producer, run_loop
from consumers.serve import serve_banks
from issuance.crypto import Vault
from issuance.messages import ActivationCompleted, ActivationFailed, decode_event
from issuance.services.endpoints import resolve
from issuance.settings import Settings
from issuance.store.db import connect
from tests.factories import BANK
from tests.fixtures_activation import produce, request_for, scalar, seed_waiting

IDLE = 1.5


def answers(settings: Settings) -> list[ActivationCompleted | ActivationFailed]:
    """Every message on the activation-results topic."""
    from issuance.kafka.topics import Topics

    consumer = KafkaConsumer(
        Topics(settings).bank_results,
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=2000,
    )
    try:
        out = [decode_event(record.value) for record in consumer]
    finally:
        consumer.close()
    assert all(isinstance(e, ActivationCompleted | ActivationFailed) for e in out)
    return out  # type: ignore[return-value]


NO_FAILURES = FailurePolicy()


def serve(settings: Settings, policy: FailurePolicy = NO_FAILURES) -> dict[str, dict[str, int]]:
    return serve_banks(settings, resolve(settings), [BANK], policy, IDLE, threading.Event())


def test_replaying_the_request_topic_opens_no_second_account(settings: Settings) -> None:
    from issuance.kafka.topics import Topics

    waiting = seed_waiting(settings, 6)
    topic = Topics(settings).bank_requests(BANK)
    produce(settings.kafka_bootstrap or "", topic, [request_for(w).to_bytes() for w in waiting])
    first = serve(settings)
    assert first[BANK]["opened"] == 6
    # The same requests are published again (a producer retried) ...
    produce(settings.kafka_bootstrap or "", topic, [request_for(w).to_bytes() for w in waiting])
    second = serve(settings)
    assert second[BANK]["repeated"] == 6
    # ... and the whole topic is read again from the start by a consumer group with no offsets.
    replay = replay_from_start(settings, topic)
    assert replay.requests == 12 and replay.repeated == 6  # 12 records, 6 distinct requests, all seen before
    assert scalar(settings, "SELECT count(*) FROM bank_sim.accounts") == 6
    sent = answers(settings)
    assert len(sent) == 18  # a batch answers each distinct request once
    assert len({a.event_id for a in sent}) == 6  # the same answer every time


def replay_from_start(settings: Settings, topic: str) -> BankStats:
    """Read the bank's whole topic with a new consumer group, as after an offset reset."""
    from issuance.kafka.topics import Topics

    assert settings.database_url is not None
    producer = make_producer(settings.kafka_bootstrap or "")
    vault = Vault.from_settings(settings)
    try:
        with connect(settings.database_url.get_secret_value(), autocommit=True) as conn:
            topics = Topics(settings)
            sink = DeadLetterSink(conn, vault, topics.dead_letters, "bank-simulator")
            bank = BankSimulator(BANK, conn, producer, vault, topics.bank_results, NO_FAILURES, sink)
            options = LoopOptions(
                settings.kafka_bootstrap or "", (topic,), f"{settings.topic_prefix}replay", IDLE
            )
            run_loop(options, bank.handle, threading.Event())
    finally:
        producer.close()
    return bank.stats


def test_injected_failures_follow_the_seed_and_the_request(settings: Settings) -> None:
    from issuance.kafka.topics import Topics

    waiting = seed_waiting(settings, 40)
    policy = FailurePolicy(fail_rate=0.3, seed=7)
    requests = [request_for(w) for w in waiting]
    produce(
        settings.kafka_bootstrap or "",
        Topics(settings).bank_requests(BANK),
        [r.to_bytes() for r in requests],
    )
    serve(settings, policy)
    failed = {a.request_event_id for a in answers(settings) if isinstance(a, ActivationFailed)}
    assert failed == {r.event_id for r in requests if policy.failure(r.event_id) is not None}
    assert 0 < len(failed) < 40
    assert scalar(settings, "SELECT count(*) FROM bank_sim.accounts") == 40 - len(failed)
    # Account numbers are encrypted at rest in the bank's ledger too.
    assert (
        scalar(
            settings,
            "SELECT count(*) FROM bank_sim.accounts WHERE position('622202'::bytea in"
            " account_number_enc) > 0",
        )
        == 0
    )


def test_an_existing_card_is_switched_on_with_the_account_bound_to_it(settings: Settings) -> None:
    from dataclasses import replace

    from consumers.bank_simulator import bound_account
    from issuance.domain.masking import mask_account
    from issuance.domain.model import ApplicationType
    from issuance.kafka.topics import Topics

    [waiting] = seed_waiting(settings, 1)
    request = replace(
        request_for(waiting),
        application_type=ApplicationType.FINANCIAL_ACTIVATION,
        account_number=None,  # the card carries its account: the bank finds it by the card number
        agreement_id="AGR-000001",
        terms_version="2026.1",
        document_sha256="0" * 64,
    )
    produce(settings.kafka_bootstrap or "", Topics(settings).bank_requests(BANK), [request.to_bytes()])

    assert serve(settings)[BANK]["opened"] == 1

    [answer] = answers(settings)
    assert isinstance(answer, ActivationCompleted)
    assert answer.account_reference == mask_account(bound_account(waiting.card_number))
    assert scalar(settings, "SELECT count(*) FROM bank_sim.accounts") == 1
