"""Reads behind `issuance status` and the per-run part of `issuance report`: one application, the runs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from psycopg import Connection
from psycopg.rows import TupleRow, class_row

Conn = Connection[TupleRow]


@dataclass(frozen=True, slots=True)
class ApplicationRow:
    """An application with its sealed personal fields (decrypted only to be masked)."""

    application_id: str
    application_type: str
    branch_code: str
    bank_code: str
    channel: str
    state: str
    reasons: list[str]
    is_open: bool
    version: int
    bank_refusals: int
    submitted_at: datetime
    updated_at: datetime
    area_code: str | None
    agreement_id: str | None
    card_number: str | None
    id_number_enc: bytes
    name_enc: bytes
    phone_enc: bytes | None


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """One state change."""

    at: datetime
    from_state: str | None
    to_state: str
    stage: str
    reasons: list[str]
    run_id: int | None
    detail: str | None


@dataclass(frozen=True, slots=True)
class CardRow:
    """The card this system personalized for an application."""

    card_number: str
    card_identification_code: str
    status: str
    issue_date: date
    valid_until: date


@dataclass(frozen=True, slots=True)
class AccountRow:
    """The bank account allocated for an application (sealed number)."""

    bank_code: str
    status: str
    account_number_enc: bytes | None  # None for an existing card's account (the bank knows it)


@dataclass(frozen=True, slots=True)
class RunRow:
    """One nightly run, as the report lists it."""

    run_id: int
    business_date: date
    status: str
    records_read: int
    balanced: bool | None
    started_at: datetime
    finished_at: datetime | None


def application(conn: Conn, application_id: str) -> ApplicationRow | None:
    """One application, or None."""
    with conn.cursor(row_factory=class_row(ApplicationRow)) as cur:
        return cur.execute(
            "SELECT application_id, application_type, branch_code, bank_code, channel, state,"
            " reasons, is_open,"
            " version, bank_refusals, submitted_at, updated_at, area_code, agreement_id, card_number,"
            " id_number_enc, name_enc, phone_enc FROM applications WHERE application_id = %s",
            (application_id,),
        ).fetchone()


def history(conn: Conn, application_id: str) -> list[HistoryRow]:
    """Every state change of an application, oldest first."""
    with conn.cursor(row_factory=class_row(HistoryRow)) as cur:
        return cur.execute(
            "SELECT at, from_state, to_state, stage, reasons, run_id, detail FROM application_history"
            " WHERE application_id = %s ORDER BY at, id",
            (application_id,),
        ).fetchall()


def card(conn: Conn, application_id: str) -> CardRow | None:
    """The card personalized for an application, if any."""
    with conn.cursor(row_factory=class_row(CardRow)) as cur:
        return cur.execute(
            "SELECT card_number, card_identification_code, status, issue_date, valid_until FROM cards"
            " WHERE application_id = %s",
            (application_id,),
        ).fetchone()


def account(conn: Conn, application_id: str) -> AccountRow | None:
    """The bank account allocated for an application, if any."""
    with conn.cursor(row_factory=class_row(AccountRow)) as cur:
        return cur.execute(
            "SELECT bank_code, status, account_number_enc FROM bank_accounts WHERE application_id = %s",
            (application_id,),
        ).fetchone()


def runs(conn: Conn) -> list[RunRow]:
    """Every nightly run, oldest first."""
    with conn.cursor(row_factory=class_row(RunRow)) as cur:
        return cur.execute(
            "SELECT run_id, business_date, status, records_read, balanced, started_at, finished_at FROM runs"
            " ORDER BY run_id"
        ).fetchall()


def activation_failures(conn: Conn) -> dict[str, int]:
    """Applications in ACTIVATION_FAILED per bank failure reason (the bank's answer, from the audit log)."""
    rows: list[Any] = conn.execute(
        "SELECT l.detail->>'failure_reason', count(DISTINCT a.application_id) FROM applications a"
        " JOIN LATERAL (SELECT detail FROM audit_log WHERE entity = 'application' AND entity_id"
        " = a.application_id"
        " AND action = 'activation.activation_failed' ORDER BY id DESC LIMIT 1) l ON true"
        " WHERE a.state = 'ACTIVATION_FAILED' GROUP BY 1 ORDER BY 2 DESC, 1"
    ).fetchall()
    return {str(r[0]): int(r[1]) for r in rows}
