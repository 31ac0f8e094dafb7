"""Reads behind `issuance status` and the per-run part of `issuance report`: one application, its card on
both sides (the one this system issued, or a registry card an activation is for), every step, the runs."""

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
    retry_due: bool
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
    """A card this system ordered: its social-security side, its making and its handing over."""

    application_id: str  # the NEW_CARD application it was ordered for
    card_number: str | None  # None until personalized
    card_identification_code: str | None
    status: str
    branch_code: str | None
    bank_code: str
    vendor_code: str | None
    chip_serial: str | None
    productions: int
    production_failures: int
    issue_date: date | None
    valid_until: date | None
    produced_at: datetime | None
    received_at: datetime | None
    collected_at: datetime | None
    collected_by: str | None


@dataclass(frozen=True, slots=True)
class AccountRow:
    """The financial side of a card this system ordered: the account at the bank (sealed number)."""

    bank_code: str
    status: str
    account_number_enc: bytes | None  # None until the bank opened the account and assigned its number
    opened_at: datetime | None
    activated_at: datetime | None


@dataclass(frozen=True, slots=True)
class RegistryCardRow:
    """A card of the person registry (issued before this system), as the registry lists it."""

    card_number: str
    bank_code: str
    status: str
    financial_status: str


@dataclass(frozen=True, slots=True)
class CardHistoryRow:
    """One step of a card's social-security or financial side."""

    at: datetime
    side: str
    from_status: str | None
    to_status: str
    source: str  # nightly, bank:<code>, vendor:<code>, branch:<code>
    run_id: int | None
    detail: str | None


_CARD_COLUMNS = (
    "application_id, card_number, card_identification_code, status, branch_code, bank_code, vendor_code,"
    " chip_serial, productions, production_failures, issue_date, valid_until, produced_at, received_at,"
    " collected_at, collected_by"
)


def card(conn: Conn, application_id: str) -> CardRow | None:
    """The card ordered for a NEW_CARD application, if any."""
    with conn.cursor(row_factory=class_row(CardRow)) as cur:
        return cur.execute(
            f"SELECT {_CARD_COLUMNS} FROM cards WHERE application_id = %s", (application_id,)
        ).fetchone()


def card_by_number(conn: Conn, card_number: str) -> CardRow | None:
    """The card this system issued with this number, if any (what a FINANCIAL_ACTIVATION may be for)."""
    with conn.cursor(row_factory=class_row(CardRow)) as cur:
        return cur.execute(
            f"SELECT {_CARD_COLUMNS} FROM cards WHERE card_number = %s", (card_number,)
        ).fetchone()


def registry_card(conn: Conn, card_number: str) -> RegistryCardRow | None:
    """A card of the person registry, if listed."""
    with conn.cursor(row_factory=class_row(RegistryCardRow)) as cur:
        return cur.execute(
            "SELECT card_number, bank_code, status, financial_status FROM person_cards"
            " WHERE card_number = %s",
            (card_number,),
        ).fetchone()


def account(conn: Conn, application_id: str) -> AccountRow | None:
    """The account requested for a NEW_CARD application's card, if any."""
    with conn.cursor(row_factory=class_row(AccountRow)) as cur:
        return cur.execute(
            "SELECT bank_code, status, account_number_enc, opened_at, activated_at FROM bank_accounts"
            " WHERE application_id = %s",
            (application_id,),
        ).fetchone()


def card_history(conn: Conn, application_id: str) -> list[CardHistoryRow]:
    """Every step of both sides of the card ordered for a NEW_CARD application, oldest first."""
    with conn.cursor(row_factory=class_row(CardHistoryRow)) as cur:
        return cur.execute(
            "SELECT at, side, from_status, to_status, source, run_id, detail FROM card_history"
            " WHERE application_id = %s ORDER BY at, id",
            (application_id,),
        ).fetchall()


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
            " version, bank_refusals, retry_due, submitted_at, updated_at, area_code, agreement_id,"
            " card_number,"
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


def runs(conn: Conn) -> list[RunRow]:
    """Every nightly run, oldest first."""
    with conn.cursor(row_factory=class_row(RunRow)) as cur:
        return cur.execute(
            "SELECT run_id, business_date, status, records_read, balanced, started_at, finished_at FROM runs"
            " ORDER BY run_id"
        ).fetchall()


def failures(conn: Conn, failed: str) -> dict[str, int]:
    """Applications in the FAILED state (`failed`, from the lifecycle model) per what failed them: the
    reason recorded with their last step into that state (the bank's refusal or the vendor's failure)."""
    rows: list[Any] = conn.execute(
        "SELECT coalesce(h.detail, h.stage), count(*) FROM applications a"
        " JOIN LATERAL (SELECT detail, stage FROM application_history WHERE application_id = a.application_id"
        " AND to_state = a.state ORDER BY id DESC LIMIT 1) h ON true"
        " WHERE a.state = %s GROUP BY 1 ORDER BY 2 DESC, 1",
        (failed,),
    ).fetchall()
    return {str(r[0]): int(r[1]) for r in rows}


@dataclass(frozen=True, slots=True)
class OutcomeRow:
    """Where an application ended, with its card on both sides (what `issuance demo` checks)."""

    application_id: str
    application_type: str
    state: str
    reasons: list[str]
    bank_refusals: int
    card_status: str | None  # the card it ordered, or the card of this system it activates
    financial_status: str | None
    production_failures: int
    registry_status: str | None  # a registry card an activation is for (RegistryCardStatus)
    registry_financial_status: str | None


def outcomes(conn: Conn) -> list[OutcomeRow]:
    """Every application with its card's two sides (a NEW_CARD's own card, an activation's card)."""
    with conn.cursor(row_factory=class_row(OutcomeRow)) as cur:
        return cur.execute(
            "SELECT a.application_id, a.application_type, a.state, a.reasons, a.bank_refusals,"
            " coalesce(own.status, ours.status) AS card_status,"
            " coalesce(own_account.status, ours_account.status) AS financial_status,"
            " coalesce(own.production_failures, 0) AS production_failures,"
            " p.status AS registry_status, p.financial_status AS registry_financial_status"
            " FROM applications a"
            " LEFT JOIN cards own ON own.application_id = a.application_id"
            " LEFT JOIN bank_accounts own_account ON own_account.application_id = own.application_id"
            " LEFT JOIN cards ours ON a.card_number IS NOT NULL AND own.application_id IS NULL"
            "  AND ours.card_number = a.card_number"
            " LEFT JOIN bank_accounts ours_account ON ours_account.application_id = ours.application_id"
            " LEFT JOIN person_cards p ON ours.application_id IS NULL AND own.application_id IS NULL"
            "  AND p.card_number = a.card_number"
            " ORDER BY a.application_id"
        ).fetchall()
