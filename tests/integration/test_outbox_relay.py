"""The outbox relay against the real broker and PostgreSQL: a backlog shared with a helper process, every
event authenticated by the bureau to its recipient."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from issuance.crypto import Vault
from issuance.dead_letter_events import dead_letter_event
from issuance.domain.lifecycle import ApplicationState
from issuance.domain.model import DeadLetterReason
from issuance.kafka import outbox_relay
from issuance.kafka.client_config import KafkaClientConfig
from issuance.kafka.outbox_relay import publish_outbox, seal_payloads
from issuance.kafka.outbox_signing import RelayTrust
from issuance.kafka.topics import Topics, ensure_topics
from issuance.messages import DecisionIssued, decision_event_id
from issuance.settings import Settings
from issuance.store.db import connect, copy_rows
from issuance.store.decisions_repo import OUTBOX_COLUMNS
from issuance.store.outbox_queries import set_aside_events
from issuance.trust.channel import Verifier
from issuance.trust.errors import TrustFailure
from issuance.trust.keys import Directory
from issuance.trust.parties import BUREAU, bank, branch
from issuance.trust.sealing import Sealer
from tests.fixtures_nightly import topic_event_ids
from tests.fixtures_services import Partners
from tests.fixtures_signed import read_records

BRANCH = branch("B001")

EVENTS = 400


def _queue_decisions(settings: Settings, vault: Vault) -> list[str]:
    """EVENTS decisions in the outbox, every other one sealed (the relay opens those before sending)."""
    topic = Topics(settings).decisions
    now = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)
    events = [
        DecisionIssued(
            decision_event_id(f"A{i:06d}", ApplicationState.REJECTED, 1),
            f"A{i:06d}",
            "B001",
            ApplicationState.REJECTED,
            (),
            now,
            1,
        )
        for i in range(EVENTS)
    ]
    payloads = [e.to_bytes() for e in events]
    sealed = iter(seal_payloads(vault, payloads[::2]))
    rows = [
        (
            e.event_id,
            topic,
            e.application_id.encode(),
            next(sealed) if i % 2 == 0 else p,
            "DecisionIssued",
            1,
            i % 2 == 0,
            str(BRANCH),
        )
        for i, (e, p) in enumerate(zip(events, payloads, strict=True))
    ]
    assert settings.database_url is not None
    with connect(settings.database_url.get_secret_value()) as conn:
        copy_rows(conn, "outbox", OUTBOX_COLUMNS, rows)
        conn.commit()
    return [e.event_id for e in events]


def test_a_backlog_shared_with_a_helper_process_is_sent_once_and_stamped(
    settings: Settings, database_url: str, monkeypatch: pytest.MonkeyPatch, partners: Partners
) -> None:
    bootstrap = settings.kafka_bootstrap or ""
    ensure_topics(KafkaClientConfig.from_settings(settings), settings, [])
    directory = partners.provision(BRANCH, branch("B002"))
    vault = Vault.from_settings(settings)
    queued = _queue_decisions(settings, vault)
    monkeypatch.setattr(outbox_relay, "PARALLEL_FROM", 1)  # the helper joins even for a small backlog
    own_share: list[int] = []
    with connect(database_url) as conn:
        trust = RelayTrust.load(conn, settings)
        total = publish_outbox(
            conn,
            KafkaClientConfig.plaintext(bootstrap),
            vault,
            database_url,
            processes=2,
            after_batch=own_share.append,
            trust=trust,
        )
        assert total == EVENTS
        assert own_share[-1] == EVENTS // 2  # this process sent one share, the helper the other
        assert (
            publish_outbox(
                conn, KafkaClientConfig.plaintext(bootstrap), vault, database_url, processes=2, trust=trust
            )
            == 0
        )
        unpublished = conn.execute("SELECT count(*) FROM outbox WHERE published_at IS NULL").fetchone()
    assert unpublished == (0,)
    sent = Counter(topic_event_ids(settings, [Topics(settings).decisions]))
    assert sorted(sent) == sorted(queued)
    assert set(sent.values()) == {1}  # no failure here, so no event was sent twice
    # Each one authenticated by the bureau to its branch (the helper process signed its share too).
    records = read_records(settings, Topics(settings).decisions)
    mine = Verifier(partners.keys(BRANCH), directory)
    assert {mine.sender(r.headers, r.key, r.value) for r in records} == {BUREAU}
    other = Verifier(partners.keys(branch("B002")), directory)  # sealed to B001: another branch cannot check
    with pytest.raises(TrustFailure):
        other.sender(records[0].headers, records[0].key, records[0].value)
    with pytest.raises(TrustFailure):  # altered on the way
        mine.sender(records[0].headers, records[0].key, records[0].value + b"x")


def _row(event_id: str, topic: str, payload: bytes, recipient: str | None) -> tuple[object, ...]:
    return (event_id, topic, event_id.encode(), payload, "DecisionIssued", 1, False, recipient)


def test_rows_without_a_recipient_go_to_the_party_their_topic_says_or_are_set_aside(
    settings: Settings, database_url: str, partners: Partners
) -> None:
    """Rows queued before the outbox named recipients: a decision to its branch, a bank request to its bank,
    a dead letter to the bureau; a row whose topic says nothing, or whose recipient has no keys, is set
    aside with its reason and never sent unauthenticated."""
    bootstrap = settings.kafka_bootstrap or ""
    topics = Topics(settings)
    ensure_topics(KafkaClientConfig.from_settings(settings), settings, ["ICBC"])
    directory = partners.provision(BRANCH, bank("ICBC"))
    now = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)
    decision = DecisionIssued("d-1", "A1", "B001", ApplicationState.REJECTED, (), now, 1).to_bytes()
    letter = _dead_letter(directory)
    rows = [
        _row("d-1", topics.decisions, decision, None),
        _row("r-1", topics.bank_requests("ICBC"), b"request", None),
        _row("l-1", topics.dead_letters, letter, None),
        _row("x-1", topics.applications, b"what is this", None),
        _row("u-1", topics.decisions, decision, str(branch("B404"))),  # no keys registered
    ]
    with connect(database_url) as conn:
        copy_rows(conn, "outbox", OUTBOX_COLUMNS, rows)
        conn.commit()
        sent = publish_outbox(
            conn,
            KafkaClientConfig.plaintext(bootstrap),
            Vault.from_settings(settings),
            database_url,
            trust=RelayTrust.load(conn, settings),
        )
        aside = {e.event_id: e.reason for e in set_aside_events(conn)}
    assert sent == 3
    assert set(aside) == {"x-1", "u-1"}
    assert "no recipient" in aside["x-1"] and "branch:B404 has no registered seal key" in aside["u-1"]
    for topic, party in (
        (topics.decisions, BRANCH),
        (topics.bank_requests("ICBC"), bank("ICBC")),
        (topics.dead_letters, BUREAU),
    ):
        (record,) = read_records(settings, topic)
        verifier = Verifier(partners.keys(party), directory)
        assert verifier.sender(record.headers, record.key, record.value) == BUREAU


def _dead_letter(directory: Directory) -> bytes:
    return dead_letter_event(
        source_topic="t",
        partition=0,
        offset=1,
        stage="decode",
        reason=DeadLetterReason.MALFORMED_MESSAGE,
        detail="",
        payload=b"x",
        headers=None,
        sealer=Sealer.to(directory, BUREAU),
        at=datetime(2026, 11, 2, tzinfo=UTC),
    ).to_bytes()
