"""The simulator's injected failures: a pure function of the seed and the request id."""

from __future__ import annotations

from consumers.bank_simulator import INJECTED_FAILURES, FailurePolicy
from issuance.messages import activation_request_event_id

IDS = [activation_request_event_id(f"APP-{n:06d}", 1) for n in range(2_000)]


def test_the_same_request_always_gets_the_same_answer() -> None:
    policy = FailurePolicy(fail_rate=0.2, seed=42)
    assert [policy.failure(i) for i in IDS] == [FailurePolicy(0.2, 42).failure(i) for i in IDS]


def test_the_rate_is_roughly_kept_and_every_reason_is_used() -> None:
    failures = [f for f in (FailurePolicy(0.2, 1).failure(i) for i in IDS) if f]
    assert 300 < len(failures) < 500
    assert {reason for reason, _ in failures} == {reason for reason, _ in INJECTED_FAILURES}


def test_no_rate_no_failure_and_another_seed_other_failures() -> None:
    assert not any(FailurePolicy(0.0, 1).failure(i) for i in IDS)
    assert all(FailurePolicy(1.0, 1).failure(i) for i in IDS)
    first = {i for i in IDS if FailurePolicy(0.2, 1).failure(i)}
    second = {i for i in IDS if FailurePolicy(0.2, 2).failure(i)}
    assert first != second


def test_a_retry_is_a_new_draw() -> None:
    policy = FailurePolicy(0.5, 3)
    retries = [activation_request_event_id(f"APP-{n:06d}", 2) for n in range(2_000)]
    assert [policy.failure(i) is None for i in IDS] != [policy.failure(i) is None for i in retries]
