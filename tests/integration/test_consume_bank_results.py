"""The bureau's consumer of activation results against the real broker and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from kafka import KafkaConsumer

from consumers.bank_simulator import FailurePolicy
from consumers.serve import consume_results, serve_banks
from issuance.kafka.topics import Topics
from issuance.messages import (
    ActivationCompleted,
    ActivationFailed,
    BankRefusalReason,
    DecisionIssued,
    MessageDeadLettered,
    activation_answer_event_id,
    decode_event,
)
from issuance.services.endpoints import resolve
from issuance.settings import Settings
from tests.factories import BANK
from tests.fixtures_activation import Waiting, produce, request_for, scalar, seed_waiting, states

IDLE = 1.5
NOW = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)


def completed(w: Waiting, attempt: int = 1) -> ActivationCompleted:
    request = request_for(w, attempt).event_id
    return ActivationCompleted(
        activation_answer_event_id(request),
        request,
        w.application_id,
        w.bank_code,
        "622202*********0001",
        NOW,
    )


def failed(w: Waiting, attempt: int = 1) -> ActivationFailed:
    request = request_for(w, attempt).event_id
    return ActivationFailed(
        activation_answer_event_id(request),
        request,
        w.application_id,
        w.bank_code,
        BankRefusalReason.KYC_FAILED,
        NOW,
        "identity check failed",
    )


def publish_results(settings: Settings, payloads: list[bytes]) -> None:
    produce(settings.kafka_bootstrap or "", Topics(settings).bank_results, payloads)


def consume(settings: Settings) -> dict[str, int]:
    return consume_results(settings, resolve(settings), IDLE, threading.Event())


def read_topic(settings: Settings, topic: str) -> list[object]:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=2000,
    )
    try:
        return [decode_event(record.value) for record in consumer]
    finally:
        consumer.close()


def test_round_trip_activates_cards_and_fails_the_injected_ones(settings: Settings) -> None:
    waiting = seed_waiting(settings, 30)
    policy = FailurePolicy(fail_rate=0.25, seed=3)
    requests = [request_for(w) for w in waiting]
    produce(
        settings.kafka_bootstrap or "",
        Topics(settings).bank_requests(BANK),
        [r.to_bytes() for r in requests],
    )
    serve_banks(settings, resolve(settings), None, policy, IDLE, threading.Event())
    stats = consume(settings)
    failing = {r.application_id for r in requests if policy.failure(r.event_id)}
    assert 0 < len(failing) < 30
    assert stats["active"] == 30 - len(failing) and stats["failed"] == len(failing)
    for app_id, (state, attempts, is_open) in states(settings).items():
        if app_id in failing:
            assert (state, attempts, is_open) == ("ACTIVATION_FAILED", 1, True)
        else:
            assert (state, attempts, is_open) == ("ACTIVE", 0, False)
    assert scalar(settings, "SELECT count(*) FROM cards WHERE status = 'ACTIVE'") == 30 - len(failing)
    assert scalar(settings, "SELECT count(*) FROM bank_accounts WHERE status = 'OPEN'") == 30 - len(failing)
    assert scalar(settings, "SELECT count(*) FROM bank_accounts WHERE status = 'FAILED'") == len(failing)
    assert scalar(settings, "SELECT count(*) FROM application_history WHERE stage = 'activation'") == 30
    assert scalar(settings, "SELECT count(*) FROM audit_log WHERE action LIKE 'activation.%'") == 30
    # Decisions for the final outcomes only (a first failure is not final), published by the relay.
    decisions = [e for e in read_topic(settings, Topics(settings).decisions) if isinstance(e, DecisionIssued)]
    assert sorted(d.application_id for d in decisions) == sorted(
        set(w.application_id for w in waiting) - failing
    )
    assert scalar(settings, "SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0


def test_each_result_applies_once_and_a_stale_one_never_moves_a_card_back(settings: Settings) -> None:
    a, b = seed_waiting(settings, 2)
    publish_results(settings, [completed(a).to_bytes(), completed(a).to_bytes(), failed(b).to_bytes()])
    consume(settings)
    assert states(settings)[a.application_id] == ("ACTIVE", 0, False)
    assert states(settings)[b.application_id] == ("ACTIVATION_FAILED", 1, True)
    # The next night asks b again (attempt 2) and the bank answers; a failure for a turns up for an attempt
    # that does not match (stale), and b's first answer is delivered again (duplicate).
    with_second = [completed(b, attempt=2).to_bytes(), failed(a, attempt=2).to_bytes(), failed(b).to_bytes()]
    _request_again(settings, b)
    publish_results(settings, with_second)
    stats = consume(settings)
    assert stats["active"] == 1 and stats["stale"] == 1 and stats["duplicates"] == 1
    assert states(settings)[a.application_id] == ("ACTIVE", 0, False)
    assert states(settings)[b.application_id] == ("ACTIVE", 1, False)
    assert scalar(settings, "SELECT count(*) FROM cards WHERE status = 'ACTIVE'") == 2
    assert scalar(settings, "SELECT count(*) FROM audit_log WHERE action = 'activation.result_ignored'") == 1


def test_final_failure_closes_the_application_and_tells_the_branch(settings: Settings) -> None:
    (w,) = seed_waiting(settings, 1)
    for attempt in range(1, settings.max_activation_attempts + 1):
        if attempt > 1:
            _request_again(settings, w)
        publish_results(settings, [failed(w, attempt).to_bytes()])
        consume(settings)
    assert states(settings)[w.application_id] == (
        "ACTIVATION_FAILED",
        settings.max_activation_attempts,
        False,
    )
    decisions = [e for e in read_topic(settings, Topics(settings).decisions) if isinstance(e, DecisionIssued)]
    assert [(d.application_id, d.state.value) for d in decisions] == [(w.application_id, "ACTIVATION_FAILED")]


def test_unreadable_results_go_to_the_dead_letters(settings: Settings) -> None:
    (w,) = seed_waiting(settings, 1)
    unknown_schema = b"\xc3\x01" + b"\x00" * 8 + b"\x02"
    publish_results(settings, [unknown_schema, b"not avro", completed(w).to_bytes()])
    stats = consume(settings)
    assert stats["dead_lettered"] == 2 and stats["active"] == 1
    assert scalar(settings, "SELECT count(*) FROM dead_letters WHERE reason = 'UNKNOWN_SCHEMA'") == 1
    assert scalar(settings, "SELECT count(*) FROM dead_letters WHERE reason = 'MALFORMED_MESSAGE'") == 1
    letters = [
        e for e in read_topic(settings, Topics(settings).dead_letters) if isinstance(e, MessageDeadLettered)
    ]
    assert sorted(letter.reason.value for letter in letters) == ["MALFORMED_MESSAGE", "UNKNOWN_SCHEMA"]
    assert {letter.payload for letter in letters} == {unknown_schema, b"not avro"}


def _request_again(settings: Settings, w: Waiting) -> None:
    """What the next nightly run does to a failed application with attempts left."""
    from issuance.store.db import connect

    assert settings.database_url is not None
    with connect(settings.database_url.get_secret_value(), autocommit=True) as conn:
        conn.execute(
            "UPDATE applications SET state = 'ACTIVATION_REQUESTED' WHERE application_id = %s",
            (w.application_id,),
        )
