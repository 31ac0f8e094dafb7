"""Publish what the consumers queued in the outbox: the batch's relay when it is installed, else a minimal one."""

from __future__ import annotations

import importlib
from typing import Any

from kafka import KafkaProducer

from consumers.loop import send_all
from issuance.store.activation_repo import Conn

BATCH = 2_000
# The events the consumers write; the nightly relay owns the rest of the outbox.
EVENT_TYPES = ("DecisionIssued", "MessageDeadLettered")


def publish_outbox(conn: Conn, producer: KafkaProducer, bootstrap: str) -> int:
    """Publish every unpublished outbox event; return how many were sent."""
    relay = _relay()
    if relay is not None:
        return int(relay(conn, producer, bootstrap))
    sent = 0
    while True:
        with conn.transaction():
            rows = conn.execute(
                "SELECT event_id, topic, message_key, payload FROM outbox WHERE published_at IS NULL"
                " AND event_type = ANY(%s) ORDER BY created_at, event_id LIMIT %s FOR UPDATE SKIP LOCKED",
                (list(EVENT_TYPES), BATCH),
            ).fetchall()
            if not rows:
                return sent
            # Sent before stamped: a crash in between publishes again, which the consumers' inboxes absorb.
            send_all(producer, [(str(r[1]), None if r[2] is None else bytes(r[2]), bytes(r[3])) for r in rows])
            conn.execute(
                "UPDATE outbox SET published_at = now() WHERE event_id = ANY(%s)", ([str(r[0]) for r in rows],)
            )
        sent += len(rows)


def _relay() -> Any:
    """The outbox relay of the nightly batch (issuance.kafka.outbox_relay), when present."""
    try:
        module = importlib.import_module("issuance.kafka.outbox_relay")
    except ImportError:
        return None
    return getattr(module, "publish_for_consumers", None)
