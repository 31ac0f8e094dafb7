"""The loop every long-running consumer shares: group membership, batches, commit after the work, stop."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from kafka import KafkaConsumer, KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import CommitFailedError, KafkaError

from issuance.errors import BrokerUnavailable, IssuanceError
from issuance.kafka.client_config import KafkaClientConfig

log = logging.getLogger(__name__)

# tansu completes a group join after about half the session timeout (broker-notes quirk 2); Apache Kafka
# does not care. max_poll_interval_ms must never be below session_timeout_ms.
SESSION_TIMEOUT_MS = 6_000
HEARTBEAT_INTERVAL_MS = 2_000
MAX_POLL_INTERVAL_MS = 300_000

BatchHandler = Callable[[Sequence[ConsumerRecord]], None]


@dataclass(frozen=True, slots=True)
class LoopOptions:
    """Where one consumer reads and when it stops."""

    kafka: KafkaClientConfig
    topics: tuple[str, ...]
    group_id: str
    until_idle: float | None = None
    max_records: int = 1_000
    poll_timeout_ms: int = 500
    # Stop with NoPartitions when the group has not given this consumer a partition for this many seconds
    # (at the start or after a rebalance took its partitions away).
    join_timeout: float = 60.0


@dataclass(slots=True)
class LoopStats:
    """What one loop did, for progress lines and tests."""

    batches: int = 0
    records: int = 0


class NoPartitions(IssuanceError):
    """The consumer group gave this consumer no partition within the join timeout (exit 1)."""

    def __init__(self, options: LoopOptions, waited: float) -> None:
        topics = ", ".join(options.topics)
        super().__init__(
            f"consumer group {options.group_id} gave this consumer no partition of {topics} for"
            f" {waited:.0f}s: another process of the group holds them or the group cannot settle; stop every"
            " consumer of this group, then start one (see RUNBOOK.md: a consumer gets no partitions)"
        )


def make_producer(kafka: KafkaClientConfig) -> KafkaProducer:
    """A producer whose sends are durable once flushed: acks from every in-sync replica, idempotent."""
    try:
        return KafkaProducer(
            **kafka.client_kwargs(),
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            batch_size=256 * 1024,
            retries=10,
            request_timeout_ms=30_000,
        )
    except KafkaError as exc:
        raise BrokerUnavailable(f"cannot reach the Kafka broker at {kafka.bootstrap}: {exc}") from exc


def send_all(
    producer: KafkaProducer,
    messages: Sequence[tuple[str, bytes | None, bytes]],
    headers: Sequence[list[tuple[str, bytes]]] | None = None,
) -> None:
    """Send (topic, key, value) messages, each with its headers when given (one list per message), and return
    only when every one is acknowledged."""
    each = headers if headers is not None else [[] for _ in messages]
    futures = [
        producer.send(topic, key=key, value=value, headers=h or None)
        for (topic, key, value), h in zip(messages, each, strict=True)
    ]
    producer.flush()
    for future in futures:
        try:
            future.get(timeout=30)
        except KafkaError as exc:
            raise BrokerUnavailable(f"the broker did not acknowledge a message: {exc}") from exc


def _consumer(options: LoopOptions) -> KafkaConsumer:
    try:
        return KafkaConsumer(
            *options.topics,
            **options.kafka.client_kwargs(),
            group_id=options.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
            max_poll_interval_ms=MAX_POLL_INTERVAL_MS,
            max_poll_records=options.max_records,
        )
    except KafkaError as exc:
        raise BrokerUnavailable(f"cannot reach the Kafka broker at {options.kafka.bootstrap}: {exc}") from exc


def run_loop(options: LoopOptions, handle: BatchHandler, stop: threading.Event) -> LoopStats:
    """Poll batches and hand each to `handle`; commit offsets only after `handle` returned."""
    stats = LoopStats()
    consumer = _consumer(options)
    held_at = time.monotonic()  # when this consumer last held a partition (the start counts as holding)
    last_activity: float | None = None
    try:
        while not stop.is_set():
            polled: dict[Any, list[ConsumerRecord]] = consumer.poll(
                timeout_ms=options.poll_timeout_ms, max_records=options.max_records
            )
            records = [record for tp in sorted(polled, key=str) for record in polled[tp]]
            now = time.monotonic()
            if consumer.assignment():
                held_at = now
            elif now - held_at >= options.join_timeout:
                raise NoPartitions(options, now - held_at)
            if records:
                handle(records)
                try:
                    consumer.commit()
                except CommitFailedError:
                    # The group rebalanced meanwhile: the records come again and the inbox skips them.
                    log.warning("offset commit of group %s failed after a rebalance", options.group_id)
                stats.batches += 1
                stats.records += len(records)
                last_activity = now
                continue
            if options.until_idle is None:
                continue
            if last_activity is None and consumer.assignment():
                last_activity = now  # the idle clock starts once the group has given us partitions
            if last_activity is not None and now - last_activity >= options.until_idle:
                break
    finally:
        consumer.close(autocommit=False)
    return stats


@contextmanager
def stop_on_sigterm() -> Iterator[threading.Event]:
    """An event set by SIGTERM or SIGINT, so the loops finish their current batch and exit cleanly."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def _handler(signum: int, frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
