"""Run the long-running consumers: the simulated banks (a thread and a group each) and the bureau's (one
process, one group, one handler per topic it reads)."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any, Protocol

from kafka.consumer.fetcher import ConsumerRecord

from consumers.bank_answer_trust import AnswerTrust
from consumers.bank_results import CONSUMER as BANK_RESULTS
from consumers.bank_results import BankResults
from consumers.bank_simulator import BankSimulator, FailurePolicy
from consumers.card_events import CardEvents
from consumers.dead_letters import DeadLetterSink
from consumers.loop import LoopOptions, make_producer, run_loop
from consumers.publish import publish_outbox
from issuance.crypto import Vault
from issuance.errors import BrokerUnavailable, InputError, IssuanceError
from issuance.kafka.outbox_signing import RelayTrust
from issuance.kafka.topics import Topics, ensure_topics
from issuance.services.endpoints import Endpoints
from issuance.settings import Settings
from issuance.store.consumer_repo import Conn
from issuance.store.db import connect
from issuance.store.key_rotation_repo import ensure_blind_indexes_settled
from issuance.store.party_keys_repo import load_directory
from issuance.store.roles import BANK_SIMULATOR, CONSUMER, in_role
from issuance.trust.channel import Verifier
from issuance.trust.keystore import bureau_keys, partner_keys
from issuance.trust.parties import bank
from issuance.trust.sealing import Unsealer

# First key of the pg_advisory_lock that makes a consumer group single-instance ("group" as a number); the
# second is hashtext(group id).
GROUP_LOCK_CLASS = 0x67726F75


class AlreadyConsuming(IssuanceError):
    """Another process already consumes as this group (exit 1)."""


@contextmanager
def only_member(database_url: str, group_id: str) -> Iterator[None]:
    """Hold the group's single-instance lock for the block, or raise AlreadyConsuming.

    One process per consumer group: a second one would only add a rebalance, and on the embedded broker a
    member that leaves while another is joining leaves the group unable to form again (see README.md). The
    lock is a PostgreSQL session lock, so a process that dies releases it with its connection."""
    with connect(database_url, autocommit=True, application_name=f"consumer-lock {group_id}"[:63]) as conn:
        row = conn.execute(
            "SELECT pg_try_advisory_lock(%s, hashtext(%s))", (GROUP_LOCK_CLASS, group_id)
        ).fetchone()
        if not (row and row[0]):
            raise AlreadyConsuming(
                f"another process already consumes as group {group_id}: stop it (or let it finish) first"
            )
        try:
            # After taking the lock: a blind-index rotation checks for these locks after marking itself
            # started, so one of the two always sees the other.
            ensure_blind_indexes_settled(conn)
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (GROUP_LOCK_CLASS, group_id))


def known_banks(database_url: str) -> dict[str, str]:
    """Every bank of the reference data: its code and its BIN."""
    with connect(database_url, autocommit=True, application_name="issuance-bank") as conn:
        rows = conn.execute("SELECT bank_code, bin FROM banks ORDER BY bank_code").fetchall()
    return {str(code): str(bin_) for code, bin_ in rows}


def bank_group(settings: Settings, bank_code: str) -> str:
    """The consumer group of one simulated bank."""
    return f"{settings.topic_prefix}bank-simulator.{bank_code}"


def serve_banks(
    settings: Settings,
    endpoints: Endpoints,
    bank_codes: Sequence[str] | None,
    policy: FailurePolicy,
    until_idle: float | None,
    stop: threading.Event,
    batch_size: int = 1_000,
) -> dict[str, dict[str, int]]:
    """Serve the given banks (None: every known bank) until idle or stopped; stats per bank."""
    endpoints = in_role(endpoints, BANK_SIMULATOR)
    known = known_banks(endpoints.database_url)
    codes = list(known if bank_codes is None else bank_codes)
    unknown = sorted(set(codes) - set(known))
    if unknown:
        raise InputError(f"unknown bank code(s) {', '.join(unknown)}; known: {', '.join(known) or 'none'}")
    if not codes:
        raise InputError("no banks in the reference data: run `issuance reference load FILE` first")
    ensure_topics(endpoints.kafka, settings, codes)
    topics = Topics(settings)
    vault = Vault.from_settings(settings)
    stats: dict[str, dict[str, int]] = {}

    def one(code: str) -> None:
        producer = make_producer(endpoints.kafka)
        try:
            with (
                only_member(endpoints.database_url, bank_group(settings, code)),
                connect(endpoints.database_url, autocommit=True, application_name=f"bank-sim-{code}") as conn,
            ):
                sink = DeadLetterSink(conn, vault, topics.dead_letters, f"bank-simulator.{code}")
                simulated = BankSimulator(
                    code,
                    known[code],
                    conn,
                    producer,
                    vault,
                    partner_keys(settings, bank(code)),
                    load_directory(conn),
                    topics.bank_results(code),
                    policy,
                    sink,
                )

                # Dead letters go to the bureau's tables and outbox; the bureau's relay (the consumer, the
                # night) publishes them: a bank's principal may write only its own answer topic.
                handle = simulated.handle

                options = LoopOptions(
                    endpoints.kafka,
                    (topics.bank_requests(code),),
                    bank_group(settings, code),
                    until_idle,
                    batch_size,
                    join_timeout=settings.consumer_join_timeout_s,
                )
                run_loop(options, handle, stop)
                stats[code] = asdict(simulated.stats)
        finally:
            producer.close()

    _run_threads({code: functools.partial(one, code) for code in codes}, stop)
    return stats


class TopicHandler(Protocol):
    """What the bureau's process runs for one topic: each batch of its records in one transaction."""

    @property
    def name(self) -> str:
        """Its key in the stats of `issuance consume`."""
        ...

    @property
    def queued(self) -> int:
        """Events written to the outbox so far (more after a batch than before: something to publish)."""
        ...

    def handle(self, records: Sequence[ConsumerRecord]) -> None: ...

    def summary(self) -> dict[str, int]:
        """What it did in this process."""
        ...


def bureau_group(settings: Settings) -> str:
    """The bureau's consumer group: every topic the bureau consumes, in one process (was
    `bureau.activation-results`)."""
    return f"{settings.topic_prefix}bureau"


def bureau_handlers(
    conn: Conn,
    vault: Vault,
    settings: Settings,
    bank_codes: Sequence[str],
    verifier: Verifier,
    unsealer: Unsealer,
) -> dict[str, TopicHandler]:
    """Each topic the bureau consumes with its handler (another topic of the group: one more entry): every
    bank's answer topic (the banks of the reference data when the process starts) to one handler, which
    authenticates each answer (`verifier`: the bureau's keys and the registered public keys) and opens its
    account number (`unsealer`: the bureau's keys)."""
    topics = Topics(settings)
    trust = AnswerTrust(verifier, unsealer, {topics.bank_results(code): code for code in bank_codes})
    answers = BankResults(conn, vault, topics, settings.max_activation_attempts, trust)
    return {
        **dict.fromkeys(trust.topics, answers),
        topics.card_events: CardEvents(conn, vault, topics, verifier),
    }


def distinct(handlers: Mapping[str, TopicHandler]) -> list[TopicHandler]:
    """Each handler once (one handler serves every bank's answer topic)."""
    return list({id(h): h for h in handlers.values()}.values())


def dispatch(handlers: Mapping[str, TopicHandler], records: Sequence[ConsumerRecord]) -> None:
    """Hand each topic's records of a batch to that topic's handler, in the order polled."""
    by_topic: dict[str, list[ConsumerRecord]] = {}
    for record in records:
        by_topic.setdefault(record.topic, []).append(record)
    for topic, batch in by_topic.items():
        handlers[topic].handle(batch)


def consume_results(
    settings: Settings,
    endpoints: Endpoints,
    until_idle: float | None,
    stop: threading.Event,
    batch_size: int = 1_000,
) -> dict[str, Any]:
    """Apply what the bureau consumes (the banks' answers, the branches' card events) until idle or stopped,
    publishing the events it causes; stats per handler and `published`."""
    endpoints = in_role(endpoints, CONSUMER)
    bank_codes = list(known_banks(endpoints.database_url))
    ensure_topics(endpoints.kafka, settings, bank_codes)
    vault = Vault.from_settings(settings)
    group = bureau_group(settings)
    with (
        only_member(endpoints.database_url, group),
        connect(endpoints.database_url, autocommit=True, application_name="issuance-consume") as conn,
    ):
        own = bureau_keys(settings)
        trust = RelayTrust.load(conn, settings)
        verifier = Verifier(own, trust.directory)
        handlers = bureau_handlers(conn, vault, settings, bank_codes, verifier, Unsealer(own))
        published = 0

        def handle(records: Sequence[Any]) -> None:
            nonlocal published
            queued = sum(h.queued for h in distinct(handlers))
            dispatch(handlers, records)
            if sum(h.queued for h in distinct(handlers)) > queued:  # decisions or dead letters
                published += publish_outbox(
                    conn,
                    endpoints.kafka,
                    vault,
                    endpoints.database_url,
                    settings.max_message_bytes,
                    trust,
                )

        options = LoopOptions(
            endpoints.kafka,
            tuple(handlers),
            group,
            until_idle,
            batch_size,
            join_timeout=settings.consumer_join_timeout_s,
        )
        run_loop(options, handle, stop)
        published += publish_outbox(
            conn, endpoints.kafka, vault, endpoints.database_url, settings.max_message_bytes, trust
        )
        return {**{h.name: h.summary() for h in distinct(handlers)}, "published": published}


def _run_threads(bodies: dict[str, Callable[[], None]], stop: threading.Event) -> None:
    """Run each body in its own thread; the first failure stops the others and is raised."""
    errors: list[BaseException] = []

    def guarded(body: Callable[[], None]) -> None:
        try:
            body()
        except BaseException as exc:  # re-raised in the calling thread below
            errors.append(exc)
            stop.set()

    threads = [
        threading.Thread(target=guarded, args=(body,), name=name, daemon=True)
        for name, body in bodies.items()
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():
            thread.join(timeout=0.5)
    if errors:
        raise errors[0]


def round_trip(
    settings: Settings, endpoints: Endpoints, policy: FailurePolicy, until_idle: float, timeout: float = 600
) -> dict[str, Any]:
    """Serve every bank until idle while the bureau applies the answers; return once all are applied."""
    stop_consuming = threading.Event()
    result: dict[str, Any] = {}

    def consume() -> None:
        result["consume"] = consume_results(settings, endpoints, None, stop_consuming)

    consumer = threading.Thread(target=_capture(consume, result), name="consume", daemon=True)
    consumer.start()
    try:
        result["banks"] = serve_banks(settings, endpoints, None, policy, until_idle, threading.Event())
        deadline = time.monotonic() + timeout
        while consumer.is_alive() and _unapplied(endpoints.database_url) > 0:
            if time.monotonic() > deadline:
                raise BrokerUnavailable(f"the bureau consumer did not apply every answer within {timeout:g}s")
            time.sleep(0.2)
    finally:
        stop_consuming.set()
        consumer.join()
    if "error" in result:
        raise result["error"]
    return result


def _capture(body: Callable[[], None], result: dict[str, Any]) -> Callable[[], None]:
    def run() -> None:
        try:
            body()
        except BaseException as exc:  # re-raised by the caller's thread
            result["error"] = exc

    return run


def _unapplied(database_url: str) -> int:
    """Answers the banks gave that the bureau has not applied yet (each answer has one event id)."""
    with connect(database_url, autocommit=True, application_name="issuance-round-trip") as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM bank_sim.inbox WHERE answer_event_id NOT IN"
            " (SELECT event_id FROM inbox WHERE consumer = %s))",
            (BANK_RESULTS,),
        ).fetchone()
    return int(row[0]) if row else 0
