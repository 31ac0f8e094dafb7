"""Publishes the outbox: events written with their state change, sent to Kafka, then stamped published_at.

At-least-once by construction and harmless to repeat: a crash between sending and stamping sends the same
events again with the same event ids, and every consumer keeps an inbox of processed ids. A batch is stamped
only after the broker acknowledged all of it. Sealed payloads (events carrying personal data) are opened only
here, just before they are sent. Each event is sent with the bureau's channel headers to the party it is for
(`outbox_signing`): its recipient verifies that the bureau sent it, unchanged.

No event blocks the others. One larger than the largest message (`Settings.max_message_bytes`, also the
producer's `max_request_size`) or one the broker refuses for what it is (too large, invalid or corrupt record)
is set aside: stamped `set_aside_at` with a reason instead of `published_at`, reported, never sent again by
the relay. Any other failure is the broker's (unreachable, timed out, not leader, ...): the publish step fails
and the next run sends the batch again.
"""

from __future__ import annotations

import base64
import logging
import os
import time
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any

import psycopg
from kafka import KafkaProducer
from kafka.errors import (
    CorruptRecordError,
    InvalidRecordError,
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
)

from issuance.crypto import Vault
from issuance.errors import BrokerUnavailable
from issuance.gc_policy import use_batch_thresholds
from issuance.kafka.client_config import KafkaClientConfig
from issuance.kafka.outbox_signing import Headers, HeaderStamper, NoRecipient, RelayTrust
from issuance.store.db import connect
from issuance.store.run_repo import Conn

log = logging.getLogger(__name__)

BATCH = 20_000
PARALLEL_FROM = 50_000  # unpublished events from which helper processes share the work
SEND_TIMEOUT_S = 60
# pg_advisory_lock key of the relay ("outbox" as a number): one relay sends at a time.
RELAY_LOCK_KEY = 0x6F75_7462_6F78
LOCK_POLL_S = 0.2
DEFAULT_MAX_MESSAGE_BYTES = 1_000_000  # Settings.max_message_bytes' default
BATCH_BYTES = 1024 * 1024
# What a record adds to its key and value on the wire: the batch header (61 bytes) and the record's own
# framing (attributes, varint lengths and deltas, header count), rounded up.
RECORD_OVERHEAD = 100
HEADER_OVERHEAD = 10  # a header's varint lengths of its name and value
# The broker's answers that refuse one record for what it is; every other failure is an outage.
REFUSED: tuple[type[KafkaError], ...] = (
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    InvalidRecordError,
    CorruptRecordError,
)


def _producer(kafka: KafkaClientConfig, max_message_bytes: int) -> KafkaProducer:
    try:
        return KafkaProducer(
            **kafka.client_kwargs(),
            acks="all",
            linger_ms=100,
            batch_size=min(BATCH_BYTES, max_message_bytes),  # a full batch is still one acceptable message
            max_request_size=max_message_bytes,
            client_id="issuance-outbox-relay",
        )
    except KafkaError as exc:
        raise BrokerUnavailable(
            f"cannot reach the Kafka broker at {kafka.bootstrap} to publish: {exc}"
        ) from exc


def record_size(key: bytes | None, value: bytes, headers: Sequence[tuple[str, bytes]] = ()) -> int:
    """An upper estimate of one record's size on the wire, as the broker measures it against its limit."""
    framed = sum(len(name) + len(data) + HEADER_OVERHEAD for name, data in headers)
    return len(key or b"") + len(value) + framed + RECORD_OVERHEAD


def publish_outbox(
    conn: Conn,
    kafka: KafkaClientConfig,
    vault: Vault,
    database_url: str,
    *,
    trust: RelayTrust,
    run_id: int | None = None,
    after_batch: Callable[[int], None] | None = None,
    before_stamp: Callable[[int], None] | None = None,
    processes: int = 1,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
) -> int:
    """Send every unpublished event (of one run, or all) in batches; returns how many were sent (events set
    aside are not counted: `outbox_queries.set_aside_count` tells how many wait for an operator).

    One relay at a time (an advisory lock; a second caller waits). A backlog of at least PARALLEL_FROM events
    is split by `seq` modulo `processes` between this process and helper processes, each with its own
    producer and connections (kafka-python spends most of a core per 20,000 events a second). In every share,
    a batch is stamped on a second connection while the next is sent. Every event goes with the bureau's
    channel headers to its recipient (`trust`: helpers receive it pickled and open their own channels)."""
    target = Target(kafka, max_message_bytes, trust)
    _acquire(conn)
    try:
        shares = max(1, processes) if _backlog(conn, run_id) >= PARALLEL_FROM else 1
        if shares == 1:
            return _publish_share(
                conn, target, vault, database_url, run_id, Share(0, 1), after_batch, before_stamp
            )
        with ProcessPoolExecutor(shares - 1, mp_context=get_context("spawn")) as pool:
            helpers = [
                pool.submit(_helper_share, target, vault, database_url, run_id, Share(index, shares))
                for index in range(1, shares)
            ]
            sent = _publish_share(
                conn, target, vault, database_url, run_id, Share(0, shares), after_batch, before_stamp
            )
            return sent + sum(helper.result() for helper in helpers)
    finally:
        _release(conn)


@dataclass(frozen=True, slots=True)
class Target:
    """Where events go and the largest message that may go there."""

    kafka: KafkaClientConfig
    max_message_bytes: int
    trust: RelayTrust  # the bureau's keys and the parties' public keys: whom each event is signed to


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One event ready to send (payload opened)."""

    seq: int
    event_id: str
    event_type: str
    topic: str
    partition: int | None
    key: bytes | None
    value: bytes
    headers: Headers  # the bureau's channel headers to the event's recipient


@dataclass(frozen=True, slots=True)
class SetAside:
    """An event the broker will not take, and why (sizes and error names only, never content)."""

    seq: int
    reason: str


@dataclass(frozen=True, slots=True)
class Share:
    """The events whose seq modulo `of` is `index`."""

    index: int
    of: int


def _publish_share(
    conn: Conn,
    target: Target,
    vault: Vault,
    database_url: str,
    run_id: int | None,
    share: Share,
    after_batch: Callable[[int], None] | None = None,
    before_stamp: Callable[[int], None] | None = None,
    keep_going: Callable[[], bool] = lambda: True,
) -> int:
    producer = _producer(target.kafka, target.max_message_bytes)
    signer = target.trust.stamper()
    sent = 0
    after = 0  # keyset over the write order (outbox.seq): rows stamped earlier are not scanned again
    try:
        with _Stamper(database_url) as stamper:
            while keep_going():
                rows = conn.execute(
                    "SELECT event_id, topic, message_key, payload, payload_encrypted, seq, event_type,"
                    " recipient FROM outbox WHERE published_at IS NULL AND set_aside_at IS NULL"
                    " AND seq > %(after)s AND seq %% %(of)s = %(index)s"
                    " AND (%(run)s::bigint IS NULL OR run_id = %(run)s)"
                    " ORDER BY seq LIMIT %(n)s",
                    {"run": run_id, "n": BATCH, "after": after, "of": share.of, "index": share.index},
                    binary=True,  # payloads as raw bytes, not hex text twice their size
                ).fetchall()
                _end_read(conn)
                if not rows:
                    break
                after = int(rows[-1][5])
                outgoing, unsigned = _in_partition_order(producer, rows, vault, signer)
                delivered, set_aside = _send_batch(producer, outgoing, target)
                set_aside += unsigned
                if before_stamp is not None:
                    before_stamp(len(rows))  # sent, not yet stamped (fault injection: re-sent after a crash)
                stamper.stamp(delivered, set_aside)
                sent += len(delivered)
                if after_batch is not None:
                    after_batch(sent)
    finally:
        producer.close(timeout=SEND_TIMEOUT_S)
    return sent


def _send_batch(
    producer: KafkaProducer, events: list[Outgoing], target: Target
) -> tuple[list[int], list[SetAside]]:
    """Send a batch; the seqs the broker acknowledged and the events set aside. Raises BrokerUnavailable
    when any event failed for a reason other than the record itself (nothing of the batch is stamped then)."""
    set_aside: list[SetAside] = []
    pending: list[tuple[Outgoing, Any]] = []
    for event in events:
        size = record_size(event.key, event.value, event.headers)
        if size > target.max_message_bytes:
            set_aside.append(
                _set_aside(event, f"{size} bytes, above the largest message ({target.max_message_bytes})")
            )
            continue
        pending.append((event, _send(producer, event)))
    _flush(producer)
    delivered: list[int] = []
    refused: list[Outgoing] = []
    for event, future in pending:
        if future.succeeded():
            delivered.append(event.seq)
        elif isinstance(future.exception, REFUSED):
            refused.append(event)
        else:
            raise BrokerUnavailable(f"publishing the outbox failed: {future.exception}")
    for event in refused:  # alone, so that a batch refused as a whole does not condemn its good records
        future = _send(producer, event)
        _flush(producer)
        if future.succeeded():
            delivered.append(event.seq)
        elif isinstance(future.exception, REFUSED):
            set_aside.append(_set_aside(event, f"refused by the broker: {type(future.exception).__name__}"))
        else:
            raise BrokerUnavailable(f"publishing the outbox failed: {future.exception}")
    return delivered, set_aside


def _send(producer: KafkaProducer, event: Outgoing) -> Any:
    """The send's future; a record the producer refuses before sending becomes a failed future."""
    try:
        return producer.send(
            event.topic, key=event.key, value=event.value, partition=event.partition, headers=event.headers
        )
    except REFUSED as exc:
        return _Refused(exc)


def _flush(producer: KafkaProducer) -> None:
    try:
        producer.flush(timeout=SEND_TIMEOUT_S)
    except KafkaTimeoutError as exc:
        raise BrokerUnavailable(f"publishing the outbox timed out after {SEND_TIMEOUT_S}s: {exc}") from exc


@dataclass(frozen=True, slots=True)
class _Refused:
    """A send the producer refused up front, shaped like the future of a failed send."""

    exception: KafkaError

    def succeeded(self) -> bool:
        return False


def _set_aside(event: Outgoing, why: str) -> SetAside:
    log.warning(
        "event %s (%s to %s) set aside, not published: %s", event.event_id, event.event_type, event.topic, why
    )
    return SetAside(event.seq, why)


def _helper_share(target: Target, vault: Vault, database_url: str, run_id: int | None, share: Share) -> int:
    """A helper process's share; it stops between batches once the process that started it is gone."""
    use_batch_thresholds()
    parent = os.getppid()
    with connect(database_url, autocommit=True, application_name="issuance-outbox-relay") as conn:
        return _publish_share(
            conn, target, vault, database_url, run_id, share, keep_going=lambda: os.getppid() == parent
        )


def _backlog(conn: Conn, run_id: int | None) -> int:
    row = conn.execute(
        "SELECT count(*) FROM outbox WHERE published_at IS NULL AND set_aside_at IS NULL"
        " AND (%(run)s::bigint IS NULL OR run_id = %(run)s)",
        {"run": run_id},
    ).fetchone()
    _end_read(conn)
    return int(row[0]) if row else 0


def _acquire(conn: Conn) -> None:
    """Wait for the relay lock (polled: a night's publishing may outlast the session's lock_timeout)."""
    while True:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (RELAY_LOCK_KEY,)).fetchone()
        _end_read(conn)
        if row and row[0]:
            return
        time.sleep(LOCK_POLL_S)


def _release(conn: Conn) -> None:
    if conn.closed:
        return
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        conn.rollback()
    conn.execute("SELECT pg_advisory_unlock(%s)", (RELAY_LOCK_KEY,))
    _end_read(conn)


def _end_read(conn: Conn) -> None:
    """End a read's implicit transaction (non-autocommit connection): no snapshot is held while sending."""
    if not conn.autocommit:
        conn.commit()


class _Stamper:
    """Stamps published_at on its own connection and thread, one batch behind the producer."""

    def __init__(self, database_url: str) -> None:
        self._database_url = database_url
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox-stamper")
        self._pending: Future[None] | None = None
        self._conn: Conn | None = None

    def __enter__(self) -> _Stamper:
        self._conn = connect(self._database_url, autocommit=True, application_name="issuance-outbox-relay")
        return self

    def stamp(self, seqs: list[int], set_aside: list[SetAside]) -> None:
        self._wait()  # the batch before (its failure surfaces here)
        self._pending = self._pool.submit(self._update, seqs, set_aside)

    def _update(self, seqs: list[int], set_aside: list[SetAside]) -> None:
        assert self._conn is not None
        self._conn.execute(
            "UPDATE outbox SET published_at = now() WHERE published_at IS NULL AND seq = ANY(%s)", (seqs,)
        )
        if set_aside:
            self._conn.execute(
                "UPDATE outbox o SET set_aside_at = now(), set_aside_reason = s.reason"
                " FROM unnest(%s::bigint[], %s::text[]) AS s(seq, reason)"
                " WHERE o.seq = s.seq AND o.published_at IS NULL",
                ([a.seq for a in set_aside], [a.reason for a in set_aside]),
            )

    def _wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def __exit__(self, exc_type: object, *_rest: object) -> None:
        try:
            if exc_type is None:
                self._wait()
            elif self._pending is not None:
                self._pending.cancel()
        finally:
            self._pool.shutdown(wait=True)
            if self._conn is not None:
                self._conn.close()


def seal_payloads(vault: Vault, payloads: list[bytes]) -> list[bytes]:
    """Outbox payloads that carry personal data, sealed as one batch (one data key, a nonce each).

    The envelope holds the base64 text of the Avro bytes (the vault's batch API seals text)."""
    sealed = vault.encrypt_many(base64.b64encode(p).decode("ascii") for p in payloads)
    return [s for s in sealed if s is not None]


def open_payload(vault: Vault, sealed: bytes) -> bytes:
    """The Avro bytes of a sealed outbox payload."""
    return base64.b64decode(vault.decrypt(sealed))


def _in_partition_order(
    producer: KafkaProducer, rows: list[Any], vault: Vault, signer: HeaderStamper
) -> tuple[list[Outgoing], list[SetAside]]:
    """Events grouped by topic and partition, so each producer batch fills before the next is opened: far
    fewer sender wake-ups than in arrival order; each with the bureau's headers to its recipient. An event
    that names no recipient the bureau can sign to is set aside (never sent unauthenticated).

    A keyed event goes to partition crc32(key) mod partitions: one key always lands on one partition, which
    is all the consumers rely on, and zlib's CRC costs a fraction of kafka-python's pure-Python murmur2. The
    relay is the only producer of its topics."""
    partitions: dict[str, list[int]] = {}
    out = []
    set_aside = []
    for event_id, topic, key, payload, sealed, seq, event_type, recipient in rows:
        value = open_payload(vault, payload) if sealed else bytes(payload)
        key_bytes = bytes(key) if key is not None else None
        try:
            headers = signer.headers(recipient, topic, key_bytes, value)
        except NoRecipient as exc:
            set_aside.append(SetAside(int(seq), exc.reason))
            log.warning("event %s (%s to %s) set aside, not published: %s", event_id, event_type, topic, exc)
            continue
        partition = None
        if key_bytes is not None:
            if topic not in partitions:
                partitions[topic] = sorted(producer.partitions_for(topic))
            choices = partitions[topic]
            partition = choices[zlib.crc32(key_bytes) % len(choices)]
        out.append(
            Outgoing(int(seq), str(event_id), str(event_type), topic, partition, key_bytes, value, headers)
        )
    out.sort(key=lambda e: (e.topic, -1 if e.partition is None else e.partition))
    return out, set_aside
