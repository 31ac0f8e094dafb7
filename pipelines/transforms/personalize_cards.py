"""Personalize stage: the cards whose bank account is now OPENED get their numbers, dates and vendor.

The source is PostgreSQL, bounded: when the run stages, the due cards' application ids are listed once, in
chunks (`list_card_chunks`); each chunk is read by a worker with its own connection, personalized by the pure
`issuance.domain.personalization.personalize_card`, and staged into `staged_cards` (binary COPY, replacing
the chunk's earlier rows, so a retried bundle or a re-run never stages a card twice). Nothing becomes visible
until the final transaction applies the staged cards (`issuance.store.personalization_repo`).

The holder's sex and birth date, which the chip and the card face carry, are read from the ID number here
and sealed (the vendor file carries the envelopes).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from psycopg import Connection

from issuance.crypto import Vault
from issuance.domain.personalization import OrderedCard, chip_holder, personalize_card
from issuance.store.db import connect
from issuance.store.personalization_repo import DueCard, list_due, ordered_cards, replace_card_chunk
from issuance.store.run_repo import Conn

STAGE = "personalize"
CARDS, NO_VENDOR, BUSY_MS = "cards", "no_vendor", "busy_ms"
RATE = f"{STAGE}.cards_per_s"
_VENDOR = 9  # position of vendor_code in a staged_cards row (STAGED_CARD_COLUMNS)


@dataclass(frozen=True, slots=True)
class CardChunk:
    """One chunk of due cards for a run: the unit of parallelism and of retry."""

    run_id: int
    index: int
    application_ids: tuple[str, ...]


def list_card_chunks(conn: Conn, run_id: int, chunk_size: int) -> list[CardChunk]:
    """The due cards of tonight, in chunks (the stage's bounded source)."""
    return [CardChunk(run_id, i, tuple(ids)) for i, ids in enumerate(list_due(conn, chunk_size))]


def staged_row(
    card: DueCard, vendors: Mapping[str, str], business_date: date, sex_enc: Any, birth_enc: Any
) -> tuple[Any, ...]:
    """The `staged_cards` columns after the chunk and the application id (sex and birth date sealed)."""
    done = personalize_card(
        OrderedCard(
            card.application_id,
            int(card.slot),
            card.area_code,
            card.card_number,
            card.card_identification_code,
            card.sequence,
            card.issue_date,
            card.valid_until,
        ),
        vendors,
        business_date,
    )
    return (
        done.card_number,
        done.card_identification_code,
        done.sequence,
        done.issue_date,
        done.valid_until,
        done.spec_version,
        done.vendor_code,
        sex_enc,
        birth_enc,
    )


class PersonalizeChunk(beam.DoFn):  # type: ignore[misc]
    """CardChunk -> (chunk index, cards staged), once the chunk's rows are committed to `staged_cards`."""

    def __init__(
        self, database_url: str, vault: Vault, vendors: Mapping[str, str], business_date: date
    ) -> None:
        self._database_url = database_url
        self._vault = vault
        self._vendors = dict(vendors)
        self._business_date = business_date
        self._conn: Connection[Any] | None = None

    def setup(self) -> None:
        self._conn = connect(self._database_url, application_name="issuance-nightly-personalize")

    def process(self, chunk: CardChunk) -> Iterator[tuple[int, int]]:
        conn = self._conn
        assert conn is not None, "setup() opens the connection"
        started = time.monotonic()
        cards = ordered_cards(conn, chunk.application_ids)
        conn.commit()
        holders = [chip_holder(self._vault.decrypt(c.id_number_enc)) for c in cards]
        sexes = self._vault.encrypt_many(h.sex.value if h else None for h in holders)
        births = self._vault.encrypt_many(h.birth_date.isoformat() if h else None for h in holders)
        rows = [
            (
                chunk.run_id,
                chunk.index,
                card.application_id,
                *staged_row(card, self._vendors, self._business_date, sex, birth),
            )
            for card, sex, birth in zip(cards, sexes, births, strict=True)
        ]
        replace_card_chunk(conn, chunk.run_id, chunk.index, rows)
        waiting = sum(1 for row in rows if row[_VENDOR] is None)
        Metrics.counter(STAGE, CARDS).inc(len(rows) - waiting)
        Metrics.counter(STAGE, NO_VENDOR).inc(waiting)
        Metrics.counter(STAGE, BUSY_MS).inc(int((time.monotonic() - started) * 1000))
        yield chunk.index, len(rows)

    def teardown(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class PersonalizeCards(beam.PTransform):  # type: ignore[misc]
    """PBegin -> PCollection[(chunk index, cards staged)]: the run's due cards, personalized and staged."""

    def __init__(
        self,
        chunks: list[CardChunk],
        database_url: str,
        vault: Vault,
        vendors: Mapping[str, str],
        business_date: date,
    ) -> None:
        super().__init__()
        self._chunks = chunks
        self._fn = PersonalizeChunk(database_url, vault, vendors, business_date)

    def expand(self, begin: beam.pvalue.PBegin) -> beam.PCollection:
        return (
            begin
            | "ListCardChunks" >> beam.Create(self._chunks)  # CardChunk
            | "SpreadCardChunks" >> beam.Reshuffle()  # CardChunk, one worker each
            | "StageCards" >> beam.ParDo(self._fn)  # (chunk index, cards staged)
        )


def with_rate(counters: Mapping[str, int]) -> dict[str, int]:
    """The stage's rate in cards per second of its workers' time, for the run's counters."""
    cards = counters.get(f"{STAGE}.{CARDS}", 0) + counters.get(f"{STAGE}.{NO_VENDOR}", 0)
    busy_ms = counters.get(f"{STAGE}.{BUSY_MS}", 0)
    return {RATE: round(cards * 1000 / busy_ms) if busy_ms else 0}
