"""Publish what the consumers queued in the outbox with the nightly batch's relay (one relay for all)."""

from __future__ import annotations

from issuance.crypto import Vault
from issuance.kafka.client_config import KafkaClientConfig
from issuance.kafka.outbox_relay import publish_outbox as relay
from issuance.kafka.outbox_signing import RelayTrust
from issuance.store.consumer_repo import Conn


def publish_outbox(
    conn: Conn,
    kafka: KafkaClientConfig,
    vault: Vault,
    database_url: str,
    max_message_bytes: int,
    trust: RelayTrust,
) -> int:
    """Publish every unpublished outbox event, each authenticated by the bureau to its recipient; return how
    many were sent."""
    return relay(conn, kafka, vault, database_url, max_message_bytes=max_message_bytes, trust=trust)
