"""The bureau's reads and writes of a card's social-security side as its partners move it: the vendor's return
file (produced, failed) and the branches' events (received, collected). Every state name is a parameter from
`issuance.domain.lifecycle`; the callers decide each move with `lifecycle.step` on the rows read here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from psycopg import Connection
from psycopg.rows import TupleRow, class_row

from issuance.domain.lifecycle import (
    ApplicationState,
    CardStatus,
    FinancialStatus,
    Lifecycle,
)
from issuance.domain.model import ApplicationType, RegistryCardStatus, RegistryFinancialStatus
from issuance.domain.vendor_return import CardInProduction, VendorFile

Conn = Connection[TupleRow]


@dataclass(frozen=True, slots=True)
class CardRow:
    """A card with its application and account, locked for the transaction."""

    application_id: str
    card_number: str
    status: str
    branch_code: str | None
    bank_code: str
    person_key: bytes
    vendor_code: str | None
    production_run_id: int | None
    production_failures: int
    application_type: str
    state: str
    retry_due: bool
    application_branch: str
    financial: str

    def lifecycle(self) -> Lifecycle:
        """The snapshot `lifecycle.step` decides on."""
        return Lifecycle(
            application_type=ApplicationType(self.application_type),
            state=ApplicationState(self.state),
            card=CardStatus(self.status),
            financial=FinancialStatus(self.financial),
            retry_due=self.retry_due,
        )

    def in_production(self) -> CardInProduction:
        """What the return-file checks need of it."""
        return CardInProduction(
            self.card_number, CardStatus(self.status), self.production_run_id, self.vendor_code
        )

    @property
    def dispatch_branch(self) -> str:
        """Where the card goes: its own branch (the application's when the card row has none)."""
        return self.branch_code or self.application_branch


@dataclass(frozen=True, slots=True)
class HistoryStep:
    """One step of a card's side for `card_history`."""

    application_id: str
    side: str  # card or financial
    from_status: str | None
    to_status: str
    source: str  # vendor:<code>, branch:<code>
    event_id: str | None = None
    run_id: int | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class ApplicationClosed:
    """An application leaving its open state because of its card (completed or failed)."""

    application_id: str
    from_state: str
    to_state: str
    stage: str
    event_id: str | None
    detail: str


@dataclass(frozen=True, slots=True)
class Received:
    """A return file as recorded (`vendor_returns`)."""

    sha256: str
    run_id: int
    vendor_code: str
    produced: int
    failed: int
    refused_lines: int
    received_by: str
    received_at: datetime


def lock_file(conn: Conn, sha256: str) -> None:
    """Serialize receipts of the same file until the transaction ends (applied once, even concurrently)."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('vendor-return'), hashtext(%s))", (sha256,))


def received(conn: Conn, sha256: str) -> Received | None:
    """The earlier receipt of this file, if any."""
    with conn.cursor(row_factory=class_row(Received)) as cur:
        return cur.execute(
            "SELECT sha256, run_id, vendor_code, produced, failed, refused_lines, received_by, received_at"
            " FROM vendor_returns WHERE sha256 = %s",
            (sha256,),
        ).fetchone()


def record_received(conn: Conn, receipt: Received) -> None:
    """Record a return file as applied (with what it did)."""
    conn.execute(
        "INSERT INTO vendor_returns (sha256, run_id, vendor_code, produced, failed, refused_lines,"
        " received_by, received_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (
            receipt.sha256,
            receipt.run_id,
            receipt.vendor_code,
            receipt.produced,
            receipt.failed,
            receipt.refused_lines,
            receipt.received_by,
            receipt.received_at,
        ),
    )


def vendor_file(conn: Conn, run_id: int, vendor_code: str) -> VendorFile | None:
    """The vendor file the bureau wrote for a run and vendor."""
    with conn.cursor(row_factory=class_row(VendorFile)) as cur:
        return cur.execute(
            "SELECT run_id, vendor_code, sha256, record_count FROM vendor_files"
            " WHERE run_id = %s AND vendor_code = %s",
            (run_id, vendor_code),
        ).fetchone()


def vendor_files(conn: Conn, run_id: int | None) -> list[VendorFile]:
    """The vendor files of a run, or (None) every one not answered by a received return file yet."""
    with conn.cursor(row_factory=class_row(VendorFile)) as cur:
        if run_id is not None:
            return cur.execute(
                "SELECT run_id, vendor_code, sha256, record_count FROM vendor_files WHERE run_id = %s"
                " ORDER BY vendor_code",
                (run_id,),
            ).fetchall()
        return cur.execute(
            "SELECT f.run_id, f.vendor_code, f.sha256, f.record_count FROM vendor_files f"
            " WHERE NOT EXISTS (SELECT 1 FROM vendor_returns r"
            "   WHERE r.run_id = f.run_id AND r.vendor_code = f.vendor_code)"
            " ORDER BY f.run_id, f.vendor_code"
        ).fetchall()


def lock_cards(conn: Conn, card_numbers: Sequence[str]) -> dict[str, CardRow]:
    """The cards with these numbers, with their applications, locked in a stable order."""
    if not card_numbers:
        return {}
    with conn.cursor(row_factory=class_row(CardRow)) as cur:
        rows = cur.execute(
            "SELECT c.application_id, c.card_number, c.status, c.branch_code, c.bank_code, c.person_key,"
            " c.vendor_code, c.production_run_id, c.production_failures, a.application_type, a.state,"
            " a.retry_due, a.branch_code AS application_branch,"
            " coalesce(b.status, %(none)s) AS financial"
            " FROM cards c JOIN applications a ON a.application_id = c.application_id"
            " LEFT JOIN bank_accounts b ON b.application_id = c.application_id"
            " WHERE c.card_number = ANY(%(numbers)s)"
            " ORDER BY c.application_id FOR UPDATE OF c, a",
            {"numbers": sorted(set(card_numbers)), "none": FinancialStatus.NONE.value},
        ).fetchall()
    return {row.card_number: row for row in rows}


def still_in_production(conn: Conn, run_id: int, vendor_code: str) -> int:
    """Cards of a vendor file still waiting for the vendor's answer."""
    row = conn.execute(
        "SELECT count(*) FROM cards WHERE production_run_id = %s AND vendor_code = %s AND status = %s",
        (run_id, vendor_code, CardStatus.IN_PRODUCTION.value),
    ).fetchone()
    return int(row[0]) if row else 0


def set_produced(
    conn: Conn, application_id: str, before: CardStatus, after: CardStatus, chip_serial: str, at: datetime
) -> None:
    """The vendor made the card: its chip serial; produced and dispatched to its branch now."""
    conn.execute(
        "UPDATE cards SET status = %(after)s, chip_serial = %(chip)s, produced_at = %(at)s,"
        " dispatched_at = %(at)s, updated_at = %(at)s"
        " WHERE application_id = %(id)s AND status = %(before)s",
        {"after": after.value, "chip": chip_serial, "at": at, "id": application_id, "before": before.value},
    )


def set_production_failed(
    conn: Conn, application_id: str, before: CardStatus, after: CardStatus, at: datetime
) -> None:
    """The vendor could not make the card: counted, and back to ORDERED (or CANCELLED when final)."""
    conn.execute(
        "UPDATE cards SET status = %(after)s, production_failures = production_failures + 1,"
        " updated_at = %(at)s WHERE application_id = %(id)s AND status = %(before)s",
        {"after": after.value, "at": at, "id": application_id, "before": before.value},
    )


def set_received(
    conn: Conn, application_id: str, before: CardStatus, after: CardStatus, at: datetime
) -> None:
    """The branch confirmed the card arrived."""
    conn.execute(
        "UPDATE cards SET status = %(after)s, received_at = %(at)s, updated_at = now()"
        " WHERE application_id = %(id)s AND status = %(before)s",
        {"after": after.value, "at": at, "id": application_id, "before": before.value},
    )


def set_collected(
    conn: Conn, application_id: str, before: CardStatus, after: CardStatus, at: datetime, operator_id: str
) -> None:
    """The holder collected the card; who handed it over."""
    conn.execute(
        "UPDATE cards SET status = %(after)s, collected_at = %(at)s, collected_by = %(by)s,"
        " updated_at = now() WHERE application_id = %(id)s AND status = %(before)s",
        {"after": after.value, "at": at, "by": operator_id, "id": application_id, "before": before.value},
    )


def register_card(conn: Conn, card: CardRow) -> None:
    """The issued card in the person registry: valid, its savings function not yet active (so that the
    holder's FINANCIAL_ACTIVATION of it verifies)."""
    conn.execute(
        "INSERT INTO person_cards (card_number, person_key, bank_code, status, financial_status)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (card_number) DO NOTHING",
        (
            card.card_number,
            card.person_key,
            card.bank_code,
            RegistryCardStatus.VALID.value,
            RegistryFinancialStatus.INACTIVE.value,
        ),
    )


def close_application(conn: Conn, change: ApplicationClosed) -> None:
    """The application's final state (no longer open, nothing due again) and its history line."""
    conn.execute(
        "UPDATE applications SET state = %s, is_open = false, retry_due = false, version = version + 1,"
        " updated_at = now() WHERE application_id = %s AND state = %s",
        (change.to_state, change.application_id, change.from_state),
    )
    conn.execute(
        "INSERT INTO application_history (application_id, from_state, to_state, stage, event_id, detail)"
        " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (
            change.application_id,
            change.from_state,
            change.to_state,
            change.stage,
            change.event_id,
            change.detail,
        ),
    )


def add_history(conn: Conn, steps: Sequence[HistoryStep]) -> None:
    """Append card_history lines (a step already recorded for the same event is left as it is)."""
    if not steps:
        return
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO card_history (application_id, side, from_status, to_status, source, run_id,"
            " event_id, detail) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            [
                (
                    s.application_id,
                    s.side,
                    s.from_status,
                    s.to_status,
                    s.source,
                    s.run_id,
                    s.event_id,
                    s.detail,
                )
                for s in steps
            ],
        )


def claim_card_event(conn: Conn, event_id: str, digest: bytes, record: str, card_number: str) -> bool:
    """Record a branch event as applied; False when it was applied before."""
    row = conn.execute(
        "INSERT INTO card_event_inbox (event_id, digest, record, card_number) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
        (event_id, digest, record, card_number),
    ).fetchone()
    return row is not None


def card_event_digest(conn: Conn, event_id: str) -> bytes | None:
    """The digest of an applied branch event's content, if it was applied."""
    row = conn.execute("SELECT digest FROM card_event_inbox WHERE event_id = %s", (event_id,)).fetchone()
    return None if row is None else bytes(row[0])
