"""Lifecycle test data written straight into PostgreSQL: applications with their card on both sides and the
steps that brought them there, as the night, the bank, the vendor and the branch leave them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from psycopg import Connection
from psycopg.rows import TupleRow

from issuance.crypto import Vault
from issuance.domain import numbers
from issuance.domain.lifecycle import ApplicationState, CardStatus, FinancialStatus
from issuance.settings import Settings
from issuance.store.db import connect
from tests.factories import AREA, BANK, BRANCH, id_number

Conn = Connection[TupleRow]
NOW = datetime.now(UTC)
BIN = "622202"


def seed_bank(conn: Conn, bank_code: str = BANK) -> None:
    """A bank and a branch of it in the reference data."""
    conn.execute(
        "INSERT INTO banks (bank_code, name, bin, terms_version, area_codes)"
        " VALUES (%s, %s, %s, '2026.1', %s) ON CONFLICT DO NOTHING",
        (bank_code, f"bank {bank_code}", BIN, [AREA]),
    )
    conn.execute(
        "INSERT INTO branches (branch_code, bank_code, area_code, name) VALUES (%s, %s, %s, 'branch')"
        " ON CONFLICT DO NOTHING",
        (BRANCH, bank_code, AREA),
    )


@dataclass(frozen=True, slots=True)
class Seeded:
    """One application as written, with the clear values the screens must mask."""

    application_id: str
    id_number: str
    card_number: str | None
    account_number: str | None


def seed_run(conn: Conn, run_id: int = 1, business_date: date = date(2026, 11, 2)) -> int:
    """A finished nightly run."""
    conn.execute(
        "INSERT INTO runs (run_id, business_date, status, plan, records_read, started_at, finished_at)"
        " VALUES (%s, %s, 'SUCCEEDED', '[]', 0, now(), now()) ON CONFLICT DO NOTHING",
        (run_id, business_date),
    )
    return run_id


def seed_application(
    conn: Conn,
    vault: Vault,
    n: int,
    state: ApplicationState,
    *,
    application_type: str = "NEW_CARD",
    branch_code: str = BRANCH,
    bank_code: str = BANK,
    card_number: str | None = None,
    run_id: int | None = None,
) -> str:
    """An application in `state` (its card, if any, is written separately)."""
    seed_bank(conn, bank_code)
    if branch_code != BRANCH:
        conn.execute(
            "INSERT INTO branches (branch_code, bank_code, area_code, name) VALUES (%s, %s, %s, 'branch')"
            " ON CONFLICT DO NOTHING",
            (branch_code, bank_code, AREA),
        )
    app_id = f"APP-{n:06d}"
    ident = id_number(birth=date(1980, 1, 1 + n % 28), sequence=n % 1000)
    conn.execute(
        "INSERT INTO applications (application_id, application_type, branch_code, bank_code, channel,"
        " person_key, id_number_enc, name_enc, materials, submitted_at, area_code, state, is_open,"
        " card_number, first_run_id)"
        " VALUES (%s, %s, %s, %s, 'COUNTER', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            app_id,
            application_type,
            branch_code,
            bank_code,
            vault.blind_index(f"{ident}/{n}"),
            vault.encrypt(ident),
            vault.encrypt("张伟"),
            ["RESIDENT_ID_CARD", "SOCIAL_SECURITY_CARD"],
            NOW - timedelta(days=40),
            AREA,
            state.value,
            state
            in (ApplicationState.SUBMITTED, ApplicationState.AWAITING_AGREEMENT, ApplicationState.ACCEPTED),
            card_number,
            run_id,
        ),
    )
    return app_id


def seed_card(
    conn: Conn,
    vault: Vault,
    n: int,
    card: CardStatus,
    financial: FinancialStatus,
    *,
    state: ApplicationState = ApplicationState.ACCEPTED,
    branch_code: str = BRANCH,
    days_in_status: int = 0,
    run_id: int | None = None,
) -> Seeded:
    """A NEW_CARD application with its card and account, in their statuses since `days_in_status` days."""
    app_id = seed_application(conn, vault, n, state, branch_code=branch_code, run_id=run_id)
    since = NOW - timedelta(days=days_in_status)
    numbered = card not in (CardStatus.ORDERED, CardStatus.CANCELLED)
    card_number = numbers.card_number(n) if numbered else None
    conn.execute(
        "INSERT INTO cards (application_id, card_number, card_identification_code, person_key, area_code,"
        " bank_code, branch_code, sequence, issue_date, valid_until, status, vendor_code, chip_serial,"
        " productions, produced_at, received_at, collected_at, collected_by, updated_at)"
        " VALUES (%(app)s, %(card)s, %(cic)s, %(person)s, %(area)s, %(bank)s, %(branch)s, %(seq)s,"
        " %(issued)s, %(until)s, %(status)s, %(vendor)s, %(chip)s, %(productions)s, %(produced)s,"
        " %(received)s, %(collected)s, %(by)s, %(since)s)",
        {
            "app": app_id,
            "card": card_number,
            "cic": numbers.card_identification_code(AREA, n) if numbered else None,
            "person": vault.blind_index(f"person/{n}"),
            "area": AREA,
            "bank": BANK,
            "branch": branch_code,
            "seq": n if numbered else None,
            "issued": date(2026, 11, 2) if numbered else None,
            "until": date(2036, 11, 2) if numbered else None,
            "status": card.value,
            "vendor": "VENDOR-A" if numbered else None,
            "chip": f"CHIP{n:08d}"
            if card not in (CardStatus.ORDERED, CardStatus.IN_PRODUCTION, CardStatus.CANCELLED)
            else None,
            "productions": 1 if numbered else 0,
            "produced": since if card is CardStatus.PRODUCED else None,
            "received": since if card is CardStatus.AT_BRANCH else None,
            "collected": since if card is CardStatus.ISSUED else None,
            "by": "counter-07" if card is CardStatus.ISSUED else None,
            "since": since,
        },
    )
    account = None
    if financial is not FinancialStatus.NONE:
        opened = financial not in (FinancialStatus.REQUESTED, FinancialStatus.REFUSED)
        account = numbers.bank_account_number(BIN, n) if opened else None
        conn.execute(
            "INSERT INTO bank_accounts (application_id, bank_code, status, account_index, account_number_enc,"
            " card_number, created_at, opened_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (
                app_id,
                BANK,
                financial.value,
                vault.blind_index(account) if account else None,
                vault.encrypt(account) if account else None,
                card_number,
                since,
                since if opened else None,
            ),
        )
    return Seeded(app_id, id_number(birth=date(1980, 1, 1 + n % 28), sequence=n % 1000), card_number, account)


def seed_step(
    conn: Conn,
    application_id: str,
    side: str,
    from_status: str | None,
    to_status: str,
    source: str,
    at: datetime,
    run_id: int | None = None,
) -> None:
    """One step of a card's side in card_history."""
    conn.execute(
        "INSERT INTO card_history (application_id, at, side, from_status, to_status, source, run_id)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (application_id, at, side, from_status, to_status, source, run_id),
    )


def seed_history(
    conn: Conn,
    application_id: str,
    from_state: str | None,
    to_state: str,
    stage: str,
    at: datetime,
    run_id: int | None = None,
) -> None:
    """One step of an application in application_history."""
    conn.execute(
        "INSERT INTO application_history (application_id, at, from_state, to_state, stage, run_id)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (application_id, at, from_state, to_state, stage, run_id),
    )


def scalar(settings: Settings, query: str) -> int:
    """One integer from the test database."""
    assert settings.database_url is not None
    with connect(settings.database_url.get_secret_value(), autocommit=True) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0])
