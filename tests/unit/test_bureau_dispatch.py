"""The bureau's one consumer process hands each topic's records to that topic's handler."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kafka.consumer.fetcher import ConsumerRecord

from consumers.serve import TopicHandler, bureau_handlers, dispatch
from issuance.kafka.topics import Topics
from issuance.settings import Settings
from issuance.trust.channel import Verifier
from issuance.trust.keys import Directory, PartyKeys
from issuance.trust.parties import BUREAU


class Recording:
    """A handler that remembers the offsets it was given."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.batches: list[list[int]] = []

    @property
    def queued(self) -> int:
        return 0

    def handle(self, records: Sequence[ConsumerRecord]) -> None:
        self.batches.append([r.offset for r in records])

    def summary(self) -> dict[str, int]:
        return {"batches": len(self.batches)}


def _record(topic: str, offset: int) -> Any:
    return ConsumerRecord(topic, 0, 0, offset, 0, 0, b"k", b"v", None, None, 1, 1, 0)


def test_each_topic_gets_its_own_records_in_the_order_polled() -> None:
    answers, events = Recording("bank_results"), Recording("card_events")
    handlers: dict[str, TopicHandler] = {"bank.results": answers, "branch.card-events": events}
    batch = [_record("bank.results", 1), _record("branch.card-events", 7), _record("bank.results", 2)]
    dispatch(handlers, batch)
    assert answers.batches == [[1, 2]] and events.batches == [[7]]


def test_the_bureau_reads_the_banks_answers_and_the_branches_card_events() -> None:
    settings = Settings()
    keys = PartyKeys.generate(BUREAU)
    verifier = Verifier(keys, Directory([keys.public()]))
    handlers = bureau_handlers(None, None, settings, verifier)  # type: ignore[arg-type]
    assert [h.name for h in handlers.values()] == ["bank_results", "card_events"]
    assert list(handlers) == [Topics(settings).bank_results, Topics(settings).card_events]
