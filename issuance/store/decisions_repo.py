"""SQL of the nightly run's final transaction: set-based moves from staging to the system of record.

Every statement here runs inside the one transaction that commits a run, so nothing is visible (and nothing is
allocated) until the whole night is applied; a crashed run leaves no trace here and is simply run again.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, NamedTuple

from psycopg import Connection, sql
from psycopg.rows import TupleRow, class_row

from issuance.domain.lifecycle import (
    OPEN_STATES,
    ApplicationState,
    CardStatus,
    Emit,
    Trigger,
    ends,
    starts,
)
from issuance.domain.model import ApplicationType
from issuance.errors import ReconciliationFailed

Conn = Connection[TupleRow]
_NEW, _ACT = ApplicationType.NEW_CARD, ApplicationType.FINANCIAL_ACTIVATION
_OPEN = sorted(str(s) for s in OPEN_STATES)
NIGHTLY_SOURCE = "nightly"  # card_history.source of the night's steps
# The lifecycle's names the statements below are given (never spelled in SQL).
STATES: dict[str, Any] = {
    "submitted": ApplicationState.SUBMITTED.value,
    "awaiting": ApplicationState.AWAITING_AGREEMENT.value,
    "accepted": ApplicationState.ACCEPTED.value,
    "rejected": ApplicationState.REJECTED.value,
    "cancelled": CardStatus.CANCELLED.value,
    "new_card": _NEW.value,
    "activation": _ACT.value,
}
RESENT_COLUMNS = (
    "run_id",
    "source_topic",
    "source_topic_id",
    "source_partition",
    "source_offset",
    "application_id",
    "branch_code",
    "event_id",
)
DECISION_COLUMNS = ("application_id", "is_new", "from_state", "state", "reasons", "stage", "agreement_id")
FETCH_SIZE = 10_000
# The SQL twin of `issuance.domain.agreement.window_closed` (held to it by
# tests/integration/test_agreement_window_oracle.py): the night's business date is past the last
# Asia/Shanghai day of a window opened at {start}.
WINDOW_CLOSED = "(({start}) AT TIME ZONE 'Asia/Shanghai')::date + {window} < {date}"


def analyze(conn: Conn, *tables: str) -> None:
    """Fresh planner statistics: staging and scratch tables are filled just before they are joined."""
    for table in tables:
        conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))


def create_work_tables(conn: Conn) -> None:
    """The transaction's scratch table of decisions (dropped at its end), and memory for its joins."""
    # A night's joins and sorts are large and run once: let them hash and sort in memory.
    conn.execute("SET LOCAL work_mem = '256MB'")
    conn.execute(
        "CREATE TEMP TABLE run_decisions ("
        " application_id text PRIMARY KEY, is_new boolean NOT NULL, from_state text, state text NOT NULL,"
        " reasons text[] NOT NULL, stage text NOT NULL, agreement_id text) ON COMMIT DROP"
    )


def stream(conn: Conn, query: str, params: Sequence[Any] | dict[str, Any]) -> Iterator[list[tuple[Any, ...]]]:
    """A large result in pages from a server-side cursor (the caller may write between pages), in binary
    format: timestamps arrive as numbers instead of text to parse."""
    with conn.cursor(name="nightly_stream", binary=True) as cur:
        cur.itersize = FETCH_SIZE
        cur.execute(query, params)
        while rows := cur.fetchmany(FETCH_SIZE):
            yield rows


# Repeated application ids
# -------------------------------------------------------------------------------------


class Repeated(NamedTuple):
    """A staged record whose application_id was already submitted, and whether it is the same application."""

    topic: str
    partition: int
    offset: int
    application_id: str
    branch_code: str
    same_content: bool  # the content digest equals the first submission's


def repeated_applications(conn: Conn, run_id: int) -> list[Repeated]:
    """Staged records whose application_id was already submitted (earlier run, or earlier in this run),
    compared by content digest with that first submission (an earlier run's, else this run's first record)."""
    rows = conn.execute(
        "WITH ranked AS ("
        " SELECT source_topic, source_partition, source_offset, application_id, branch_code, content_digest,"
        "  row_number() OVER w AS n, first_value(content_digest) OVER w AS first_digest"
        " FROM staged_applications WHERE run_id = %s"
        " WINDOW w AS (PARTITION BY application_id ORDER BY source_topic, source_partition, source_offset))"
        " SELECT r.source_topic, r.source_partition, r.source_offset, r.application_id, r.branch_code,"
        "  coalesce(r.content_digest = CASE WHEN a.application_id IS NULL THEN r.first_digest"
        "   ELSE a.content_digest END, false)"
        " FROM ranked r LEFT JOIN applications a ON a.application_id = r.application_id"
        " WHERE r.n > 1 OR a.application_id IS NOT NULL"
        " ORDER BY r.source_topic, r.source_partition, r.source_offset",
        (run_id,),
    ).fetchall()
    return [Repeated(str(t), int(p), int(o), str(a), str(b), bool(same)) for t, p, o, a, b, same in rows]


def first_decisions(conn: Conn, application_ids: list[str]) -> dict[str, tuple[str, list[str]]]:
    """Each application's first decision (state and reasons) from its history: where the first run that
    decided it left it (its last step in that run, which the branch was told); its current state and reasons
    if its history holds no decision."""
    rows = conn.execute(
        "SELECT a.application_id, coalesce(h.to_state, a.state), coalesce(h.reasons, a.reasons)"
        " FROM applications a LEFT JOIN LATERAL ("
        "  SELECT to_state, reasons FROM application_history h"
        "  WHERE h.application_id = a.application_id AND h.run_id = ("
        "   SELECT first.run_id FROM application_history first"
        "   WHERE first.application_id = a.application_id AND first.stage <> 'read'"
        "   AND first.run_id IS NOT NULL ORDER BY first.id LIMIT 1)"
        "  ORDER BY h.id DESC LIMIT 1) h ON true"
        " WHERE a.application_id = ANY(%s)",
        (application_ids,),
    ).fetchall()
    return {str(app): (str(state), list(reasons)) for app, state, reasons in rows}


def drop_staged_application(conn: Conn, run_id: int, topic: str, partition: int, offset: int) -> None:
    conn.execute(
        "DELETE FROM staged_applications WHERE run_id = %s AND source_topic = %s AND source_partition = %s"
        " AND source_offset = %s",
        (run_id, topic, partition, offset),
    )


# Agreements
# ---------------------------------------------------------------------------------------------------


def stage_new_agreements(conn: Conn, run_id: int) -> int:
    """The run's agreements not kept before (a re-sent agreement id once), in a scratch table until the
    decisions settle their status; returns how many are new."""
    cur = conn.execute(
        "CREATE TEMP TABLE run_agreements ON COMMIT DROP AS"
        " SELECT DISTINCT ON (agreement_id) agreement_id, application_id, bank_code, terms_version,"
        "  document_sha256, signed_at, channel, source_topic, source_partition, source_offset"
        " FROM staged_agreements s WHERE run_id = %s"
        "  AND NOT EXISTS (SELECT 1 FROM agreements g WHERE g.agreement_id = s.agreement_id)"
        " ORDER BY agreement_id, source_topic, source_partition, source_offset",
        (run_id,),
    )
    conn.execute("CREATE INDEX ON run_agreements (application_id)")
    return cur.rowcount


def settle_agreements(conn: Conn, run_id: int, business_date: date, window_days: int) -> None:
    """After the decisions: the run's new agreements are kept with their settled status, and earlier pending
    ones leave PENDING once examined. An agreement is MATCHED by its application's decision (INVALID when the
    agreement step rejected it) or because its application is known; one whose application is still unknown
    expires once the night is past the last Asia/Shanghai day of the `window_days` after signing."""
    conn.execute(
        "INSERT INTO agreements (agreement_id, application_id, bank_code, terms_version, document_sha256,"
        " signed_at, channel, status, received_run_id, source_topic, source_partition, source_offset)"
        " SELECT r.agreement_id, r.application_id, r.bank_code, r.terms_version, r.document_sha256,"
        "  r.signed_at, r.channel, CASE"
        "   WHEN d.application_id IS NOT NULL AND r.agreement_id IS DISTINCT FROM d.agreement_id"
        "    AND d.stage = 'agreement' AND d.state = %(rejected)s THEN 'INVALID'"
        "   WHEN d.application_id IS NOT NULL THEN 'MATCHED'"
        "   WHEN EXISTS (SELECT 1 FROM applications a WHERE a.application_id = r.application_id)"
        "    THEN 'MATCHED'"
        "   WHEN "
        + WINDOW_CLOSED.format(start="r.signed_at", window="%(window)s", date="%(date)s")
        + " THEN 'EXPIRED'"
        "   ELSE 'PENDING' END,"
        "  %(run)s, r.source_topic, r.source_partition, r.source_offset"
        " FROM run_agreements r LEFT JOIN run_decisions d ON d.application_id = r.application_id",
        {"run": run_id, "window": window_days, "date": business_date, "rejected": STATES["rejected"]},
    )
    conn.execute(
        "UPDATE agreements g SET status = CASE"
        "  WHEN g.agreement_id = d.agreement_id THEN 'MATCHED'"
        "  WHEN d.stage = 'agreement' AND d.state = %s THEN 'INVALID'"
        "  ELSE 'MATCHED' END"
        " FROM run_decisions d WHERE g.application_id = d.application_id AND g.status = 'PENDING'",
        (STATES["rejected"],),
    )
    # The application is known (and decided earlier): nothing waits for this agreement any more.
    conn.execute(
        "UPDATE agreements g SET status = 'MATCHED' WHERE g.status = 'PENDING'"
        " AND EXISTS (SELECT 1 FROM applications a WHERE a.application_id = g.application_id)"
    )
    conn.execute(
        "UPDATE agreements SET status = 'EXPIRED' WHERE status = 'PENDING' AND "
        + WINDOW_CLOSED.format(start="signed_at", window="%s", date="%s"),
        (window_days, business_date),
    )


# Decisions
# ----------------------------------------------------------------------------------------------------


def decide_verification_rejects(conn: Conn, run_id: int) -> None:
    conn.execute(
        "INSERT INTO run_decisions (application_id, is_new, from_state, state, reasons, stage)"
        " SELECT application_id, true, %s, %s, reasons, 'verify'"
        " FROM staged_applications WHERE run_id = %s AND reasons <> '{}'",
        (STATES["submitted"], STATES["rejected"], run_id),
    )


CONTESTED_QUERY = """
WITH passed AS (
    SELECT application_id, person_key, submitted_at, submitted_utc_offset
    FROM staged_applications WHERE run_id = %(run)s AND reasons = '{}'
), contested AS (
    SELECT person_key FROM passed GROUP BY person_key HAVING count(*) > 1
    UNION
    SELECT p.person_key FROM passed p JOIN applications a ON a.person_key = p.person_key AND a.is_open
)
SELECT p.person_key, p.application_id, p.submitted_at, p.submitted_utc_offset,
       EXISTS (SELECT 1 FROM applications a WHERE a.person_key = p.person_key AND a.is_open)
FROM passed p JOIN contested c USING (person_key)
ORDER BY p.person_key, p.application_id
"""


class Contested(NamedTuple):
    """An application of the run whose person has another application (in the run, or open earlier)."""

    person_key: bytes
    application_id: str
    submitted_at: datetime
    submitted_utc_offset: int
    open_elsewhere: bool  # the person has an open application from an earlier run


def contested(conn: Conn, run_id: int) -> list[Contested]:
    """The run's verified applications whose person has another one, by person then application id."""
    rows = conn.execute(CONTESTED_QUERY, {"run": run_id}).fetchall()
    return [
        Contested(bytes(key), str(app), at, int(offset), bool(open_)) for key, app, at, offset, open_ in rows
    ]


class AgreementCandidate(NamedTuple):
    """An application the agreement join decides, once per agreement that may be its (None: none)."""

    application_id: str
    is_new: bool
    application_type: str
    bank_code: str
    submitted_at: datetime
    submitted_utc_offset: int
    agreement_id: str | None
    agreement_bank_code: str | None
    terms_version: str | None
    document_sha256: str | None
    signed_at: datetime | None
    channel: str | None


CANDIDATES_QUERY = """
WITH candidates AS (
    SELECT s.application_id, true AS is_new, s.application_type, s.bank_code, s.submitted_at,
           s.submitted_utc_offset
    FROM staged_applications s
    WHERE s.run_id = %(run)s AND s.reasons = '{}'
      AND NOT EXISTS (SELECT 1 FROM run_decisions d WHERE d.application_id = s.application_id)
    UNION ALL
    SELECT a.application_id, false, a.application_type, a.bank_code, a.submitted_at,
           coalesce(a.submitted_utc_offset, 0)
    FROM applications a WHERE a.state = %(awaiting)s
)
SELECT c.application_id, c.is_new, c.application_type, c.bank_code, c.submitted_at, c.submitted_utc_offset,
       g.agreement_id, g.bank_code, g.terms_version, g.document_sha256, g.signed_at, g.channel
FROM candidates c
LEFT JOIN (
    SELECT agreement_id, application_id, bank_code, terms_version, document_sha256, signed_at, channel
    FROM agreements WHERE status = 'PENDING'
    UNION ALL
    SELECT agreement_id, application_id, bank_code, terms_version, document_sha256, signed_at, channel
    FROM run_agreements
) g ON g.application_id = c.application_id
ORDER BY c.application_id, g.agreement_id
"""


def candidate_pages(conn: Conn, query: str, params: dict[str, Any]) -> Iterator[list[AgreementCandidate]]:
    """A candidates query's rows (ordered by application id) in pages from a server-side cursor; one
    application's rows never span two pages, so a page holds every agreement that may be its candidates'."""
    carry: list[AgreementCandidate] = []
    for page in stream(conn, query, params):
        rows = carry + [AgreementCandidate._make(row) for row in page]
        last_id = rows[-1].application_id
        cut = len(rows)
        while cut > 0 and rows[cut - 1].application_id == last_id:
            cut -= 1
        yield rows[:cut]
        carry = rows[cut:]
    if carry:
        yield carry


# Re-examinations and retries see the reference data as it stands tonight (Article 5 on every decision). Only
# the few applications accepted on a late agreement and the refused requests due again (`retry_due`) are read;
# the same rule as on their first night (`issuance.domain.verification`) decides again.
_RECHECK_QUERY = """
WITH rechecked AS (
    SELECT d.application_id, d.agreement_id, d.from_state FROM run_decisions d
    WHERE NOT d.is_new AND d.state = %(accepted)s
    UNION ALL
    SELECT a.application_id, a.agreement_id, a.state FROM applications a
    WHERE a.retry_due AND a.state = ANY(%(retry_from)s)
)
SELECT r.from_state, r.agreement_id, a.application_id, a.application_type, a.branch_code, a.bank_code,
       a.channel, a.person_key, a.id_number_enc, a.name_enc, a.phone_enc, a.guardian_id_enc, a.card_number,
       a.materials, a.submitted_at, coalesce(a.submitted_utc_offset, 0) AS submitted_utc_offset,
       EXISTS (SELECT 1 FROM person_cards p WHERE p.card_number = a.card_number) AS card_registered,
       EXISTS (SELECT 1 FROM cards c WHERE c.person_key = a.person_key AND c.status <> %(cancelled)s
               AND c.application_id <> a.application_id) AS issued_card_holder
FROM rechecked r JOIN applications a USING (application_id)
ORDER BY a.application_id
"""
# A request due again starts from the same application state for either type (held by a unit test).
_RETRY_FROM = starts(Trigger.REQUESTED_AGAIN, _NEW, "application")


@dataclass(frozen=True, slots=True)
class Rechecked:
    """An earlier application about to lead to a bank request tonight, as stored (personal data sealed)."""

    from_state: str  # AWAITING_AGREEMENT (accepted on a late agreement) or ACCEPTED (a request due again)
    agreement_id: str | None
    application_id: str
    application_type: str
    branch_code: str
    bank_code: str
    channel: str
    person_key: bytes
    id_number_enc: bytes
    name_enc: bytes
    phone_enc: bytes | None
    guardian_id_enc: bytes | None
    card_number: str | None
    materials: list[str]
    submitted_at: datetime
    submitted_utc_offset: int
    card_registered: bool
    issued_card_holder: bool  # the person holds another card this system issued (not cancelled)


def rechecked(conn: Conn) -> list[Rechecked]:
    """The applications accepted tonight on a late agreement and the refused requests due again."""
    with conn.cursor(row_factory=class_row(Rechecked)) as cur:
        return cur.execute(
            _RECHECK_QUERY,
            {"retry_from": _RETRY_FROM, "accepted": STATES["accepted"], "cancelled": STATES["cancelled"]},
        ).fetchall()


def reject_rechecked(conn: Conn, rejections: Sequence[tuple[str, str, str | None, list[str]]]) -> None:
    """Applications that no longer pass verification: (application id, from state, agreement id, reasons).

    A re-examined one's acceptance becomes a rejection; a request due again gets a decision of its own
    (RECHECK_REJECTED: it is not requested again)."""
    conn.execute(
        "CREATE TEMP TABLE run_rechecked (application_id text PRIMARY KEY, from_state text NOT NULL,"
        " agreement_id text, reasons text[] NOT NULL) ON COMMIT DROP"
    )
    with (
        conn.cursor() as cur,
        cur.copy("COPY run_rechecked (application_id, from_state, agreement_id, reasons) FROM STDIN") as copy,
    ):
        for row in rejections:
            copy.write_row(row)
    conn.execute(
        "UPDATE run_decisions d SET state = %s, reasons = r.reasons, stage = 'verify'"
        " FROM run_rechecked r WHERE d.application_id = r.application_id AND NOT d.is_new",
        (STATES["rejected"],),
    )
    conn.execute(
        "INSERT INTO run_decisions (application_id, is_new, from_state, state, reasons, stage, agreement_id)"
        " SELECT application_id, false, from_state, %s, reasons, 'verify', agreement_id"
        " FROM run_rechecked WHERE from_state = ANY(%s)",
        (ends(Trigger.RECHECK_REJECTED, _NEW, "application"), _RETRY_FROM),
    )


class Withdrawn(NamedTuple):
    """What a re-check rejection of requests due again withdrew."""

    cards: int  # cancelled (ORDERED -> CANCELLED)
    accounts: int  # account requests withdrawn (the bank_accounts row removed: financial side NONE)


def withdraw_rechecked(conn: Conn, run_id: int) -> Withdrawn:
    """RECHECK_REJECTED of a new card: its ordered card is cancelled and its account request withdrawn.

    The financial side goes back to NONE, which is no `bank_accounts` row: the bank never opened the account
    (it refused the request being retried), so the row is deleted; `card_history` keeps both steps."""
    row = conn.execute(
        "WITH rejected AS MATERIALIZED ("
        " SELECT application_id FROM run_decisions WHERE from_state = ANY(%(from)s) AND state = %(to)s"
        "), ordered AS MATERIALIZED ("
        " SELECT c.application_id, c.status FROM cards c JOIN rejected USING (application_id)"
        " WHERE c.status = ANY(%(card_from)s)"
        "), cancelled AS ("
        " UPDATE cards c SET status = %(card_to)s, updated_at = now() FROM ordered o"
        " WHERE c.application_id = o.application_id RETURNING c.application_id"
        "), withdrawn AS ("
        " DELETE FROM bank_accounts b USING rejected r"
        " WHERE b.application_id = r.application_id AND b.status = ANY(%(financial_from)s)"
        " RETURNING b.application_id, b.status"
        "), history AS ("
        " INSERT INTO card_history (application_id, side, from_status, to_status, source, run_id, detail)"
        " SELECT application_id, 'card', status, %(card_to)s, %(source)s, %(run)s, 're-check rejected'"
        " FROM ordered"
        " UNION ALL"
        " SELECT application_id, 'financial', status, %(financial_to)s, %(source)s, %(run)s,"
        "  'account request withdrawn'"
        " FROM withdrawn"
        " RETURNING 1"
        ")"
        " SELECT (SELECT count(*) FROM cancelled), (SELECT count(*) FROM withdrawn),"
        "  (SELECT count(*) FROM history)",
        {
            "from": _RETRY_FROM,
            "to": ends(Trigger.RECHECK_REJECTED, _NEW, "application"),
            "card_from": starts(Trigger.RECHECK_REJECTED, _NEW, "card"),
            "card_to": ends(Trigger.RECHECK_REJECTED, _NEW, "card"),
            "financial_from": starts(Trigger.RECHECK_REJECTED, _NEW, "financial"),
            "financial_to": ends(Trigger.RECHECK_REJECTED, _NEW, "financial"),
            "source": NIGHTLY_SOURCE,
            "run": run_id,
        },
    ).fetchone()
    assert row is not None
    return Withdrawn(int(row[0]), int(row[1]))


def apply_decisions(conn: Conn, run_id: int) -> None:
    """New applications inserted with their decided state; re-examined ones updated; history of each step.

    Every decision must reach its application (the history, cards and accounts written from the decisions have
    no per-row foreign key, migration 0008): a shortfall fails the run."""
    expected = conn.execute(
        "SELECT count(*) FILTER (WHERE is_new), count(*) FILTER (WHERE NOT is_new) FROM run_decisions"
    ).fetchone()
    assert expected is not None
    inserted = conn.execute(
        "INSERT INTO applications (application_id, application_type, branch_code, bank_code, channel,"
        " person_key, id_number_enc, name_enc, phone_enc, guardian_id_enc, card_number, materials,"
        " submitted_at, submitted_utc_offset, area_code, state, reasons, is_open, agreement_id,"
        " first_run_id, last_run_id, source_topic, source_partition, source_offset, slot, content_digest)"
        " SELECT s.application_id, s.application_type, s.branch_code, s.bank_code, s.channel, s.person_key,"
        "  s.id_number_enc, s.name_enc, s.phone_enc, s.guardian_id_enc, s.card_number, s.materials,"
        "  s.submitted_at, s.submitted_utc_offset, s.area_code, d.state, d.reasons,"
        "  d.state = ANY(%(open)s), d.agreement_id, %(run)s, %(run)s, s.source_topic, s.source_partition,"
        "  s.source_offset, s.slot, s.content_digest"
        " FROM staged_applications s JOIN run_decisions d ON d.application_id = s.application_id AND d.is_new"
        " WHERE s.run_id = %(run)s",
        {"run": run_id, "open": _OPEN},
    ).rowcount
    # A re-examined application is decided now (no request of it is due again any more).
    updated = conn.execute(
        "UPDATE applications a SET state = d.state, reasons = d.reasons, is_open = d.state = ANY(%(open)s),"
        " agreement_id = d.agreement_id, retry_due = false, last_run_id = %(run)s, version = a.version + 1,"
        " updated_at = now()"
        " FROM run_decisions d WHERE NOT d.is_new AND a.application_id = d.application_id",
        {"run": run_id, "open": _OPEN},
    ).rowcount
    if (inserted, updated) != tuple(expected):
        raise ReconciliationFailed(
            f"run {run_id}: {expected[0]} new and {expected[1]} re-examined decisions, but {inserted}"
            f" applications inserted and {updated} updated"
        )


# No ON CONFLICT in the history: every row is new to this run's one transaction (a conflict would be a bug
# and fails the run loudly), and speculative insertion costs an extra index probe per row.


def record_reads(conn: Conn, run_id: int) -> None:
    """The first history row of every application the run read (each gets a decision of the run): the staged
    applications that remain once repeated ids are dead letters. Needs no decision, so it is written while the
    agreement join decides."""
    conn.execute(
        "INSERT INTO application_history (application_id, from_state, to_state, stage, reasons, run_id)"
        " SELECT application_id, NULL, %s, 'read', '{}', run_id FROM staged_applications"
        " WHERE run_id = %s",
        (STATES["submitted"], run_id),
    )


def record_history(conn: Conn, run_id: int) -> None:
    """The history of every decision after the read: one step to the decided state."""
    conn.execute(
        "INSERT INTO application_history (application_id, from_state, to_state, stage, reasons, run_id)"
        " SELECT d.application_id, d.from_state, d.state, d.stage, d.reasons, %s FROM run_decisions d",
        (run_id,),
    )


# Acceptance
# ---------------------------------------------------------------------------------------------------


class Accepted(NamedTuple):
    """What the acceptances of a run wrote."""

    cards: int  # ORDERED, numbers NULL
    accounts: int  # REQUESTED, no number
    account_openings: int  # first requests from the helper's staged_personalized (applications read tonight)
    activations: int


def insert_accepted(conn: Conn, run_id: int, topics: Mapping[str, str]) -> Accepted:
    """The lifecycle's ACCEPTED of the run's decisions: for a new card, its card ORDERED and its account
    REQUESTED (no number: the bank assigns it, a later night numbers the card), with their `card_history`;
    for the applications this run read, their first request as the helper prepared it
    (`pipelines.personalize_staged`). An activation gets no row of its own: it names an existing card. An
    accepted application read tonight without a request for the agreement it was accepted on (or whose bank
    has no topic) breaks a NOT NULL: the run fails. Re-examined applications' requests are written by the
    caller.

    One statement: the accepted applications are read once, and the inserts read that result."""
    card_to = ends(Trigger.ACCEPTED, _NEW, "card")
    financial_to = ends(Trigger.ACCEPTED, _NEW, "financial")
    row = conn.execute(
        "WITH accepted AS MATERIALIZED ("
        " SELECT s.application_id, s.application_type, s.person_key, s.area_code, s.bank_code, s.branch_code,"
        "  true AS is_new, d.agreement_id"
        " FROM run_decisions d JOIN staged_applications s"
        "  ON s.run_id = %(run)s AND s.application_id = d.application_id"
        " WHERE d.is_new AND d.state = %(accepted)s"
        " UNION ALL"
        " SELECT a.application_id, a.application_type, a.person_key, a.area_code, a.bank_code, a.branch_code,"
        "  false, d.agreement_id"
        " FROM run_decisions d JOIN applications a USING (application_id)"
        " WHERE NOT d.is_new AND d.state = %(accepted)s"
        "), ordered AS ("
        " INSERT INTO cards (application_id, person_key, area_code, bank_code, branch_code, status, run_id)"
        " SELECT application_id, person_key, area_code, bank_code, branch_code, %(card_to)s, %(run)s"
        " FROM accepted WHERE application_type = %(new_card)s"
        " RETURNING application_id"
        "), requested AS ("
        " INSERT INTO bank_accounts (application_id, bank_code, status, run_id)"
        " SELECT application_id, bank_code, %(financial_to)s, %(run)s"
        " FROM accepted WHERE application_type = %(new_card)s"
        " RETURNING application_id"
        "), history AS ("
        " INSERT INTO card_history (application_id, side, from_status, to_status, source, run_id)"
        " SELECT application_id, 'card', NULL, %(card_to)s, %(source)s, %(run)s FROM ordered"
        " UNION ALL"
        " SELECT application_id, 'financial', %(financial_from)s, %(financial_to)s, %(source)s, %(run)s"
        " FROM requested"
        "), requests AS ("
        " INSERT INTO outbox (event_id, topic, message_key, payload, event_type, run_id, payload_encrypted,"
        "  recipient)"
        " SELECT p.request_event_id, t.topic, convert_to(c.application_id, 'UTF8'), p.request_payload,"
        "  p.request_type, %(run)s, p.request_sealed, 'bank:' || c.bank_code"
        " FROM accepted c"
        " LEFT JOIN staged_personalized p ON p.run_id = %(run)s AND p.application_id = c.application_id"
        "  AND p.agreement_id IS NOT DISTINCT FROM c.agreement_id"
        " LEFT JOIN unnest(%(banks)s::text[], %(topics)s::text[]) AS t(bank, topic) ON t.bank = c.bank_code"
        " WHERE c.is_new"
        " RETURNING event_type"
        ")"
        " SELECT (SELECT count(*) FROM ordered), (SELECT count(*) FROM requested),"
        "  (SELECT count(*) FROM requests WHERE event_type = %(opening)s),"
        "  (SELECT count(*) FROM requests WHERE event_type <> %(opening)s)",
        {
            **STATES,
            "run": run_id,
            "card_to": card_to,
            "financial_from": starts(Trigger.ACCEPTED, _NEW, "financial")[0],
            "financial_to": financial_to,
            "source": NIGHTLY_SOURCE,
            "opening": Emit.ACCOUNT_OPENING_REQUEST.value,
            "banks": list(topics),
            "topics": list(topics.values()),
        },
    ).fetchone()
    assert row is not None
    return Accepted(int(row[0]), int(row[1]), int(row[2]), int(row[3]))


# The bank account an activation switches on: one the bank opened for the card (the lifecycle's start of
# an activation, accepted or asked again).
CARD_ACCOUNT = starts(Trigger.ACCEPTED, _ACT, "financial")


@dataclass(frozen=True, slots=True)
class Requesting:
    """An accepted application whose bank request tonight's transaction builds: accepted on a late agreement
    (attempt 1) or due again after a refusal (attempt = refusals + 1). Personal data sealed."""

    application_id: str
    application_type: str
    bank_code: str
    branch_code: str
    area_code: str | None
    card_number: str | None  # an activation's card
    id_number_enc: bytes
    name_enc: bytes
    account_number_enc: bytes | None  # an activation of a card this system issued: the bank's number
    bank_refusals: int
    agreement_id: str | None
    terms_version: str | None
    document_sha256: str | None


_REQUESTING = """
SELECT a.application_id, a.application_type, a.bank_code, a.branch_code, a.area_code, a.card_number,
       a.id_number_enc, a.name_enc, b.account_number_enc, a.bank_refusals, g.agreement_id, g.terms_version,
       g.document_sha256
FROM applications a
LEFT JOIN agreements g ON g.agreement_id = a.agreement_id
LEFT JOIN bank_accounts b ON a.application_type = %(activation)s AND b.card_number = a.card_number
    AND b.status = ANY(%(card_account)s)
"""


def reexamined_accepted(conn: Conn, after: str, limit: int) -> list[Requesting]:
    """A keyset page of the applications accepted tonight on a late agreement (their agreement was kept by
    `settle_agreements` before)."""
    with conn.cursor(row_factory=class_row(Requesting)) as cur:
        return cur.execute(
            _REQUESTING + " JOIN run_decisions d ON d.application_id = a.application_id"
            " WHERE NOT d.is_new AND d.state = %(accepted)s AND d.application_id > %(after)s"
            "  AND a.application_id > %(after)s"  # both sides start at the page: no rescan from the first row
            " ORDER BY a.application_id LIMIT %(limit)s",
            {**STATES, "card_account": CARD_ACCOUNT, "after": after, "limit": limit},
        ).fetchall()


def due_again(conn: Conn) -> list[Requesting]:
    """The requests due again tonight (REQUESTED_AGAIN): accepted, refused with attempts left, and for a new
    card still ordered with its account requested; those a re-check rejected tonight left ACCEPTED already."""
    with conn.cursor(row_factory=class_row(Requesting)) as cur:
        return cur.execute(
            _REQUESTING + " LEFT JOIN cards c ON c.application_id = a.application_id"
            " LEFT JOIN bank_accounts r ON r.application_id = a.application_id"
            " WHERE a.retry_due AND a.state = ANY(%(from)s)"
            "  AND (a.application_type = %(activation)s"
            "   OR (c.status = ANY(%(card_from)s) AND r.status = ANY(%(financial_from)s)))"
            " ORDER BY a.application_id FOR UPDATE OF a",
            {
                **STATES,
                "card_account": CARD_ACCOUNT,
                "from": _RETRY_FROM,
                "card_from": starts(Trigger.REQUESTED_AGAIN, _NEW, "card"),
                "financial_from": starts(Trigger.REQUESTED_AGAIN, _NEW, "financial"),
            },
        ).fetchall()


def mark_requested_again(
    conn: Conn, run_id: int, application_ids: Sequence[str], event_ids: Sequence[str]
) -> None:
    """REQUESTED_AGAIN: the requests are due no more (the bank is asked again); a step in each history."""
    if not application_ids:
        return
    conn.execute(
        "UPDATE applications SET retry_due = false, last_run_id = %s, version = version + 1,"
        " updated_at = now() WHERE application_id = ANY(%s)",
        (run_id, list(application_ids)),
    )
    conn.execute(
        "INSERT INTO application_history (application_id, from_state, to_state, stage, run_id,"
        " event_id, detail)"
        " SELECT app, %s, %s, 'bank', %s, ev, 'requested again'"
        " FROM unnest(%s::text[], %s::text[]) AS t(app, ev)",
        (STATES["accepted"], STATES["accepted"], run_id, list(application_ids), list(event_ids)),
    )
    # The account of a new card is asked for again: its side stays where it is (a step of its history).
    conn.execute(
        "INSERT INTO card_history (application_id, side, from_status, to_status, source, run_id, event_id,"
        " detail)"
        " SELECT t.app, 'financial', b.status, b.status, %s, %s, t.ev, 'requested again'"
        " FROM unnest(%s::text[], %s::text[]) AS t(app, ev) JOIN bank_accounts b ON b.application_id = t.app"
        " WHERE b.status = ANY(%s)",
        (
            NIGHTLY_SOURCE,
            run_id,
            list(application_ids),
            list(event_ids),
            starts(Trigger.REQUESTED_AGAIN, _NEW, "financial"),
        ),
    )


# Events and dead letters
# --------------------------------------------------------------------------------------

DECISIONS_QUERY = """
SELECT d.application_id, a.branch_code, d.state, d.reasons
FROM run_decisions d JOIN applications a USING (application_id)
ORDER BY d.application_id
"""


def insert_dead_letters(conn: Conn, run_id: int, topic_ids: Mapping[str, str]) -> list[tuple[Any, ...]]:
    """The run's dead letters into the table (once per source position: topic, the topic id the night planned
    with from `topic_ids`, partition, offset); returns the new ones."""
    topics = sorted(topic_ids)
    rows = conn.execute(
        "INSERT INTO dead_letters (source_topic, source_topic_id, source_partition, source_offset, stage,"
        " reason, detail, payload_enc, branch_code, run_id, headers_enc)"
        " SELECT s.source_topic, coalesce(t.topic_id, ''), s.source_partition, s.source_offset, s.stage,"
        " s.reason, s.detail, s.payload_enc, s.branch_code, s.run_id, s.headers_enc"
        " FROM staged_dead_letters s"
        " LEFT JOIN unnest(%s::text[], %s::text[]) AS t (topic, topic_id) ON t.topic = s.source_topic"
        " WHERE s.run_id = %s"
        " ON CONFLICT (source_topic, source_topic_id, source_partition, source_offset) DO NOTHING"
        " RETURNING source_topic, source_topic_id, source_partition, source_offset, stage, reason, detail,"
        " payload_enc, headers_enc",
        (topics, [topic_ids[t] for t in topics], run_id),
    ).fetchall()
    return list(rows)


OUTBOX_COLUMNS = (
    "event_id",
    "topic",
    "message_key",
    "payload",
    "event_type",
    "run_id",
    "payload_encrypted",
    "recipient",  # the party the event is for, as text ("bank:ICBC"): the relay signs to it
)


def as_datetime(value: Any) -> datetime:
    assert isinstance(value, datetime)
    return value
