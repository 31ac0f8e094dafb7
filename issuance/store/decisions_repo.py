"""SQL of the nightly run's final transaction: set-based moves from staging to the system of record.

Every statement here runs inside the one transaction that commits a run, so nothing is visible (and nothing is
allocated) until the whole night is applied; a crashed run leaves no trace here and is simply run again.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime
from typing import Any, NamedTuple

from psycopg import Connection, sql
from psycopg.rows import TupleRow

from issuance.errors import ReconciliationFailed

Conn = Connection[TupleRow]
OPEN_STATES = ("AWAITING_AGREEMENT", "PERSONALIZED", "ACTIVATION_REQUESTED")
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
    decided it left it (an accepted new card passes PERSONALIZED to ACTIVATION_REQUESTED in that one run, and
    the branch was told the latter); its current state and reasons if its history holds no decision."""
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
        "    AND d.stage = 'agreement' AND d.state = 'REJECTED' THEN 'INVALID'"
        "   WHEN d.application_id IS NOT NULL THEN 'MATCHED'"
        "   WHEN EXISTS (SELECT 1 FROM applications a WHERE a.application_id = r.application_id)"
        "    THEN 'MATCHED'"
        "   WHEN "
        + WINDOW_CLOSED.format(start="r.signed_at", window="%(window)s", date="%(date)s")
        + " THEN 'EXPIRED'"
        "   ELSE 'PENDING' END,"
        "  %(run)s, r.source_topic, r.source_partition, r.source_offset"
        " FROM run_agreements r LEFT JOIN run_decisions d ON d.application_id = r.application_id",
        {"run": run_id, "window": window_days, "date": business_date},
    )
    conn.execute(
        "UPDATE agreements g SET status = CASE"
        "  WHEN g.agreement_id = d.agreement_id THEN 'MATCHED'"
        "  WHEN d.stage = 'agreement' AND d.state = 'REJECTED' THEN 'INVALID'"
        "  ELSE 'MATCHED' END"
        " FROM run_decisions d WHERE g.application_id = d.application_id AND g.status = 'PENDING'"
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
        " SELECT application_id, true, 'SUBMITTED', 'REJECTED', reasons, 'verify'"
        " FROM staged_applications WHERE run_id = %s AND reasons <> '{}'",
        (run_id,),
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
    FROM applications a WHERE a.state = 'AWAITING_AGREEMENT'
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


# Re-examinations and retries see the reference data as it stands tonight (Article 5 on every decision). Only
# the few applications accepted on a late agreement and the failed activations about to be requested again are
# read; the same rule as on their first night (`issuance.domain.verification`) decides again.
RECHECK_QUERY = """
WITH rechecked AS (
    SELECT d.application_id, d.agreement_id, 'AWAITING_AGREEMENT' AS from_state FROM run_decisions d
    WHERE NOT d.is_new AND d.state = 'ACTIVATION_REQUESTED'
    UNION ALL
    SELECT a.application_id, a.agreement_id, 'ACTIVATION_FAILED' FROM applications a
    WHERE a.state = 'ACTIVATION_FAILED' AND a.bank_refusals < %(max_attempts)s
)
SELECT r.from_state, r.agreement_id, a.application_id, a.application_type, a.branch_code, a.bank_code,
       a.channel, a.person_key, a.id_number_enc, a.name_enc, a.phone_enc, a.guardian_id_enc, a.card_number,
       a.materials, a.submitted_at, coalesce(a.submitted_utc_offset, 0) AS submitted_utc_offset,
       EXISTS (SELECT 1 FROM person_cards p WHERE p.card_number = a.card_number) AS card_registered,
       EXISTS (SELECT 1 FROM cards c WHERE c.person_key = a.person_key AND c.status <> 'CANCELLED'
               AND c.application_id <> a.application_id) AS issued_card_holder
FROM rechecked r JOIN applications a USING (application_id)
ORDER BY a.application_id
"""


def reject_rechecked(conn: Conn, rejections: Sequence[tuple[str, str, str | None, list[str]]]) -> None:
    """Applications that no longer pass verification: (application id, from state, agreement id, reasons).

    A re-examined one's acceptance becomes a rejection; a failed activation gets a decision of its own (it is
    not requested again)."""
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
        "UPDATE run_decisions d SET state = 'REJECTED', reasons = r.reasons, stage = 'verify'"
        " FROM run_rechecked r WHERE d.application_id = r.application_id AND NOT d.is_new"
    )
    conn.execute(
        "INSERT INTO run_decisions (application_id, is_new, from_state, state, reasons, stage, agreement_id)"
        " SELECT application_id, false, from_state, 'REJECTED', reasons, 'verify', agreement_id"
        " FROM run_rechecked WHERE from_state = 'ACTIVATION_FAILED'"
    )


def cancel_rejected_cards(conn: Conn) -> int:
    """A card still in production for an application rejected on its retry is cancelled: nothing of it is
    left to block the holder (its account was refused already)."""
    return conn.execute(
        "UPDATE cards c SET status = 'CANCELLED' FROM run_decisions d"
        " WHERE d.from_state = 'ACTIVATION_FAILED' AND d.state = 'REJECTED'"
        "  AND c.application_id = d.application_id AND c.status = 'IN_PRODUCTION'"
    ).rowcount


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
        {"run": run_id, "open": list(OPEN_STATES)},
    ).rowcount
    updated = conn.execute(
        "UPDATE applications a SET state = d.state, reasons = d.reasons, is_open = d.state = ANY(%(open)s),"
        " agreement_id = d.agreement_id, last_run_id = %(run)s, version = a.version + 1, updated_at = now()"
        " FROM run_decisions d WHERE NOT d.is_new AND a.application_id = d.application_id",
        {"run": run_id, "open": list(OPEN_STATES)},
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
        " SELECT application_id, NULL, 'SUBMITTED', 'read', '{}', run_id FROM staged_applications"
        " WHERE run_id = %s",
        (run_id,),
    )


def record_history(conn: Conn, run_id: int) -> None:
    """The history of every decision after the read: the decided state; NEW_CARD goes PERSONALIZED then
    ACTIVATION_REQUESTED in the same run, FINANCIAL_ACTIVATION skips the first."""
    conn.execute(
        "INSERT INTO application_history (application_id, from_state, to_state, stage, reasons, run_id)"
        " SELECT d.application_id, d.from_state, d.state, d.stage, d.reasons, %(run)s FROM run_decisions d"
        "  WHERE d.state <> 'ACTIVATION_REQUESTED'"
        " UNION ALL"
        " SELECT d.application_id, d.from_state, 'PERSONALIZED', 'personalize', '{}', %(run)s"
        "  FROM run_decisions d JOIN applications a USING (application_id)"
        "  WHERE d.state = 'ACTIVATION_REQUESTED' AND a.application_type = 'NEW_CARD'"
        " UNION ALL"
        " SELECT d.application_id,"
        "  CASE WHEN a.application_type = 'NEW_CARD' THEN 'PERSONALIZED' ELSE d.from_state END,"
        "  'ACTIVATION_REQUESTED', 'activation', '{}', %(run)s"
        "  FROM run_decisions d JOIN applications a USING (application_id)"
        "  WHERE d.state = 'ACTIVATION_REQUESTED'",
        {"run": run_id},
    )


# Allocation
# ---------------------------------------------------------------------------------------------------


def insert_personalized(
    conn: Conn, run_id: int, issued: date, valid_until: date, spec_version: str, topics: dict[str, str]
) -> tuple[int, int, int]:
    """Cards, accounts and first activation requests of the applications this run read and accepted, from
    what the helper personalized (`pipelines.personalize_staged`); returns (cards, accounts, requests). An
    accepted application without a personalization for the agreement it was accepted on (or whose bank has
    no topic) breaks a NOT NULL: the run fails.

    One statement: the accepted applications are joined with their personalization once, and the three
    inserts read that result."""
    row = conn.execute(
        "WITH accepted AS MATERIALIZED ("
        " SELECT s.application_id, s.application_type, s.person_key, s.area_code, s.bank_code, s.slot,"
        "  s.card_number, p.new_card_number, p.card_identification_code, p.account_index,"
        "  p.account_number_enc, p.request_event_id, p.request_payload, t.topic"
        " FROM run_decisions d JOIN staged_applications s"
        "  ON s.run_id = %(run)s AND s.application_id = d.application_id"
        " LEFT JOIN staged_personalized p ON p.run_id = %(run)s AND p.application_id = d.application_id"
        "  AND p.agreement_id IS NOT DISTINCT FROM d.agreement_id"
        " LEFT JOIN unnest(%(banks)s::text[], %(topics)s::text[]) AS t(bank, topic) ON t.bank = s.bank_code"
        " WHERE d.is_new AND d.state = 'ACTIVATION_REQUESTED'"
        "), new_cards AS ("
        " INSERT INTO cards (card_number, application_id, person_key, card_identification_code, area_code,"
        "  bank_code, sequence, issue_date, valid_until, spec_version, status, run_id)"
        " SELECT new_card_number, application_id, person_key, card_identification_code, area_code, bank_code,"
        "  slot, %(issued)s, %(until)s, %(spec)s, 'IN_PRODUCTION', %(run)s"
        " FROM accepted WHERE application_type = 'NEW_CARD'"
        " RETURNING 1"
        "), new_accounts AS ("
        " INSERT INTO bank_accounts (application_id, bank_code, sequence, account_index, account_number_enc,"
        "  card_number, status, run_id)"
        " SELECT application_id, bank_code, slot, account_index, account_number_enc,"
        "  coalesce(new_card_number, card_number), 'REQUESTED', %(run)s"
        " FROM accepted"
        " RETURNING 1"
        "), new_requests AS ("
        " INSERT INTO outbox (event_id, topic, message_key, payload, event_type, run_id, payload_encrypted)"
        " SELECT request_event_id, topic, convert_to(application_id, 'UTF8'), request_payload,"
        "  'ActivationRequested', %(run)s, true"
        " FROM accepted"
        " RETURNING 1"
        ")"
        " SELECT (SELECT count(*) FROM new_cards), (SELECT count(*) FROM new_accounts),"
        "  (SELECT count(*) FROM new_requests)",
        {
            "run": run_id,
            "issued": issued,
            "until": valid_until,
            "spec": spec_version,
            "banks": list(topics),
            "topics": list(topics.values()),
        },
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


REEXAMINED_ACCEPTED_QUERY = """
SELECT a.application_id, a.application_type, a.bank_code, a.area_code, a.person_key, a.card_number,
       a.id_number_enc, a.name_enc, a.bank_refusals, a.slot, g.agreement_id, g.terms_version,
       g.document_sha256
FROM run_decisions d JOIN applications a USING (application_id)
LEFT JOIN agreements g ON g.agreement_id = a.agreement_id  -- kept by settle_agreements before allocation
WHERE NOT d.is_new AND d.state = 'ACTIVATION_REQUESTED' AND d.application_id > %(after)s
  AND a.application_id > %(after)s  -- both sides start at the page: no rescan from the first row
ORDER BY d.application_id
LIMIT %(limit)s
"""

RETRY_QUERY = """
SELECT a.application_id, a.application_type, a.bank_code, a.bank_refusals, a.id_number_enc, a.name_enc,
       coalesce(c.card_number, a.card_number), c.card_identification_code, b.account_number_enc,
       g.agreement_id, g.terms_version, g.document_sha256
FROM applications a
JOIN bank_accounts b USING (application_id)
LEFT JOIN cards c USING (application_id)
LEFT JOIN agreements g ON g.agreement_id = a.agreement_id
WHERE a.state = 'ACTIVATION_FAILED' AND a.bank_refusals < %s
ORDER BY a.application_id
FOR UPDATE OF a
"""


def mark_requested_again(
    conn: Conn, run_id: int, application_ids: Sequence[str], event_ids: Sequence[str]
) -> None:
    """Failed activations with attempts left go back to ACTIVATION_REQUESTED."""
    if not application_ids:
        return
    conn.execute(
        "UPDATE applications SET state = 'ACTIVATION_REQUESTED', is_open = true, last_run_id = %s,"
        " version = version + 1, updated_at = now() WHERE application_id = ANY(%s)",
        (run_id, list(application_ids)),
    )
    conn.execute(
        "UPDATE bank_accounts SET status = 'REQUESTED' WHERE application_id = ANY(%s)",
        (list(application_ids),),
    )
    conn.execute(
        "INSERT INTO application_history (application_id, from_state, to_state, stage, run_id,"
        " event_id, detail)"
        " SELECT app, 'ACTIVATION_FAILED', 'ACTIVATION_REQUESTED', 'activation', %s, ev, 'requested again'"
        " FROM unnest(%s::text[], %s::text[]) AS t(app, ev) ON CONFLICT DO NOTHING",
        (run_id, list(application_ids), list(event_ids)),
    )


# Events and dead letters
# --------------------------------------------------------------------------------------

DECISIONS_QUERY = """
SELECT d.application_id, a.branch_code, d.state, d.reasons
FROM run_decisions d JOIN applications a USING (application_id)
ORDER BY d.application_id
"""


def pages(
    conn: Conn, query: str, params: dict[str, Any], size: int = FETCH_SIZE
) -> Iterator[list[tuple[Any, ...]]]:
    """Keyset pages of a query ordered by its first column (`after`/`limit` parameters); the caller may write
    between pages, which a server-side cursor would not allow with COPY."""
    after = ""
    while True:
        rows = conn.execute(query, {**params, "after": after, "limit": size}).fetchall()
        if not rows:
            return
        yield rows
        after = str(rows[-1][0])


def insert_dead_letters(conn: Conn, run_id: int, topic_ids: Mapping[str, str]) -> list[tuple[Any, ...]]:
    """The run's dead letters into the table (once per source position: topic, the topic id the night planned
    with from `topic_ids`, partition, offset); returns the new ones."""
    topics = sorted(topic_ids)
    rows = conn.execute(
        "INSERT INTO dead_letters (source_topic, source_topic_id, source_partition, source_offset, stage,"
        " reason, detail, payload_enc, branch_code, run_id)"
        " SELECT s.source_topic, coalesce(t.topic_id, ''), s.source_partition, s.source_offset, s.stage,"
        " s.reason, s.detail, s.payload_enc, s.branch_code, s.run_id"
        " FROM staged_dead_letters s"
        " LEFT JOIN unnest(%s::text[], %s::text[]) AS t (topic, topic_id) ON t.topic = s.source_topic"
        " WHERE s.run_id = %s"
        " ON CONFLICT (source_topic, source_topic_id, source_partition, source_offset) DO NOTHING"
        " RETURNING source_topic, source_topic_id, source_partition, source_offset, stage, reason, detail,"
        " payload_enc",
        (topics, [topic_ids[t] for t in topics], run_id),
    ).fetchall()
    return list(rows)


OUTBOX_COLUMNS = ("event_id", "topic", "message_key", "payload", "event_type", "run_id", "payload_encrypted")


def as_datetime(value: Any) -> datetime:
    assert isinstance(value, datetime)
    return value
