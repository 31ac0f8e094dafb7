"""Publishes the outbox: events written with their state change, sent to Kafka, then stamped published_at.

At-least-once by construction and harmless to repeat: a crash between sending and stamping sends the same
events again with the same event ids, and every consumer keeps an inbox of processed ids. A batch is stamped
only after the broker acknowledged all of it. Sealed payloads
(events carrying personal data) are opened only here, just before they are sent.
"""

from __future__ import annotations

import base64
import os
import time
import zlib
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any

import psycopg
from kafka import KafkaProducer

from issuance.crypto import Vault
from issuance.errors import BrokerUnavailable
from issuance.gc_policy import use_batch_thresholds
from issuance.store.db import connect
from issuance.store.run_repo import Conn

BATCH = 20_000
PARALLEL_FROM = 50_000  # unpublished events from which helper processes share the work
SEND_TIMEOUT_S = 60
# pg_advisory_lock key of the relay ("outbox" as a number): one relay sends at a time.
RELAY_LOCK_KEY = 0x6F75_7462_6F78
LOCK_POLL_S = 0.2


def _producer(bootstrap: str) -> KafkaProducer:
    return KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=100,
        batch_size=1024 * 1024,
        max_request_size=8 * 1024 * 1024,
        client_id="issuance-outbox-relay",
    )


def publish_outbox(
    conn: Conn,
    bootstrap: str,
    vault: Vault,
    database_url: str,
    *,
    run_id: int | None = None,
    after_batch: Callable[[int], None] | None = None,
    before_stamp: Callable[[int], None] | None = None,
    processes: int = 1,
) -> int:
    """Send every unpublished event (of one run, or all) in batches; returns how many were sent.

    One relay at a time (an advisory lock; a second caller waits). A backlog of at least PARALLEL_FROM events
    is split by `seq` modulo `processes` between this process and helper processes, each with its own
    producer and connections (kafka-python spends most of a core per 20,000 events a second). In every share,
    a batch is stamped on a second connection while the next is sent."""
    _acquire(conn)
    try:
        shares = max(1, processes) if _backlog(conn, run_id) >= PARALLEL_FROM else 1
        if shares == 1:
            return _publish_share(
                conn, bootstrap, vault, database_url, run_id, Share(0, 1), after_batch, before_stamp
            )
        with ProcessPoolExecutor(shares - 1, mp_context=get_context("spawn")) as pool:
            helpers = [
                pool.submit(_helper_share, bootstrap, vault, database_url, run_id, Share(index, shares))
                for index in range(1, shares)
            ]
            sent = _publish_share(
                conn, bootstrap, vault, database_url, run_id, Share(0, shares), after_batch, before_stamp
            )
            return sent + sum(helper.result() for helper in helpers)
    finally:
        _release(conn)


@dataclass(frozen=True, slots=True)
class Share:
    """The events whose seq modulo `of` is `index`."""

    index: int
    of: int


def _publish_share(
    conn: Conn,
    bootstrap: str,
    vault: Vault,
    database_url: str,
    run_id: int | None,
    share: Share,
    after_batch: Callable[[int], None] | None = None,
    before_stamp: Callable[[int], None] | None = None,
    keep_going: Callable[[], bool] = lambda: True,
) -> int:
    producer = _producer(bootstrap)
    sent = 0
    after = 0  # keyset over the write order (outbox.seq): rows stamped earlier are not scanned again
    try:
        with _Stamper(database_url) as stamper:
            while keep_going():
                rows = conn.execute(
                    "SELECT event_id, topic, message_key, payload, payload_encrypted, seq FROM outbox"
                    " WHERE published_at IS NULL AND seq > %(after)s AND seq %% %(of)s = %(index)s"
                    " AND (%(run)s::bigint IS NULL OR run_id = %(run)s)"
                    " ORDER BY seq LIMIT %(n)s",
                    {"run": run_id, "n": BATCH, "after": after, "of": share.of, "index": share.index},
                    binary=True,  # payloads as raw bytes, not hex text twice their size
                ).fetchall()
                _end_read(conn)
                if not rows:
                    break
                after = int(rows[-1][5])
                futures: list[Any] = []
                for topic, partition, key, value in _in_partition_order(producer, rows, vault):
                    futures.append(producer.send(topic, key=key, value=value, partition=partition))
                producer.flush(timeout=SEND_TIMEOUT_S)
                failed = next((f.exception for f in futures if not f.succeeded()), None)
                if failed is not None:
                    raise BrokerUnavailable(f"publishing the outbox failed: {failed}")
                if before_stamp is not None:
                    before_stamp(len(rows))  # sent, not yet stamped (fault injection: re-sent after a crash)
                stamper.stamp([r[5] for r in rows])
                sent += len(rows)
                if after_batch is not None:
                    after_batch(sent)
    finally:
        producer.close(timeout=SEND_TIMEOUT_S)
    return sent


def _helper_share(bootstrap: str, vault: Vault, database_url: str, run_id: int | None, share: Share) -> int:
    """A helper process's share; it stops between batches once the process that started it is gone."""
    use_batch_thresholds()
    parent = os.getppid()
    with connect(database_url, autocommit=True, application_name="issuance-outbox-relay") as conn:
        return _publish_share(
            conn, bootstrap, vault, database_url, run_id, share, keep_going=lambda: os.getppid() == parent
        )


def _backlog(conn: Conn, run_id: int | None) -> int:
    row = conn.execute(
        "SELECT count(*) FROM outbox WHERE published_at IS NULL"
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

    def stamp(self, seqs: list[int]) -> None:
        self._wait()  # the batch before (its failure surfaces here)
        self._pending = self._pool.submit(self._update, seqs)

    def _update(self, seqs: list[int]) -> None:
        assert self._conn is not None
        self._conn.execute(
            "UPDATE outbox SET published_at = now() WHERE published_at IS NULL AND seq = ANY(%s)", (seqs,)
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
    producer: KafkaProducer, rows: list[Any], vault: Vault
) -> list[tuple[str, int | None, bytes | None, bytes]]:
    """Events grouped by topic and partition, so each producer batch fills before the next is opened: far
    fewer sender wake-ups than in arrival order.

    A keyed event goes to partition crc32(key) mod partitions: one key always lands on one partition, which
    is all the consumers rely on, and zlib's CRC costs a fraction of kafka-python's pure-Python murmur2. The
    relay is the only producer of its topics."""
    partitions: dict[str, list[int]] = {}
    out = []
    for _event_id, topic, key, payload, sealed, _seq in rows:
        value = open_payload(vault, payload) if sealed else bytes(payload)
        key_bytes = bytes(key) if key is not None else None
        partition = None
        if key_bytes is not None:
            if topic not in partitions:
                partitions[topic] = sorted(producer.partitions_for(topic))
            choices = partitions[topic]
            partition = choices[zlib.crc32(key_bytes) % len(choices)]
        out.append((topic, partition, key_bytes, value))
    out.sort(key=lambda e: (e[0], -1 if e[1] is None else e[1]))
    return out
