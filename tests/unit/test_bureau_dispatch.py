"""The bureau's one consumer process hands each topic's records to that topic's handler."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kafka.consumer.fetcher import ConsumerRecord

from consumers.serve import TopicHandler, dispatch, distinct


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
    handlers: dict[str, TopicHandler] = {
        "bank.B1.results": answers,
        "bank.B2.results": answers,
        "branch.card-events": events,
    }
    batch = [
        _record("bank.B1.results", 1),
        _record("branch.card-events", 7),
        _record("bank.B2.results", 3),
        _record("bank.B1.results", 2),
    ]
    dispatch(handlers, batch)
    # One handler for every bank's answers, called once per topic; each bank's records in the order polled.
    assert answers.batches == [[1, 2], [3]] and events.batches == [[7]]
    assert distinct(handlers) == [answers, events]
