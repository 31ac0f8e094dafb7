"""The bureau's reads and writes for the banks' answers: the applications they answer with both sides of their
card as typed rows, and each applied step (application, card, account, their histories).

State names are never written here: every value comes from the caller's lifecycle step as a parameter."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from psycopg.rows import class_row

from issuance.store.consumer_repo import Conn


@dataclass(frozen=True, slots=True)
class ApplicationRow:
    """An application a bank's answer is about, locked for the transaction."""

    application_id: str
    application_type: str
    branch_code: str
    bank_code: str
    state: str
    retry_due: bool
    bank_refusals: int
    card_number: str | None  # the card a FINANCIAL_ACTIVATION activates


@dataclass(frozen=True, slots=True)
class OwnCard:
    """A new-card application's own card and account (None: no row)."""

    application_id: str
    card_status: str | None
    account_status: str | None


@dataclass(frozen=True, slots=True)
class ActivatedCard:
    """The card a FINANCIAL_ACTIVATION activates: one this system issued (its card and account rows, under
    its NEW_CARD application), or one from the person registry."""

    card_number: str
    card_application_id: str | None
    card_status: str | None
    account_status: str | None
    registry_status: str | None
    registry_financial: str | None


def lock_applications(conn: Conn, application_ids: Sequence[str]) -> dict[str, ApplicationRow]:
    """The applications these answers are about, locked until the transaction ends (in a stable order)."""
    with conn.cursor(row_factory=class_row(ApplicationRow)) as cur:
        rows = cur.execute(
            "SELECT application_id, application_type, branch_code, bank_code, state, retry_due,"
            " bank_refusals, card_number FROM applications WHERE application_id = ANY(%s)"
            " ORDER BY application_id FOR UPDATE",
            (sorted(set(application_ids)),),
        ).fetchall()
    return {r.application_id: r for r in rows}


def own_cards(conn: Conn, application_ids: Sequence[str]) -> dict[str, OwnCard]:
    """New-card applications' cards and accounts."""
    with conn.cursor(row_factory=class_row(OwnCard)) as cur:
        rows = cur.execute(
            "SELECT a.application_id, c.status AS card_status, b.status AS account_status"
            " FROM unnest(%s::text[]) AS a (application_id)"
            " LEFT JOIN cards c USING (application_id) LEFT JOIN bank_accounts b USING (application_id)",
            (list(application_ids),),
        ).fetchall()
    return {r.application_id: r for r in rows}


def activated_cards(conn: Conn, card_numbers: Sequence[str]) -> dict[str, ActivatedCard]:
    """The cards activations are about, from this system's cards or from the person registry."""
    with conn.cursor(row_factory=class_row(ActivatedCard)) as cur:
        rows = cur.execute(
            "SELECT n.card_number, c.application_id AS card_application_id, c.status AS card_status,"
            " b.status AS account_status, p.status AS registry_status,"
            " p.financial_status AS registry_financial"
            " FROM unnest(%s::text[]) AS n (card_number)"
            " LEFT JOIN cards c ON c.card_number = n.card_number"
            " LEFT JOIN bank_accounts b ON b.application_id = c.application_id"
            " LEFT JOIN person_cards p ON p.card_number = n.card_number",
            (sorted(set(card_numbers)),),
        ).fetchall()
    return {r.card_number: r for r in rows}


def bank_bins(conn: Conn, bank_codes: Sequence[str]) -> dict[str, str]:
    """The BIN of each of these banks (reference data)."""
    rows = conn.execute(
        "SELECT bank_code, bin FROM banks WHERE bank_code = ANY(%s)", (list(bank_codes),)
    ).fetchall()
    return {str(code): str(bin_) for code, bin_ in rows}


def account_owners(conn: Conn, account_indexes: Sequence[bytes]) -> dict[bytes, str]:
    """The applications that already hold accounts with these blind indexes."""
    rows = conn.execute(
        "SELECT account_index, application_id FROM bank_accounts WHERE account_index = ANY(%s)",
        (list(account_indexes),),
    ).fetchall()
    return {bytes(index): str(app) for index, app in rows}


@dataclass(frozen=True, slots=True)
class AppliedStep:
    """What one applied answer changes, as the lifecycle's step decided it (values, never literals)."""

    application_id: str
    event_id: str
    source: str  # bank:<code>
    at: datetime  # when the bank decided
    from_state: str
    to_state: str
    is_open: bool
    retry_due: bool
    bank_refusals: int
    detail: str
    # The application whose card and account rows hold the card's sides (a NEW_CARD its own; an activation of
    # a card this system issued, the card's NEW_CARD application; None for a registry card).
    sides_of: str | None
    card_from: str | None = None
    card_to: str | None = None  # None: the card is not moved
    financial_from: str | None = None
    financial_to: str | None = None  # None: the account is not moved
    account_index: bytes | None = None  # an opened account's number, sealed, with its blind index
    account_number_enc: bytes | None = None
    activated_card: str | None = None  # a card whose registry entry's financial function is now active
    registry_active: str | None = None  # the registry's value for it


def apply_steps(conn: Conn, steps: Sequence[AppliedStep], stage: str) -> None:
    """Write the steps: applications, their history, the cards and accounts moved, and the card history."""
    if not steps:
        return
    with conn.cursor() as cur:
        cur.executemany(
            "UPDATE applications SET state = %(to_state)s, is_open = %(is_open)s, retry_due = %(retry_due)s,"
            " bank_refusals = %(bank_refusals)s, version = version + 1, updated_at = now()"
            " WHERE application_id = %(application_id)s",
            [_params(s) for s in steps],
        )
        cur.executemany(
            "INSERT INTO application_history (application_id, from_state, to_state, stage, event_id, detail)"
            " VALUES (%(application_id)s, %(from_state)s, %(to_state)s, %(stage)s, %(event_id)s, %(detail)s)"
            " ON CONFLICT DO NOTHING",
            [{**_params(s), "stage": stage} for s in steps],
        )
        cards = [s for s in steps if s.card_to is not None and s.sides_of is not None]
        cur.executemany(
            "UPDATE cards SET status = %(card_to)s, updated_at = now()"
            " WHERE application_id = %(sides_of)s AND status = %(card_from)s",
            [_params(s) for s in cards],
        )
        accounts = [s for s in steps if s.financial_to is not None and s.sides_of is not None]
        cur.executemany(
            "UPDATE bank_accounts SET status = %(financial_to)s, updated_at = now(),"
            " account_index = coalesce(%(account_index)s, account_index),"
            " account_number_enc = coalesce(%(account_number_enc)s, account_number_enc),"
            " opened_at = CASE WHEN %(account_index)s::bytea IS NULL THEN opened_at ELSE %(at)s END,"
            " activated_at = CASE WHEN %(activates)s THEN %(at)s ELSE activated_at END"
            " WHERE application_id = %(sides_of)s AND status = %(financial_from)s",
            [{**_params(s), "activates": s.activated_card is not None} for s in accounts],
        )
        history = [
            (s, side, before, after)
            for s in steps
            if s.sides_of is not None
            for side, before, after in (
                ("card", s.card_from, s.card_to),
                ("financial", s.financial_from, s.financial_to),
            )
            if after is not None
        ]
        cur.executemany(
            "INSERT INTO card_history (application_id, at, side, from_status, to_status, source, event_id,"
            " detail) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            [
                (s.sides_of, s.at, side, before, after, s.source, s.event_id, s.detail)
                for s, side, before, after in history
            ],
        )
        registry = [s for s in steps if s.activated_card is not None]
        cur.executemany(
            "UPDATE person_cards SET financial_status = %(registry_active)s, updated_at = now()"
            " WHERE card_number = %(activated_card)s",
            [_params(s) for s in registry],
        )


def _params(step: AppliedStep) -> dict[str, object]:
    return {name: getattr(step, name) for name in AppliedStep.__dataclass_fields__}
