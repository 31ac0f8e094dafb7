"""The simulated banks' own ledger (schema bank_sim): the accounts they opened, numbered by their own
sequence, and the requests they answered (with the answer as sent)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import Connection
from psycopg.rows import class_row

Conn = Connection[Any]

# The states of an account in a simulated bank's ledger (its own names, kept apart from the bureau's).
OPENED = "OPENED"
ACTIVE = "ACTIVE"


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
    """One account to open in a bank's ledger; number encrypted, blind index for lookups and uniqueness."""

    bank_code: str
    application_id: str
    account_index: bytes
    account_number_enc: bytes
    card_number: str | None
    request_event_id: str
    sequence: int | None  # the bank's own sequence; None for a stand-in of an account opened elsewhere
    status: str = OPENED


@dataclass(frozen=True, slots=True)
class LedgerAccount:
    """An account a bank holds."""

    application_id: str
    account_index: bytes
    account_number_enc: bytes
    status: str


def answered(conn: Conn, bank_code: str, request_ids: Sequence[str]) -> dict[str, StoredAnswer]:
    """The answers this bank already gave, by request event id."""
    with conn.cursor(row_factory=class_row(StoredAnswer)) as cur:
        rows = cur.execute(
            "SELECT request_event_id, application_id, answer_event_id, answer_type, answer_payload AS payload"
            " FROM bank_sim.inbox WHERE bank_code = %s AND request_event_id = ANY(%s)",
            (bank_code, list(request_ids)),
        ).fetchall()
    return {r.request_event_id: r for r in rows}


def accounts_of_applications(
    conn: Conn, bank_code: str, application_ids: Sequence[str]
) -> dict[str, LedgerAccount]:
    """The accounts this bank already opened for these applications, by application id."""
    with conn.cursor(row_factory=class_row(LedgerAccount)) as cur:
        rows = cur.execute(
            "SELECT application_id, account_index, account_number_enc, status FROM bank_sim.accounts"
            " WHERE bank_code = %s AND application_id = ANY(%s)",
            (bank_code, list(application_ids)),
        ).fetchall()
    return {r.application_id: r for r in rows}


def accounts_by_index(conn: Conn, bank_code: str, indexes: Sequence[bytes]) -> dict[bytes, LedgerAccount]:
    """The accounts this bank holds under these blind indexes (of their numbers), locked for the batch."""
    with conn.cursor(row_factory=class_row(LedgerAccount)) as cur:
        rows = cur.execute(
            "SELECT application_id, account_index, account_number_enc, status FROM bank_sim.accounts"
            " WHERE bank_code = %s AND account_index = ANY(%s) FOR UPDATE",
            (bank_code, list(indexes)),
        ).fetchall()
    return {bytes(r.account_index): r for r in rows}


def next_sequences(conn: Conn, bank_code: str, count: int) -> range:
    """Allocate `count` account sequences of this bank (from 1), in the caller's transaction."""
    if count <= 0:
        return range(0)
    row = conn.execute(
        "INSERT INTO bank_sim.counters (bank_code, next_value) VALUES (%(bank)s, 1 + %(n)s)"
        " ON CONFLICT (bank_code) DO UPDATE SET next_value = bank_sim.counters.next_value + %(n)s"
        " RETURNING next_value",
        {"bank": bank_code, "n": count},
    ).fetchone()
    assert row is not None
    end = int(row[0])
    return range(end - count, end)


def open_accounts(conn: Conn, accounts: Sequence[OpenedAccount]) -> None:
    """Open accounts; an application that already has one at that bank keeps it (never a second account)."""
    if not accounts:
        return
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO bank_sim.accounts (bank_code, application_id, account_index, account_number_enc,"
            " card_number, request_event_id, sequence, status, activated_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, CASE WHEN %s THEN now() END)"
            " ON CONFLICT (bank_code, application_id) DO NOTHING",
            [
                (
                    a.bank_code,
                    a.application_id,
                    a.account_index,
                    a.account_number_enc,
                    a.card_number,
                    a.request_event_id,
                    a.sequence,
                    a.status,
                    a.status == ACTIVE,
                )
                for a in accounts
            ],
        )


def activate(conn: Conn, bank_code: str, indexes: Sequence[bytes]) -> None:
    """Switch on these accounts (an account already active stays as it is)."""
    if not indexes:
        return
    conn.execute(
        "UPDATE bank_sim.accounts SET status = %(active)s, activated_at = now()"
        " WHERE bank_code = %(bank)s AND account_index = ANY(%(indexes)s) AND status = %(opened)s",
        {"active": ACTIVE, "opened": OPENED, "bank": bank_code, "indexes": list(indexes)},
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
