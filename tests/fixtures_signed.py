"""Records with their headers: read back what the bureau published, send what a partner would (signed)."""

from __future__ import annotations

from collections.abc import Sequence

from kafka import KafkaConsumer, KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord

from issuance.kafka.client_config import KafkaClientConfig
from issuance.settings import Settings
from issuance.trust.channel import Signer
from issuance.trust.parties import BUREAU

Headers = list[tuple[str, bytes]]


def read_records(settings: Settings, topic: str) -> list[ConsumerRecord]:
    """Every record on a topic, with its key and headers."""
    consumer = KafkaConsumer(
        topic,
        **KafkaClientConfig.from_settings(settings).client_kwargs(),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=2000,
    )
    try:
        return list(consumer)
    finally:
        consumer.close()


def send(
    settings: Settings,
    topic: str,
    messages: Sequence[tuple[bytes | None, bytes]],
    signer: Signer | None = None,
    headers: Headers | None = None,
) -> None:
    """Publish (key, value) messages, each with `signer`'s channel headers to the bureau (or `headers` as
    given, or none), and wait for the broker's acks."""
    producer = KafkaProducer(**KafkaClientConfig.from_settings(settings).client_kwargs(), acks="all")
    try:
        for key, value in messages:
            sent = signer.headers(BUREAU, key, value) if signer is not None else headers
            producer.send(topic, key=key, value=value, headers=sent or None)
        producer.flush()
    finally:
        producer.close()
