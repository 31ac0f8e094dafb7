"""Bounded events against the real broker and PostgreSQL: an event the broker will not take blocks none."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kafka import KafkaProducer

from issuance.crypto import Vault
from issuance.dead_letter_events import EXCERPT_BYTES, open_original, parse_payload_location
from issuance.domain.lifecycle import ApplicationState
from issuance.errors import BrokerUnavailable
from issuance.kafka.client_config import KafkaClientConfig
from issuance.kafka.outbox_relay import publish_outbox
from issuance.kafka.outbox_signing import RelayTrust
from issuance.kafka.topics import Topics, ensure_topics
from issuance.messages import DecisionIssued, MessageDeadLettered, decision_event_id
from issuance.services.processes import free_port
from issuance.settings import Settings
from issuance.store.db import connect, copy_rows
from issuance.store.decisions_repo import OUTBOX_COLUMNS
from issuance.store.outbox_queries import set_aside_count, set_aside_events
from issuance.trust.keystore import bureau_keys
from issuance.trust.parties import Party
from issuance.trust.sealing import Unsealer
from pipelines import nightly
from tests.fixtures_activation import read_topic
from tests.fixtures_nightly import load_reference_file, make_generated, publish_night, topic_event_ids
from tests.fixtures_services import Partners
from tests.fixtures_signed import read_records

LIMIT = 1_000_000
NOW = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)
BRANCH = "branch:B001"


def _decision_rows(settings: Settings, count: int) -> list[tuple[object, ...]]:
    topic = Topics(settings).decisions
    rows: list[tuple[object, ...]] = []
    for i in range(count):
        event = DecisionIssued(
            decision_event_id(f"A{i:06d}", ApplicationState.REJECTED, 1),
            f"A{i:06d}",
            "B001",
            ApplicationState.REJECTED,
            (),
            NOW,
            1,
        )
        rows.append(
            (
                event.event_id,
                topic,
                event.application_id.encode(),
                event.to_bytes(),
                event.RECORD,
                1,
                False,
                BRANCH,
            )
        )
    return rows


def _queue(database_url: str, rows: list[tuple[object, ...]]) -> None:
    with connect(database_url) as conn:
        copy_rows(conn, "outbox", OUTBOX_COLUMNS, rows)
        conn.commit()


def test_an_event_above_the_largest_message_is_set_aside_and_the_others_published(
    settings: Settings, database_url: str, partners: Partners
) -> None:
    bootstrap = settings.kafka_bootstrap or ""
    ensure_topics(KafkaClientConfig.from_settings(settings), settings, [])
    partners.provision(Party.parse(BRANCH))
    vault = Vault.from_settings(settings)
    small = _decision_rows(settings, 3)
    oversized = (
        "too-large",
        Topics(settings).decisions,
        b"A-big",
        b"\x01" * (2 * LIMIT),
        "DecisionIssued",
        1,
        False,
        BRANCH,
    )
    _queue(database_url, [small[0], small[1], oversized, small[2]])  # in the middle of the write order

    with connect(database_url) as conn:
        trust = RelayTrust.load(conn, settings)
        assert (
            publish_outbox(
                conn,
                KafkaClientConfig.plaintext(bootstrap),
                vault,
                database_url,
                max_message_bytes=LIMIT,
                trust=trust,
            )
            == 3
        )
        assert (
            publish_outbox(
                conn,
                KafkaClientConfig.plaintext(bootstrap),
                vault,
                database_url,
                max_message_bytes=LIMIT,
                trust=trust,
            )
            == 0
        )
        assert set_aside_count(conn) == 1
        (listed,) = set_aside_events(conn)
        assert listed.event_id == "too-large" and listed.size == 2 * LIMIT
        row = conn.execute(
            "SELECT published_at, set_aside_at, set_aside_reason FROM outbox WHERE event_id = 'too-large'"
        ).fetchone()
    assert row is not None and row[0] is None and row[1] is not None
    assert row[2].endswith(f"bytes, above the largest message ({LIMIT})")
    assert sorted(topic_event_ids(settings, [Topics(settings).decisions])) == sorted(str(r[0]) for r in small)


def test_an_unreachable_broker_still_fails_the_publish_and_sets_nothing_aside(
    settings: Settings, database_url: str, partners: Partners
) -> None:
    partners.provision(Party.parse(BRANCH))
    _queue(database_url, _decision_rows(settings, 3))
    vault = Vault.from_settings(settings)
    with connect(database_url) as conn:
        with pytest.raises(BrokerUnavailable):
            trust = RelayTrust.load(conn, settings)
            publish_outbox(
                conn,
                KafkaClientConfig.plaintext(f"127.0.0.1:{free_port('127.0.0.1')}"),
                vault,
                database_url,
                trust=trust,
            )
        assert set_aside_count(conn) == 0
        unpublished = conn.execute("SELECT count(*) FROM outbox WHERE published_at IS NULL").fetchone()
    assert unpublished == (3,)


def test_a_20_mb_record_on_the_applications_topic_leaves_publishing_intact(
    settings: Settings, database_url: str, tmp_path: Path
) -> None:
    generated = make_generated(tmp_path / "data", 60)
    load_reference_file(settings, database_url, generated)
    publish_night(settings, generated, 1)
    huge = bytes(range(256)) * (20 * 1024 * 1024 // 256)
    producer = KafkaProducer(
        **KafkaClientConfig.from_settings(settings).client_kwargs(), max_request_size=32 * 1024 * 1024
    )
    try:
        producer.send(Topics(settings).applications, key=b"huge", value=huge).get(timeout=120)
    finally:
        producer.close()

    result = nightly.run(["--business-date", generated.business_date(1)], settings=settings)

    assert result.balanced, result.reconciliation["total"]
    with connect(database_url) as conn:
        # Only decisions for branches the reference data does not know (no keys to authenticate them to).
        aside = set_aside_events(conn)
        assert len(aside) == result.set_aside
        assert all(e.event_type == "DecisionIssued" and "no registered seal key" in e.reason for e in aside)
        banks = [str(b) for (b,) in conn.execute("SELECT bank_code FROM banks")]
        unpublished = conn.execute(
            "SELECT count(*) FROM outbox WHERE published_at IS NULL AND set_aside_at IS NULL"
        ).fetchone()
        queued = conn.execute(
            "SELECT event_type, event_id FROM outbox WHERE event_type <> 'MessageDeadLettered'"
            " AND set_aside_at IS NULL"
        ).fetchall()
    assert unpublished == (0,)
    assert {t for t, _ in queued} == {"AccountOpeningRequested", "ActivationRequested", "DecisionIssued"}
    topics = Topics(settings)
    published = set(topic_event_ids(settings, [topics.decisions, *(topics.bank_requests(b) for b in banks)]))
    assert {str(event_id) for _, event_id in queued} <= published  # every request and decision left
    letters = [e for e in read_topic(settings, topics.dead_letters) if isinstance(e, MessageDeadLettered)]
    (letter,) = [e for e in letters if e.payload_size == len(huge)]
    assert open_original(letter, Unsealer(bureau_keys(settings))).excerpt == huge[:EXCERPT_BYTES]
    # Sealed to the bureau: no byte run of the record is on the dead-letter topic in clear.
    on_topic = b"".join(bytes(r.value) for r in read_records(settings, topics.dead_letters))
    assert huge[1000:1064] not in on_topic
    assert letter.payload_sha256 == hashlib.sha256(huge).hexdigest()
    # The locator of its dead_letters row, which keeps the whole record: the position and the topic's id.
    assert letter.payload_location is not None
    topic, partition, offset, topic_id = parse_payload_location(letter.payload_location)
    assert (topic, partition, offset) == (letter.source_topic, letter.partition, letter.offset) and topic_id
    with connect(database_url) as conn:
        (kept,) = conn.execute(
            "SELECT payload_enc FROM dead_letters WHERE source_topic = %s AND source_topic_id = %s"
            " AND source_partition = %s AND source_offset = %s",
            (topic, topic_id, partition, offset),
        ).fetchone() or (None,)
    assert kept is not None and Vault.from_settings(settings).decrypt_bytes(kept) == huge
    assert len(letter.to_bytes()) < LIMIT
