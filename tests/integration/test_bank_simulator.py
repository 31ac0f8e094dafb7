"""The simulated bank on the real broker and PostgreSQL: accounts numbered by the bank, each request once in
effect, answers repeatable, activations switch on the account the card carries."""

from __future__ import annotations

import threading
from dataclasses import replace

from kafka import KafkaConsumer

from consumers.bank_simulator import AGREEMENT_REFUSED, BankSimulator, BankStats, FailurePolicy, bound_account
from consumers.dead_letters import DeadLetterSink
from consumers.loop import LoopOptions, make_producer, run_loop
from consumers.serve import serve_banks
from issuance.bank_personal import open_account
from issuance.crypto import Vault
from issuance.domain import numbers
from issuance.kafka.client_config import KafkaClientConfig
from issuance.kafka.topics import Topics
from issuance.messages import (
    AccountOpened,
    AccountRefused,
    ActivationCompleted,
    ActivationFailed,
    BankRefusalReason,
    decode_event,
)
from issuance.services.endpoints import resolve
from issuance.settings import Settings
from issuance.store.db import connect
from issuance.store.party_keys_repo import load_directory
from issuance.trust.channel import Verifier
from issuance.trust.parties import BUREAU, bank
from issuance.trust.sealing import Unsealer
from tests.factories import BANK
from tests.fixtures_activation import (
    BIN,
    activation_request_for,
    opening_request_for,
    party_keys,
    produce,
    publish_signed,
    scalar,
    seed_accepted,
    seed_activations,
)

IDLE = 1.5
NO_FAILURES = FailurePolicy()
Answer = AccountOpened | AccountRefused | ActivationCompleted | ActivationFailed


def answers(settings: Settings) -> list[Answer]:
    """Every message on the bank's answer topic, each authenticated as the bank's."""
    return [answer for answer, _number in opened_answers(settings)]


def opened_answers(settings: Settings) -> list[tuple[Answer, str | None]]:
    """Every answer on the bank's topic with its account number as the bureau opens it; each one must carry
    the bank's channel headers."""
    assert settings.database_url is not None
    with connect(settings.database_url.get_secret_value(), autocommit=True) as conn:
        directory = load_directory(conn)
    own = party_keys(settings, BUREAU)
    verifier, unsealer = Verifier(own, directory), Unsealer(own)
    consumer = KafkaConsumer(
        Topics(settings).bank_results(BANK),
        **KafkaClientConfig.from_settings(settings).client_kwargs(),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=2000,
    )
    out: list[tuple[Answer, str | None]] = []
    try:
        for record in consumer:
            assert verifier.sender(record.headers, record.key, record.value) == bank(BANK)
            answer = decode_event(record.value)
            assert isinstance(answer, Answer)
            number = None
            if isinstance(answer, AccountOpened | ActivationCompleted):
                number = open_account(answer.personal, unsealer, answer.event_id)
            out.append((answer, number))
    finally:
        consumer.close()
    return out


def serve(settings: Settings, policy: FailurePolicy = NO_FAILURES) -> dict[str, dict[str, int]]:
    return serve_banks(settings, resolve(settings), [BANK], policy, IDLE, threading.Event())


def publish(settings: Settings, payloads: list[bytes]) -> None:
    """Requests as the relay publishes them: with the bureau's channel headers to the bank."""
    publish_signed(settings, Topics(settings).bank_requests(BANK), payloads, BUREAU, bank(BANK))


def test_a_bank_numbers_accounts_by_its_own_bin_and_sequence_and_a_replay_opens_nothing_new(
    settings: Settings,
) -> None:
    accepted = seed_accepted(settings, 6)
    requests = [opening_request_for(a) for a in accepted]
    publish(settings, [r.to_bytes() for r in requests])
    assert serve(settings)[BANK]["opened"] == 6

    opened = {a.application_id: n for a, n in opened_answers(settings) if isinstance(a, AccountOpened)}
    # Its own BIN, its own sequence 1..6 (in the order it read them), a Luhn digit.
    assert sorted(opened.values()) == [numbers.bank_account_number(BIN, n) for n in range(1, 7)]
    assert all(numbers.is_valid_assigned_account(n, BIN) for n in opened.values())
    # The same requests again (a producer retried), a later attempt for one application, and the whole topic
    # read again by a group with no offsets: no second account, the first answer every time.
    later = opening_request_for(accepted[0], attempt=2)
    publish(settings, [*(r.to_bytes() for r in requests), later.to_bytes()])
    second = serve(settings)[BANK]
    assert second["repeated"] == 6 and second["opened"] == 1
    replay = replay_from_start(settings)
    assert replay.requests == 13 and replay.repeated == 7
    assert scalar(settings, "SELECT count(*) FROM bank_sim.accounts") == 6
    assert scalar(settings, "SELECT next_value FROM bank_sim.counters WHERE bank_code = %s", [BANK]) == 7
    sent = [(a, n) for a, n in opened_answers(settings) if isinstance(a, AccountOpened)]
    assert {a.application_id: n for a, n in sent} == opened  # the later attempt: the same account
    assert len({a.event_id for a, _n in sent}) == 7  # 7 requests, one answer each, repeated as first sent
    # Account numbers are encrypted at rest in the bank's ledger too.
    assert (
        scalar(
            settings,
            "SELECT count(*) FROM bank_sim.accounts WHERE position(%s in account_number_enc) > 0",
            [BIN.encode()],
        )
        == 0
    )


def replay_from_start(settings: Settings) -> BankStats:
    """Read the bank's whole topic with a new consumer group, as after an offset reset."""
    assert settings.database_url is not None
    producer = make_producer(KafkaClientConfig.from_settings(settings))
    vault = Vault.from_settings(settings)
    topics = Topics(settings)
    try:
        with connect(settings.database_url.get_secret_value(), autocommit=True) as conn:
            sink = DeadLetterSink(conn, vault, topics.dead_letters, "bank-simulator")
            bank_ = BankSimulator(
                BANK,
                BIN,
                conn,
                producer,
                vault,
                party_keys(settings, bank(BANK)),
                load_directory(conn),
                topics.bank_results(BANK),
                NO_FAILURES,
                sink,
            )
            options = LoopOptions(
                KafkaClientConfig.from_settings(settings),
                (topics.bank_requests(BANK),),
                f"{settings.topic_prefix}replay",
                IDLE,
            )
            run_loop(options, bank_.handle, threading.Event())
    finally:
        producer.close()
    return bank_.stats


def test_injected_refusals_follow_the_seed_and_the_request(settings: Settings) -> None:
    accepted = seed_accepted(settings, 40)
    policy = FailurePolicy(fail_rate=0.3, seed=7)
    requests = [opening_request_for(a) for a in accepted]
    publish(settings, [r.to_bytes() for r in requests])
    stats = serve(settings, policy)[BANK]
    refused = {a.request_event_id for a in answers(settings) if isinstance(a, AccountRefused)}
    assert refused == {r.event_id for r in requests if policy.failure(r.event_id) is not None}
    assert 0 < len(refused) < 40 and stats["refused"] == len(refused)
    assert scalar(settings, "SELECT count(*) FROM bank_sim.accounts") == 40 - len(refused)


def test_a_request_without_well_formed_agreement_terms_or_hash_is_refused(settings: Settings) -> None:
    first, second, third = seed_accepted(settings, 3)
    publish(
        settings,
        [
            opening_request_for(first, terms_version="").to_bytes(),
            opening_request_for(second, document_sha256="not a digest").to_bytes(),
            opening_request_for(third).to_bytes(),
        ],
    )
    serve(settings)
    by_app = {a.application_id: a for a in answers(settings)}
    for refused in (first, second):
        answer = by_app[refused.application_id]
        assert isinstance(answer, AccountRefused)
        assert (answer.refusal_reason, answer.detail) == (BankRefusalReason.KYC_FAILED, AGREEMENT_REFUSED)
    assert isinstance(by_app[third.application_id], AccountOpened)
    assert scalar(settings, "SELECT count(*) FROM bank_sim.accounts") == 1


def test_an_activation_switches_on_the_account_the_card_carries(settings: Settings) -> None:
    [accepted] = seed_accepted(settings, 1)
    publish(settings, [opening_request_for(accepted).to_bytes()])
    serve(settings)
    [(opened, number)] = opened_answers(settings)
    assert isinstance(opened, AccountOpened) and number is not None
    # Later the card is issued and its holder activates it: the request carries the number the bank assigned.
    [activating] = seed_activations(settings, 1, start=50)
    ours = activation_request_for(replace(activating, account_number=number))
    unknown = activation_request_for(
        replace(activating, account_number=numbers.bank_account_number(BIN, 999)), attempt=2
    )
    publish(settings, [ours.to_bytes(), unknown.to_bytes()])

    stats = serve(settings)[BANK]

    assert (stats["activated"], stats["failed"]) == (1, 1)
    by_request = {a.request_event_id: (a, n) for a, n in opened_answers(settings)}
    (completed, switched_on), (failed, _none) = by_request[ours.event_id], by_request[unknown.event_id]
    assert isinstance(completed, ActivationCompleted)
    assert switched_on == number
    assert isinstance(failed, ActivationFailed) and failed.failure_reason is BankRefusalReason.KYC_FAILED
    assert scalar(settings, "SELECT count(*) FROM bank_sim.accounts WHERE status = 'ACTIVE'") == 1
    assert scalar(settings, "SELECT count(*) FROM bank_sim.accounts") == 1  # switched on, not opened again


def test_a_registry_card_is_switched_on_with_the_account_bound_to_it(settings: Settings) -> None:
    [activating] = seed_activations(settings, 1)
    request = activation_request_for(activating, registry_card=True)
    publish(settings, [request.to_bytes()])

    assert serve(settings)[BANK]["activated"] == 1

    [(answer, number)] = opened_answers(settings)
    assert isinstance(answer, ActivationCompleted)
    assert number == bound_account(BIN, activating.card_number)
    assert scalar(settings, "SELECT count(*) FROM bank_sim.accounts WHERE status = 'ACTIVE'") == 1


def test_a_bank_acts_only_on_requests_the_bureau_authenticated_and_sealed_to_it(settings: Settings) -> None:
    first, second, third, good = seed_accepted(settings, 4)
    (abc,) = seed_accepted(settings, 1, bank_code="ABC", start=50)  # another bank, with registered keys
    topic = Topics(settings).bank_requests(BANK)
    produce(settings.kafka_bootstrap or "", topic, [opening_request_for(first).to_bytes()])  # no headers
    publish_signed(settings, topic, [opening_request_for(second).to_bytes()], bank("ABC"), bank(BANK))
    # The holder sealed to another bank.
    to_other = opening_request_for(replace(third, bank_code="ABC", directory=abc.directory))
    sealed_elsewhere = replace(opening_request_for(third), personal=to_other.personal)
    publish(settings, [sealed_elsewhere.to_bytes(), opening_request_for(good).to_bytes()])

    stats = serve(settings)[BANK]

    assert (stats["unreadable"], stats["opened"]) == (3, 1)
    assert [a.application_id for a in answers(settings)] == [good.application_id]
    reasons = scalar(
        settings,
        "SELECT count(*) FROM dead_letters WHERE stage = %s"
        " AND reason IN ('SIGNATURE_MISSING', 'SENDER_MISMATCH', 'SEAL_INVALID')",
        [f"bank-simulator.{BANK}"],
    )
    assert reasons == 3
    assert scalar(settings, "SELECT count(*) FROM bank_sim.accounts") == 1


def test_a_request_on_the_wire_has_nothing_personal_in_clear(settings: Settings) -> None:
    (accepted,) = seed_accepted(settings, 1)
    (activating,) = seed_activations(settings, 1, start=60)
    publish(
        settings, [opening_request_for(accepted).to_bytes(), activation_request_for(activating).to_bytes()]
    )
    consumer = KafkaConsumer(
        Topics(settings).bank_requests(BANK),
        **KafkaClientConfig.from_settings(settings).client_kwargs(),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=2000,
    )
    try:
        wire = [bytes(r.value) + b"".join(v for _k, v in r.headers) for r in consumer]
    finally:
        consumer.close()
    assert len(wire) == 2
    for clear in (accepted.id_number, activating.id_number, "张伟", activating.account_number):
        assert not any(clear.encode() in w for w in wire)
