"""The simulated branches' own ledger (schema branch_sim): the cards delivered to them and what they sent
about each (receipt, collection, the holder's activation), written before it is sent and marked once the
broker acknowledged it. Plus the one read of the bureau's records the simulation allows itself: the holder's
identity for an activation (a stand-in for the branch's own files)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import LiteralString

from psycopg import Connection
from psycopg.rows import TupleRow, class_row

Conn = Connection[TupleRow]


@dataclass(frozen=True, slots=True)
class Delivered:
    """A card a branch received, with its receipt (decided, not yet necessarily sent)."""

    card_number: str
    application_id: str
    branch_code: str
    dispatch_event_id: str
    receipt_event_id: str
    receipt_payload: bytes


@dataclass(frozen=True, slots=True)
class LedgerCard:
    """A card of the ledger and what was decided and sent about it."""

    card_number: str
    application_id: str
    branch_code: str
    receipt_event_id: str
    receipt_payload: bytes
    receipt_published_at: datetime | None
    collection_event_id: str | None
    collection_payload: bytes | None
    collection_run_no: int | None
    collection_published_at: datetime | None
    activation_application_id: str | None
    activation_agreement_id: str | None
    activation_channel: str | None
    activation_at: datetime | None
    activation_published_at: datetime | None


@dataclass(frozen=True, slots=True)
class Holder:
    """What the branch knows of a card's holder (sealed) and the card's bank with its current terms."""

    id_number_enc: bytes
    name_enc: bytes
    phone_enc: bytes | None
    bank_code: str
    terms_version: str
    guardian_id_enc: bytes | None = None  # a minor's guardian, as on the card's application


_CARD_COLUMNS: LiteralString = (
    "card_number, application_id, branch_code, receipt_event_id, receipt_payload, receipt_published_at,"
    " collection_event_id, collection_payload, collection_run_no, collection_published_at,"
    " activation_application_id, activation_agreement_id, activation_channel, activation_at,"
    " activation_published_at"
)


def start_run(conn: Conn, seed: int) -> int:
    """A new simulation run (its number feeds the draws, so a later run collects other cards)."""
    row = conn.execute("INSERT INTO branch_sim.runs (seed) VALUES (%s) RETURNING run_no", (seed,)).fetchone()
    assert row is not None
    return int(row[0])


def add_delivered(conn: Conn, cards: Sequence[Delivered]) -> list[str]:
    """Record delivered cards with their receipts; returns the card numbers that were new."""
    added: list[str] = []
    for card in cards:
        row = conn.execute(
            "INSERT INTO branch_sim.cards (card_number, application_id, branch_code, dispatch_event_id,"
            " receipt_event_id, receipt_payload) VALUES (%s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (card_number) DO NOTHING RETURNING card_number",
            (
                card.card_number,
                card.application_id,
                card.branch_code,
                card.dispatch_event_id,
                card.receipt_event_id,
                card.receipt_payload,
            ),
        ).fetchone()
        if row is not None:
            added.append(card.card_number)
    return added


def cards(conn: Conn, where: LiteralString, params: Sequence[object] = ()) -> list[LedgerCard]:
    """Ledger cards matching a fixed condition of this module (never caller input)."""
    query: LiteralString = "SELECT " + _CARD_COLUMNS + " FROM branch_sim.cards WHERE " + where
    with conn.cursor(row_factory=class_row(LedgerCard)) as cur:
        return cur.execute(query + " ORDER BY card_number", params).fetchall()


def unsent_receipts(conn: Conn) -> list[LedgerCard]:
    return cards(conn, "receipt_published_at IS NULL")


def to_collect(conn: Conn) -> list[LedgerCard]:
    """Cards whose receipt was sent and that were not collected yet."""
    return cards(conn, "receipt_published_at IS NOT NULL AND collection_event_id IS NULL")


def unsent_collections(conn: Conn) -> list[LedgerCard]:
    return cards(conn, "collection_event_id IS NOT NULL AND collection_published_at IS NULL")


def collected_in(conn: Conn, run_no: int) -> list[LedgerCard]:
    """Cards collected in this run, whose holder was not sent to activate yet."""
    return cards(
        conn,
        "collection_run_no = %s AND collection_published_at IS NOT NULL"
        " AND activation_application_id IS NULL",
        (run_no,),
    )


def unsent_activations(conn: Conn) -> list[LedgerCard]:
    return cards(conn, "activation_application_id IS NOT NULL AND activation_published_at IS NULL")


def mark_receipts_sent(conn: Conn, card_numbers: Sequence[str]) -> None:
    conn.execute(
        "UPDATE branch_sim.cards SET receipt_published_at = now() WHERE card_number = ANY(%s)",
        (list(card_numbers),),
    )


def decide_collection(conn: Conn, card_number: str, event_id: str, payload: bytes, run_no: int) -> None:
    conn.execute(
        "UPDATE branch_sim.cards SET collection_event_id = %s, collection_payload = %s,"
        " collection_run_no = %s"
        " WHERE card_number = %s AND collection_event_id IS NULL",
        (event_id, payload, run_no, card_number),
    )


def mark_collections_sent(conn: Conn, card_numbers: Sequence[str]) -> None:
    conn.execute(
        "UPDATE branch_sim.cards SET collection_published_at = now() WHERE card_number = ANY(%s)",
        (list(card_numbers),),
    )


def decide_activation(
    conn: Conn, card_number: str, application_id: str, agreement_id: str, channel: str, at: datetime
) -> None:
    conn.execute(
        "UPDATE branch_sim.cards SET activation_application_id = %s, activation_agreement_id = %s,"
        " activation_channel = %s, activation_at = %s"
        " WHERE card_number = %s AND activation_application_id IS NULL",
        (application_id, agreement_id, channel, at, card_number),
    )


def mark_activations_sent(conn: Conn, card_numbers: Sequence[str]) -> None:
    conn.execute(
        "UPDATE branch_sim.cards SET activation_published_at = now() WHERE card_number = ANY(%s)",
        (list(card_numbers),),
    )


def holder(conn: Conn, application_id: str) -> Holder | None:
    """The holder of a card ordered by this NEW_CARD application, from the bureau's records (sealed)."""
    with conn.cursor(row_factory=class_row(Holder)) as cur:
        return cur.execute(
            "SELECT a.id_number_enc, a.name_enc, a.phone_enc, a.bank_code, b.terms_version, a.guardian_id_enc"
            " FROM applications a JOIN banks b ON b.bank_code = a.bank_code WHERE a.application_id = %s",
            (application_id,),
        ).fetchone()
