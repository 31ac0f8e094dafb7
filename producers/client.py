"""The Python client of branch systems for applications and agreements (`issuance submit` uses it too).

Every record is checked against the contract before anything is sent, so a branch hears about a bad record at
once and the topic only ever holds valid records. Sending is asynchronous: each submit returns a Submission
that resolves once the broker acknowledged the record with acks=all on an idempotent producer, or fails once
the delivery timeout has passed with the broker still unreachable. Transient errors are retried meanwhile.
Each application is signed by its branch and its personal fields are sealed to the bureau
(ApplicationSubmitted v3); each agreement is signed by its bank (`producers.credentials`). Both are keyed by
application id: a branch holds no key of the bureau's, and the night needs no person's records on one
partition (pipelines/README.md, "Topic keys"). Nothing here logs record content.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from types import TracebackType
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError

from issuance.application_wire import seal_application
from issuance.codec.avro import encode
from issuance.domain.contract import (
    AGREEMENT_RECORD,
    APPLICATION_RECORD,
    agreement_to_record,
    application_to_record,
    parse_agreement,
    parse_application,
    unknown_fields,
)
from issuance.errors import BrokerUnavailable, ConfigurationError
from issuance.kafka.client_config import KafkaClientConfig
from issuance.kafka.topics import Topics
from issuance.services.broker import probe_kafka
from issuance.services.endpoints import resolve
from issuance.settings import Settings
from issuance.trust.parties import Party, bank, branch
from producers.credentials import Headers, SenderKeys

DEFAULT_DELIVERY_TIMEOUT_S = 60.0
DEFAULT_LINGER_MS = 5
DEFAULT_BATCH_BYTES = 256 * 1024
MAX_IGNORED_PER_RECORD = 20  # names of fields beyond the contract kept per record for the report


@dataclass(frozen=True, slots=True)
class Acknowledged:
    """Where the broker stored a record."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class Prepared:
    """A validated record, encoded, keyed and signed, ready to send."""

    topic: str
    key: bytes | None
    value: bytes | None  # None only for a raw message that is a null record
    record_id: str
    ignored: tuple[str, ...] = ()  # fields of the JSON record beyond the contract, dropped by the encoding
    headers: Headers | None = None  # the sender's channel headers; None: unsigned (a raw message only)


Outcome = Acknowledged | BrokerUnavailable
OnDone = Callable[[Outcome], None]


class Submission:
    """One record on its way to the broker: resolves to Acknowledged, or fails with BrokerUnavailable."""

    __slots__ = ("_future", "record_id")

    def __init__(self, record_id: str, future: Any) -> None:
        self.record_id = record_id
        self._future = future

    def done(self) -> bool:
        """Whether the broker answered or the delivery timeout passed."""
        return bool(self._future.is_done)

    def result(self, timeout: float | None = None) -> Acknowledged:
        """The acknowledgement; BrokerUnavailable if it failed or did not come within `timeout` seconds."""
        try:
            metadata = self._future.get(timeout=timeout)
        except KafkaError as exc:
            raise BrokerUnavailable(
                f"record {self.record_id} not acknowledged ({type(exc).__name__})"
            ) from exc
        return Acknowledged(metadata.topic, metadata.partition, metadata.offset)


def _utc_today() -> date:
    return datetime.now(UTC).date()


class Preparer:
    """Validation, sealing, encoding and signing of branch records, without I/O: what is sent is decided here.

    The contract bounds timestamps by a business date; a submission's is `today()` (UTC by default), so a
    record the night would set aside as from the future is refused here already. A record whose party has no
    key in this keystore raises ConfigurationError before anything of it is sent."""

    def __init__(self, topics: Topics, keys: SenderKeys, today: Callable[[], date] = _utc_today) -> None:
        self.topics = topics
        self.keys = keys
        self._today = today

    def prepare_application(self, record: Mapping[str, Any]) -> Prepared:
        """Check the contract (SchemaViolation names the fields), seal the personal fields to the bureau,
        encode, sign as the record's branch; keyed by application id."""
        application = parse_application(record, self._today())
        sender = branch(application.branch_code)  # ConfigurationError: no party
        self.keys.signer(sender)  # a missing key fails before anything is sealed or sent
        wire = seal_application(application_to_record(application), self.keys.to_bureau())
        return self.signed(
            sender,
            Prepared(
                self.topics.applications,
                application.application_id.encode(),
                encode(APPLICATION_RECORD, wire),
                application.application_id,
                tuple(unknown_fields(record, APPLICATION_RECORD)[:MAX_IGNORED_PER_RECORD]),
            ),
        )

    def prepare_agreement(self, record: Mapping[str, Any]) -> Prepared:
        """Check the contract, encode, sign as the record's bank; keyed by application id."""
        agreement = parse_agreement(record, self._today())
        sender = bank(agreement.bank_code)
        value = encode(AGREEMENT_RECORD, agreement_to_record(agreement))
        return self.signed(
            sender,
            Prepared(
                self.topics.agreements,
                agreement.application_id.encode(),
                value,
                agreement.agreement_id,
                tuple(unknown_fields(record, AGREEMENT_RECORD)[:MAX_IGNORED_PER_RECORD]),
            ),
        )

    def signed(self, sender: Party, prepared: Prepared) -> Prepared:
        """`prepared` with the channel headers of `sender` (a null value cannot be signed: sent unsigned)."""
        if prepared.value is None:
            return prepared
        headers = self.keys.headers(sender, prepared.key, prepared.value)
        return Prepared(
            prepared.topic, prepared.key, prepared.value, prepared.record_id, prepared.ignored, headers
        )


class BranchClient:
    """Validates, encodes and publishes branch records; use as a context manager or call close()."""

    def __init__(
        self,
        kafka: KafkaClientConfig,
        topics: Topics,
        keys: SenderKeys,
        *,
        delivery_timeout_s: float = DEFAULT_DELIVERY_TIMEOUT_S,
        linger_ms: int = DEFAULT_LINGER_MS,
        batch_bytes: int = DEFAULT_BATCH_BYTES,
        client_id: str = "issuance-branch",
    ) -> None:
        self.preparer = Preparer(topics, keys)
        self._kafka = kafka
        self._delivery_timeout_s = delivery_timeout_s
        delivery_ms = int(delivery_timeout_s * 1000)
        try:
            self._producer = KafkaProducer(
                **kafka.client_kwargs(),
                client_id=client_id,
                acks="all",
                enable_idempotence=True,
                retries=2**31 - 1,  # bounded by the delivery timeout
                max_in_flight_requests_per_connection=5,
                linger_ms=linger_ms,
                batch_size=batch_bytes,
                delivery_timeout_ms=delivery_ms,
                request_timeout_ms=min(30_000, max(1_000, delivery_ms - linger_ms - 500)),
                max_block_ms=delivery_ms,  # a full buffer or unknown metadata blocks send() this long at most
                allow_auto_create_topics=False,  # topics come from `issuance setup`
                bootstrap_timeout_ms=delivery_ms,
            )
        except KafkaError as exc:
            raise BrokerUnavailable(
                f"Kafka at {kafka.bootstrap} did not answer: {type(exc).__name__}"
            ) from exc

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> BranchClient:
        """A client for the configured (or embedded) broker, signing with the keystore's keys and sealing to
        the bureau's key registered in the configured (or embedded) database."""
        endpoints = resolve(settings)
        keys = SenderKeys.from_settings(settings, endpoints.database_url)
        return cls(endpoints.kafka, Topics(settings), keys, **options)

    @property
    def topics(self) -> Topics:
        """The topic names records go to."""
        return self.preparer.topics

    def prepare_application(self, record: Mapping[str, Any]) -> Prepared:
        """See Preparer.prepare_application."""
        return self.preparer.prepare_application(record)

    def prepare_agreement(self, record: Mapping[str, Any]) -> Prepared:
        """See Preparer.prepare_agreement."""
        return self.preparer.prepare_agreement(record)

    # Sending ------------------------------------------------------------------------------------------------

    def require_topics(self, *names: str) -> None:
        """ConfigurationError unless the topics exist (a broker may auto-create them, wrongly partitioned)."""
        missing = sorted(set(names) - set(probe_kafka(self._kafka, timeout_ms=10_000)))
        if missing:
            raise ConfigurationError(
                f"topic(s) {', '.join(missing)} do not exist: run `issuance setup` first"
            )

    def send(self, prepared: Prepared, on_done: OnDone | None = None) -> Submission:
        """Publish a prepared record; BrokerUnavailable if the broker cannot even take it (buffer, metadata).

        `on_done` is called from the producer's thread with the Acknowledged or the BrokerUnavailable.
        """
        try:
            future = self._producer.send(
                prepared.topic, key=prepared.key, value=prepared.value, headers=prepared.headers
            )
        except KafkaError as exc:
            raise BrokerUnavailable(
                f"{prepared.topic}: the broker did not take the record within {self._delivery_timeout_s:g}s "
                f"({type(exc).__name__}); does the topic exist (`issuance setup`)?"
            ) from exc
        if on_done is not None:
            future.add_callback(lambda md: on_done(Acknowledged(md.topic, md.partition, md.offset)))
            future.add_errback(
                lambda exc: on_done(BrokerUnavailable(f"not acknowledged ({type(exc).__name__})"))
            )
        return Submission(prepared.record_id, future)

    def submit_application(self, record: Mapping[str, Any]) -> Submission:
        """Validate and publish one application (SchemaViolation: nothing was sent)."""
        return self.send(self.prepare_application(record))

    def submit_applications(self, records: Iterable[Mapping[str, Any]]) -> list[Submission]:
        """Validate every application first, then publish them all (one invalid record: nothing is sent)."""
        return [self.send(prepared) for prepared in [self.prepare_application(r) for r in records]]

    def submit_agreement(self, record: Mapping[str, Any]) -> Submission:
        """Validate and publish one agreement (SchemaViolation: nothing was sent)."""
        return self.send(self.prepare_agreement(record))

    def submit_agreements(self, records: Iterable[Mapping[str, Any]]) -> list[Submission]:
        """Validate every agreement first, then publish them all (one invalid record: nothing is sent)."""
        return [self.send(prepared) for prepared in [self.prepare_agreement(r) for r in records]]

    def submit_raw(
        self, topic: str, key: bytes | None, value: bytes | None, record_id: str, sender: Party | None
    ) -> Submission:
        """Publish bytes verbatim, signed as `sender` (None: unsigned), without validation: replay and test
        data for the dead letters (None: a null record)."""
        prepared = Prepared(topic, key, value, record_id)
        return self.send(prepared if sender is None else self.preparer.signed(sender, prepared))

    def flush(self, timeout: float | None = None) -> None:
        """Send everything buffered and wait for the answers (at most the delivery timeout by default)."""
        try:
            self._producer.flush(timeout=self._delivery_timeout_s + 5 if timeout is None else timeout)
        except KafkaError as exc:
            raise BrokerUnavailable(f"records still unacknowledged ({type(exc).__name__})") from exc

    def close(self, timeout: float = 5.0) -> None:
        """Release the connection; records not acknowledged by then stay unacknowledged."""
        try:
            self._producer.close(timeout=timeout)
        except KafkaError:
            # kafka-python 3.0 flushes before its forced close and raises when that flush times out (a broker
            # that stopped answering): force the close it meant to do, so no thread or retry is left behind.
            sender = getattr(self._producer, "_sender", None)
            if sender is not None:
                sender.force_close()
            self._producer._closed = True

    def __enter__(self) -> BranchClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
