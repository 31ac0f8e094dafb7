"""The simulated banks' own ledger (schema bank_sim): accounts they opened and the requests they answered."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from psycopg import Connection
from psycopg.rows import TupleRow

Conn = Connection[TupleRow]


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    """An answer a bank already gave to one request, kept to be sent again as it was."""

    request_event_id: str
    application_id: str
    answer_event_id: str
    answer_type: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class OpenedAccount:
    """One account to open in a bank's ledger; number encrypted, blind index for uniqueness."""

    bank_code: str
    application_id: str
    account_index: bytes
    account_number_enc: bytes
    card_number: str | None
    request_event_id: str


def answered(conn: Conn, bank_code: str, request_ids: Sequence[str]) -> dict[str, StoredAnswer]:
    """The answers this bank already gave, by request event id."""
    rows = conn.execute(
        "SELECT request_event_id, application_id, answer_event_id, answer_type, answer_payload"
        " FROM bank_sim.inbox WHERE bank_code = %s AND request_event_id = ANY(%s)",
        (bank_code, list(request_ids)),
    ).fetchall()
    return {str(r[0]): StoredAnswer(str(r[0]), str(r[1]), str(r[2]), str(r[3]), bytes(r[4])) for r in rows}


def accounts_open(conn: Conn, bank_code: str, application_ids: Sequence[str]) -> set[str]:
    """Applications for which this bank already holds an open account."""
    rows = conn.execute(
        "SELECT application_id FROM bank_sim.accounts WHERE bank_code = %s AND application_id = ANY(%s)",
        (bank_code, list(application_ids)),
    ).fetchall()
    return {str(r[0]) for r in rows}


def open_accounts(conn: Conn, accounts: Sequence[OpenedAccount]) -> None:
    """Open accounts; an application that already has one at that bank keeps it (never a second account)."""
    if not accounts:
        return
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO bank_sim.accounts (bank_code, application_id, account_index, account_number_enc,"
            " card_number, request_event_id) VALUES (%s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (bank_code, application_id) DO NOTHING",
            [
                (
                    a.bank_code,
                    a.application_id,
                    a.account_index,
                    a.account_number_enc,
                    a.card_number,
                    a.request_event_id,
                )
                for a in accounts
            ],
        )


def record_answers(conn: Conn, bank_code: str, answers: Sequence[StoredAnswer]) -> None:
    """Remember answers with their requests, so each request is applied at most once."""
    if not answers:
        return
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO bank_sim.inbox (bank_code, request_event_id, application_id, answer_event_id,"
            " answer_type, answer_payload) VALUES (%s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (bank_code, request_event_id) DO NOTHING",
            [
                (bank_code, a.request_event_id, a.application_id, a.answer_event_id, a.answer_type, a.payload)
                for a in answers
            ],
        )


def count_accounts(conn: Conn, bank_code: str | None = None) -> int:
    """How many accounts the simulated banks (or one of them) opened."""
    if bank_code is None:
        row = conn.execute("SELECT count(*) FROM bank_sim.accounts").fetchone()
    else:
        row = conn.execute(
            "SELECT count(*) FROM bank_sim.accounts WHERE bank_code = %s", (bank_code,)
        ).fetchone()
    return int(row[0]) if row else 0
