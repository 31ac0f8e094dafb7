"""The long-running consumers against the real broker and PostgreSQL: bad records go to the dead letters and
the consumer goes on; a consumer that gets no partition, or starts beside another of its group, exits 1."""

from __future__ import annotations

import hashlib
import json
import signal
import threading
import time
from dataclasses import replace

from kafka import KafkaConsumer

from consumers.serve import GROUP_LOCK_CLASS, bank_group
from issuance.dead_letter_events import EXCERPT_BYTES, open_original, payload_location
from issuance.kafka.client_config import KafkaClientConfig
from issuance.kafka.topics import Topics, ensure_topics
from issuance.messages import MessageDeadLettered
from issuance.settings import Settings
from issuance.trust.keystore import bureau_keys
from issuance.trust.parties import BUREAU, bank
from issuance.trust.sealing import Unsealer
from tests.factories import BANK
from tests.fixtures_activation import (
    opening_request_for,
    publish_signed,
    read_topic,
    scalar,
    seed_accepted,
    sides,
)
from tests.fixtures_processes import run, start
from tests.fixtures_services import settings_env
from tests.integration.test_consume_bank_results import opened

KEY = b"one-partition"  # every record of a test on one partition, in the order sent
GARBAGE = b"\x00\x01 not an Avro message"


def dead_letter_reasons(settings: Settings) -> list[str]:
    with_reasons = "SELECT string_agg(reason, ',' ORDER BY reason) FROM dead_letters"
    assert settings.database_url is not None
    from issuance.store.db import connect

    with connect(settings.database_url.get_secret_value(), autocommit=True) as conn:
        row = conn.execute(with_reasons).fetchone()
    return str(row[0] if row and row[0] else "").split(",")


def dead_letter_events(settings: Settings) -> list[MessageDeadLettered]:
    return [
        e for e in read_topic(settings, Topics(settings).dead_letters) if isinstance(e, MessageDeadLettered)
    ]


def assert_bounded_and_located(letter: MessageDeadLettered, original: bytes, settings: Settings) -> None:
    """An excerpt of the record sealed to the bureau (opened with its keys), its size, digest and row."""
    excerpt = open_original(letter, Unsealer(bureau_keys(settings))).excerpt
    assert len(excerpt) <= EXCERPT_BYTES and original.startswith(excerpt)
    assert original[:16] not in letter.payload  # nothing of it in clear
    assert letter.payload_size == len(original)
    assert letter.payload_sha256 == hashlib.sha256(original).hexdigest()
    assert letter.payload_location == payload_location(letter.source_topic, letter.partition, letter.offset)


def test_consume_dead_letters_empty_and_undecodable_results_and_goes_on(
    settings: Settings, cli_env: dict[str, str]
) -> None:
    first, second = seed_accepted(settings, 2)
    ensure_topics(KafkaClientConfig.from_settings(settings), settings, [BANK])
    topic = Topics(settings).bank_results(BANK)
    # Authenticated as the bank: what is wrong is the content.
    answers = [None, b"", GARBAGE, opened(first).to_bytes()]
    publish_signed(settings, topic, answers, bank(BANK), BUREAU, key=KEY)
    publish_signed(settings, topic, [opened(second).to_bytes()], bank(BANK), BUREAU, key=KEY)

    done = run(["consume", "--until-idle", "2", "--json"], cli_env)

    assert done.returncode == 0, done.stderr
    stats = json.loads(done.stdout)
    answers = stats["bank_results"]
    assert answers["dead_lettered"] == 3 and answers["opened"] == 2
    assert sides(settings, first.application_id)[1] == "OPENED"
    assert sides(settings, second.application_id)[1] == "OPENED"  # the records after the bad ones
    assert dead_letter_reasons(settings) == ["EMPTY_MESSAGE", "EMPTY_MESSAGE", "MALFORMED_MESSAGE"]
    # The events carry what may be personal data: sealed to the bureau, published, and bounded.
    assert (
        scalar(
            settings,
            "SELECT count(*) FROM outbox WHERE event_type = 'MessageDeadLettered'"
            " AND recipient = 'bureau:bureau' AND published_at IS NOT NULL",
        )
        == 3
    )
    letters = dead_letter_events(settings)
    assert sorted(e.reason.value for e in letters) == ["EMPTY_MESSAGE", "EMPTY_MESSAGE", "MALFORMED_MESSAGE"]
    garbage = next(e for e in letters if e.reason.value == "MALFORMED_MESSAGE")
    assert_bounded_and_located(garbage, GARBAGE, settings)
    # Run again: the offsets were committed past the bad records, nothing is dead-lettered twice.
    again = run(["consume", "--until-idle", "2", "--json"], cli_env)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["bank_results"]["answers"] == 0
    assert scalar(settings, "SELECT count(*) FROM dead_letters") == 3


def test_bank_serve_dead_letters_bad_requests_and_answers_the_rest(
    settings: Settings, cli_env: dict[str, str]
) -> None:
    first, second, other = seed_accepted(settings, 3)
    ensure_topics(KafkaClientConfig.from_settings(settings), settings, [BANK])
    topic = Topics(settings).bank_requests(BANK)
    for_another_bank = replace(opening_request_for(other), bank_code="B999").to_bytes()
    # Authenticated as the bureau: what is wrong is the content.
    requests = [None, GARBAGE, opening_request_for(first).to_bytes()]
    publish_signed(settings, topic, requests, BUREAU, bank(BANK), key=KEY)
    later = [for_another_bank, opening_request_for(second).to_bytes()]
    publish_signed(settings, topic, later, BUREAU, bank(BANK), key=KEY)

    done = run(["bank", "serve", "--bank", BANK, "--until-idle", "2", "--json"], cli_env)

    assert done.returncode == 0, done.stderr
    stats = json.loads(done.stdout)[BANK]
    assert stats["requests"] == 5 and stats["opened"] == 2 and stats["unreadable"] == 3
    assert scalar(settings, "SELECT count(*) FROM bank_sim.inbox") == 2  # both good requests answered
    assert dead_letter_reasons(settings) == ["EMPTY_MESSAGE", "MALFORMED_MESSAGE", "SCHEMA_VIOLATION"]
    # A bank's principal may write only its answer topic: the bureau's relay publishes its dead letters.
    assert dead_letter_events(settings) == []
    relayed = run(["consume", "--until-idle", "2", "--json"], cli_env)
    assert relayed.returncode == 0, relayed.stderr
    letters = dead_letter_events(settings)
    assert sorted(e.reason.value for e in letters) == [
        "EMPTY_MESSAGE",
        "MALFORMED_MESSAGE",
        "SCHEMA_VIOLATION",
    ]
    assert_bounded_and_located(
        next(e for e in letters if e.reason.value == "SCHEMA_VIOLATION"), for_another_bank, settings
    )


def test_a_bank_that_gets_no_partition_exits_1(settings: Settings, cli_env: dict[str, str]) -> None:
    seed_accepted(settings, 1)
    one_partition = settings.model_copy(update={"bank_partitions": 1})
    bootstrap = settings.kafka_bootstrap or ""
    ensure_topics(KafkaClientConfig.from_settings(one_partition), one_partition, [BANK])
    topic = Topics(settings).bank_requests(BANK)
    # Another member of the bank's group holds the only partition (its member id sorts first, so the range
    # assignor keeps the partition with it when `bank serve` joins).
    holder = KafkaConsumer(
        topic,
        **KafkaClientConfig.plaintext(bootstrap).client_kwargs(),
        group_id=bank_group(settings, BANK),
        client_id="0-holder",
        session_timeout_ms=6_000,
        heartbeat_interval_ms=2_000,
        enable_auto_commit=False,
    )
    stop = threading.Event()
    try:
        while not holder.assignment():
            holder.poll(timeout_ms=200)
        polling = threading.Thread(target=_keep_polling, args=(holder, stop))
        polling.start()
        env = {**cli_env, **settings_env(one_partition), "ISSUANCE_CONSUMER_JOIN_TIMEOUT_S": "8"}
        done = run(["bank", "serve", "--bank", BANK, "--until-idle", "1"], env)
        stop.set()
        polling.join()
    finally:
        stop.set()
        holder.close(autocommit=False)
    assert done.returncode == 1, done.stderr
    assert "gave this consumer no partition" in " ".join(done.stderr.split()), done.stderr


def _keep_polling(consumer: KafkaConsumer, stop: threading.Event) -> None:
    """Stay a live member of the group (heartbeats, rejoining a rebalance) until told to stop."""
    while not stop.is_set():
        consumer.poll(timeout_ms=200)


def test_a_second_bank_serve_for_the_same_bank_exits_1(settings: Settings, cli_env: dict[str, str]) -> None:
    seed_accepted(settings, 1)
    first = start(["bank", "serve", "--bank", BANK], cli_env)
    try:
        while not _group_locked(settings):
            assert first.poll() is None, first.stderr.read() if first.stderr else ""
            time.sleep(0.2)
        second = run(["bank", "serve", "--bank", BANK, "--until-idle", "1"], cli_env)
        assert second.returncode == 1, second.stderr
        assert "already consumes as group" in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        _out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err


def _group_locked(settings: Settings) -> bool:
    return (
        scalar(
            settings,
            f"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = {GROUP_LOCK_CLASS}"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        > 0
    )
