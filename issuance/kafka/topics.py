"""Topic names in one place, and their idempotent creation with the partition counts from the settings."""

from __future__ import annotations

from collections.abc import Iterable

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import (
    ClusterAuthorizationFailedError,
    KafkaError,
    TopicAlreadyExistsError,
    TopicAuthorizationFailedError,
)

from issuance.errors import BrokerUnavailable
from issuance.kafka.client_config import KafkaClientConfig
from issuance.settings import Settings


class Topics:
    """Every topic name of the system, with the configured prefix."""

    __slots__ = ("prefix",)

    def __init__(self, settings: Settings) -> None:
        self.prefix = settings.topic_prefix

    @property
    def applications(self) -> str:
        """Branch applications (input of the nightly run)."""
        return f"{self.prefix}branch.applications"

    @property
    def agreements(self) -> str:
        """Branch agreements (input of the nightly run)."""
        return f"{self.prefix}branch.agreements"

    @property
    def decisions(self) -> str:
        """Decisions sent back to the branches."""
        return f"{self.prefix}branch.decisions"

    @property
    def card_dispatches(self) -> str:
        """Produced cards on their way to the branches (for the branches)."""
        return f"{self.prefix}branch.card-dispatches"

    @property
    def card_events(self) -> str:
        """The branches' receipts and collections of cards."""
        return f"{self.prefix}branch.card-events"

    @property
    def dead_letters(self) -> str:
        """Messages that could not be decoded or broke the contract."""
        return f"{self.prefix}issuance.dead-letters"

    def bank_requests(self, bank_code: str) -> str:
        """Requests for one bank: account openings and activations."""
        return f"{self.prefix}bank.{bank_code}.requests"

    def bank_results(self, bank_code: str) -> str:
        """One bank's answers: accounts opened or refused, activations completed or failed. A topic per bank,
        so that the broker's ACLs let each bank write only its own, and the bureau holds an answer to the bank
        whose topic it came on."""
        return f"{self.prefix}bank.{bank_code}.results"

    def bank_of_results(self, topic: str) -> str | None:
        """The bank whose answer topic this is (None: not a bank's answer topic)."""
        head, tail = f"{self.prefix}bank.", ".results"
        if not (topic.startswith(head) and topic.endswith(tail)):
            return None
        code = topic[len(head) : -len(tail)]
        return code if code and "." not in code else None


def planned_topics(settings: Settings, bank_codes: Iterable[str]) -> dict[str, int]:
    """Every topic to create, with its partition count."""
    topics = Topics(settings)
    # Decisions and dead letters follow the application partitioning; bank traffic the bank partitioning.
    planned = {
        topics.applications: settings.application_partitions,
        topics.agreements: settings.agreement_partitions,
        topics.decisions: settings.application_partitions,
        topics.dead_letters: settings.application_partitions,
        topics.card_dispatches: settings.application_partitions,
        topics.card_events: settings.application_partitions,
    }
    for code in sorted(set(bank_codes)):
        planned[topics.bank_requests(code)] = settings.bank_partitions
        planned[topics.bank_results(code)] = settings.bank_partitions
    return planned


def ensure_topics(kafka: KafkaClientConfig, settings: Settings, bank_codes: Iterable[str]) -> list[str]:
    """Create the missing topics; return the names created now (existing ones are left as they are)."""
    planned = planned_topics(settings, bank_codes)
    try:
        admin = KafkaAdminClient(**kafka.client_kwargs(), client_id="issuance-setup")
    except KafkaError as exc:
        raise BrokerUnavailable(f"Kafka at {kafka.bootstrap} did not answer: {exc}") from exc
    try:
        existing = set(admin.list_topics())
        missing = [name for name in planned if name not in existing]
        created: list[str] = []
        for name in missing:
            # One request per topic: a batch fails as a whole when one topic appeared meanwhile.
            try:
                admin.create_topics(
                    [NewTopic(name, planned[name], settings.replication_factor)], timeout_ms=30_000
                )
                created.append(name)
            except TopicAlreadyExistsError:
                continue
            except (TopicAuthorizationFailedError, ClusterAuthorizationFailedError):
                # Under ACLs a service sees only its own topics and may create none: the others are not its
                # business (`issuance setup`, as the administrator, creates them all).
                continue
        return created
    except KafkaError as exc:
        raise BrokerUnavailable(f"creating topics on {kafka.bootstrap} failed: {exc}") from exc
    finally:
        admin.close()
