"""The outbox relay against the real broker and PostgreSQL: a backlog shared with a helper process."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from issuance.crypto import Vault
from issuance.domain.lifecycle import ApplicationState
from issuance.kafka import outbox_relay
from issuance.kafka.client_config import KafkaClientConfig
from issuance.kafka.outbox_relay import publish_outbox, seal_payloads
from issuance.kafka.topics import Topics, ensure_topics
from issuance.messages import DecisionIssued, decision_event_id
from issuance.settings import Settings
from issuance.store.db import connect, copy_rows
from issuance.store.decisions_repo import OUTBOX_COLUMNS
from tests.fixtures_nightly import topic_event_ids

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
        )
        for i, (e, p) in enumerate(zip(events, payloads, strict=True))
    ]
    assert settings.database_url is not None
    with connect(settings.database_url.get_secret_value()) as conn:
        copy_rows(conn, "outbox", OUTBOX_COLUMNS, rows)
        conn.commit()
    return [e.event_id for e in events]


def test_a_backlog_shared_with_a_helper_process_is_sent_once_and_stamped(
    settings: Settings, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    bootstrap = settings.kafka_bootstrap or ""
    ensure_topics(KafkaClientConfig.from_settings(settings), settings, [])
    vault = Vault.from_settings(settings)
    queued = _queue_decisions(settings, vault)
    monkeypatch.setattr(outbox_relay, "PARALLEL_FROM", 1)  # the helper joins even for a small backlog
    own_share: list[int] = []
    with connect(database_url) as conn:
        total = publish_outbox(
            conn,
            KafkaClientConfig.plaintext(bootstrap),
            vault,
            database_url,
            processes=2,
            after_batch=own_share.append,
        )
        assert total == EVENTS
        assert own_share[-1] == EVENTS // 2  # this process sent one share, the helper the other
        assert (
            publish_outbox(conn, KafkaClientConfig.plaintext(bootstrap), vault, database_url, processes=2)
            == 0
        )
        unpublished = conn.execute("SELECT count(*) FROM outbox WHERE published_at IS NULL").fetchone()
    assert unpublished == (0,)
    sent = Counter(topic_event_ids(settings, [Topics(settings).decisions]))
    assert sorted(sent) == sorted(queued)
    assert set(sent.values()) == {1}  # no failure here, so no event was sent twice
