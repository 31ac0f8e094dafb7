"""Where the long-running consumers put a record they cannot use: the dead_letters table and its event.

A consumer never stops on a bad record. An empty, undecodable, contract-breaking or unauthenticated record is
stored once per source position (its bytes and headers encrypted with the Vault) with a bounded
MessageDeadLettered event in the outbox whose payload is sealed to the bureau (nothing in clear on the
dead-letter topic), in the same transaction as the batch's other writes; the consumer then commits past it
and goes on.
"""

from __future__ import annotations

from datetime import UTC, datetime

from kafka.consumer.fetcher import ConsumerRecord

from issuance.crypto import Vault
from issuance.dead_letter_events import dead_letter_event, encode_headers
from issuance.domain.model import DeadLetterReason
from issuance.errors import EmptyMessage
from issuance.store import consumer_repo as repo
from issuance.store import party_keys_repo
from issuance.store.consumer_repo import Conn, DeadLetter, OutboxEvent
from issuance.trust.parties import BUREAU
from issuance.trust.sealing import Sealer


def record_value(record: ConsumerRecord) -> bytes:
    """The record's value as bytes; EmptyMessage when it has none (a null or zero-length value)."""
    if not record.value:
        raise EmptyMessage("the record has no value")
    return bytes(record.value)


class DeadLetterSink:
    """Writes one consumer's dead letters (inside the caller's transaction)."""

    def __init__(self, conn: Conn, vault: Vault, dead_letter_topic: str, stage: str) -> None:
        self._conn = conn
        self._vault = vault
        self._topic = dead_letter_topic
        self._stage = stage
        self._sealer: Sealer | None = None  # to the bureau, made at the first dead letter

    def _to_bureau(self) -> Sealer:
        if self._sealer is None:
            self._sealer = Sealer.to(party_keys_repo.load_directory(self._conn), BUREAU)
        return self._sealer

    def add(self, record: ConsumerRecord, reason: DeadLetterReason, detail: str) -> bool:
        """Store the record as a dead letter and queue its event; False when it was stored before."""
        payload = bytes(record.value or b"")
        headers = list(record.headers or ())
        letter = DeadLetter(
            source_topic=record.topic,
            source_partition=record.partition,
            source_offset=record.offset,
            stage=self._stage,
            reason=reason.value,
            detail=detail,
            payload_enc=self._vault.encrypt_bytes(payload),
            headers_enc=self._vault.encrypt_bytes(encode_headers(headers)) if headers else None,
        )
        if not repo.add_dead_letter(self._conn, letter):
            return False
        message = dead_letter_event(
            source_topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            stage=self._stage,
            reason=reason,
            detail=detail,
            payload=payload,
            headers=headers,
            sealer=self._to_bureau(),
            at=datetime.now(UTC),
        )
        event = OutboxEvent(
            message.event_id, self._topic, None, message.to_bytes(), message.RECORD, str(BUREAU)
        )
        repo.add_outbox(self._conn, [event])
        return True
