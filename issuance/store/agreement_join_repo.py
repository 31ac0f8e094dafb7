"""SQL of the agreement join: the Beam stage's bounded reads and staged rows, and the final transaction's
apply.

The join is staged by `pipelines/transforms/agreement_join.py` after every chunk is staged, one range of
application ids at a time: a range's candidates (the run's applications that survive the repeated-id rule and
passed verification, and every application still awaiting its agreement from an earlier night) with the
agreements that may be theirs (tonight's not kept before, once per agreement id, and the pending ones). The
decisions go to `staged_agreement_decisions` (migration 0041); the final transaction checks that they cover
exactly its candidates and applies them in one statement.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from psycopg import sql

from issuance.store.db import copy_rows
from issuance.store.decisions_repo import STATES, AgreementCandidate, Conn, candidate_pages

IdRange = tuple[str | None, str | None]  # [low, high) of application ids; None: unbounded on that side
STAGED_DECISION_COLUMNS = ("run_id", "application_id", "is_new", "state", "reasons", "agreement_id")


def _in_range(column: str) -> str:
    return (
        f"(%(low)s::text IS NULL OR {column} >= %(low)s::text)"
        f" AND (%(high)s::text IS NULL OR {column} < %(high)s::text)"
    )


def id_ranges(conn: Conn, run_id: int, parts: int) -> list[IdRange]:
    """`parts` ranges of about as many of the run's staged applications each, covering every application id
    (the first and last are open, so applications of earlier nights outside the run's ids are covered too)."""
    # Fresh statistics first: the staging tables were just filled (autovacuum is off for them), and plans made
    # on empty-table estimates loop over them per candidate.
    for table in ("staged_applications", "staged_agreements"):
        conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))
    if parts <= 1:
        return [(None, None)]
    row = conn.execute(
        "SELECT percentile_disc(%s::float8[]) WITHIN GROUP (ORDER BY application_id)"
        " FROM staged_applications WHERE run_id = %s",
        ([i / parts for i in range(1, parts)], run_id),
    ).fetchone()
    bounds = sorted({str(b) for b in (row[0] if row and row[0] else []) if b is not None})
    edges: list[str | None] = [None, *bounds, None]
    return [(edges[i], edges[i + 1]) for i in range(len(edges) - 1)]


_CANDIDATES_IN_RANGE = f"""
WITH staged AS (
    SELECT application_id, application_type, bank_code, submitted_at, submitted_utc_offset, reasons,
           row_number() OVER (PARTITION BY application_id
                              ORDER BY source_topic, source_partition, source_offset) AS n
    FROM staged_applications WHERE run_id = %(run)s AND {_in_range("application_id")}
), candidates AS (
    SELECT s.application_id, true AS is_new, s.application_type, s.bank_code, s.submitted_at,
           s.submitted_utc_offset
    FROM staged s
    WHERE s.n = 1 AND s.reasons = '{{}}'
      AND NOT EXISTS (SELECT 1 FROM applications a WHERE a.application_id = s.application_id)
    UNION ALL
    SELECT a.application_id, false, a.application_type, a.bank_code, a.submitted_at,
           coalesce(a.submitted_utc_offset, 0)
    FROM applications a WHERE a.state = %(awaiting)s AND {_in_range("a.application_id")}
), tonight AS (
    SELECT DISTINCT ON (s.agreement_id) s.agreement_id, s.application_id, s.bank_code, s.terms_version,
           s.document_sha256, s.signed_at, s.channel
    FROM staged_agreements s
    WHERE s.run_id = %(run)s
      AND s.agreement_id IN (SELECT agreement_id FROM staged_agreements
                             WHERE run_id = %(run)s AND {_in_range("application_id")})
      AND NOT EXISTS (SELECT 1 FROM agreements g WHERE g.agreement_id = s.agreement_id)
    ORDER BY s.agreement_id, s.source_topic, s.source_partition, s.source_offset
)
SELECT c.application_id, c.is_new, c.application_type, c.bank_code, c.submitted_at, c.submitted_utc_offset,
       g.agreement_id, g.bank_code, g.terms_version, g.document_sha256, g.signed_at, g.channel
FROM candidates c
LEFT JOIN (
    SELECT agreement_id, application_id, bank_code, terms_version, document_sha256, signed_at, channel
    FROM agreements WHERE status = 'PENDING' AND {_in_range("application_id")}
    UNION ALL
    SELECT agreement_id, application_id, bank_code, terms_version, document_sha256, signed_at, channel
    FROM tonight WHERE {_in_range("application_id")}
) g ON g.application_id = c.application_id
ORDER BY c.application_id, g.agreement_id
"""


def candidates_in_range(conn: Conn, run_id: int, ids: IdRange) -> Iterator[list[AgreementCandidate]]:
    """The range's (candidate, agreement that may be its) rows in pages, by application then agreement id;
    one application's rows never span two pages. The same candidates and agreements as the transaction's
    `decisions_repo.CANDIDATES_QUERY` sees, with the repeated-id rule (the first record of an id not
    submitted before) and the verification rejects applied here instead of before it."""
    params = {"run": run_id, "awaiting": STATES["awaiting"], "low": ids[0], "high": ids[1]}
    # Hash joins over the range (a nested loop rescans the staged agreements per candidate), in memory.
    conn.execute("SET LOCAL enable_nestloop = off")
    conn.execute("SET LOCAL work_mem = '64MB'")
    yield from candidate_pages(conn, _CANDIDATES_IN_RANGE, params)


def replace_range(conn: Conn, run_id: int, ids: IdRange, rows: Sequence[Sequence[Any]]) -> None:
    """The range's staged decisions replace its earlier ones in one transaction (a retried bundle)."""
    with conn.transaction():
        conn.execute(
            "DELETE FROM staged_agreement_decisions WHERE run_id = %(run)s AND "
            + _in_range("application_id"),
            {"run": run_id, "low": ids[0], "high": ids[1]},
        )
        copy_rows(conn, "staged_agreement_decisions", STAGED_DECISION_COLUMNS, rows)


# The final transaction's part
# ----------------------------------------------------------------------------------------------------------

_UNCOVERED = """
SELECT
  (SELECT count(*) FROM staged_applications s
   WHERE s.run_id = %(run)s AND s.reasons = '{}'
     AND NOT EXISTS (SELECT 1 FROM run_decisions r WHERE r.application_id = s.application_id)
     AND NOT EXISTS (SELECT 1 FROM staged_agreement_decisions d
                     WHERE d.run_id = %(run)s AND d.application_id = s.application_id AND d.is_new))
  + (SELECT count(*) FROM applications a
     WHERE a.state = %(awaiting)s
       AND NOT EXISTS (SELECT 1 FROM staged_agreement_decisions d
                       WHERE d.run_id = %(run)s AND d.application_id = a.application_id AND NOT d.is_new))
  + (SELECT count(*) FROM staged_agreement_decisions d
     WHERE d.run_id = %(run)s AND CASE WHEN d.is_new
       THEN NOT EXISTS (SELECT 1 FROM staged_applications s
                        WHERE s.run_id = %(run)s AND s.application_id = d.application_id AND s.reasons = '{}')
       ELSE NOT EXISTS (SELECT 1 FROM applications a
                        WHERE a.application_id = d.application_id AND a.state = %(awaiting)s) END)
"""


def staged_cover(conn: Conn, run_id: int) -> bool:
    """True when the staged decisions are exactly the join's candidates as the transaction sees them (after
    repeated ids, verification rejects and duplicates): each surviving application of the run has a decision
    staged as new, each application awaiting its agreement one staged as earlier, and no other is staged."""
    row = conn.execute(_UNCOVERED, {"run": run_id, "awaiting": STATES["awaiting"]}).fetchone()
    return row is not None and int(row[0]) == 0


def apply_staged(conn: Conn, run_id: int) -> dict[str, int]:
    """The staged decisions into the transaction's `run_decisions` (an application the duplicates rule
    rejected keeps that decision; an earlier one still awaiting is left as it is); returns the re-examined
    applications' count per new state."""
    conn.execute(
        "INSERT INTO run_decisions (application_id, is_new, from_state, state, reasons, stage, agreement_id)"
        " SELECT d.application_id, d.is_new,"
        "  CASE WHEN d.is_new THEN %(submitted)s ELSE %(awaiting)s END, d.state, d.reasons, 'agreement',"
        "  d.agreement_id"
        " FROM staged_agreement_decisions d"
        " WHERE d.run_id = %(run)s AND (d.is_new OR d.state <> %(awaiting)s)"
        "  AND NOT EXISTS (SELECT 1 FROM run_decisions r WHERE r.application_id = d.application_id)",
        {"run": run_id, "submitted": STATES["submitted"], "awaiting": STATES["awaiting"]},
    )
    rows = conn.execute(
        "SELECT state, count(*) FROM staged_agreement_decisions"
        " WHERE run_id = %s AND NOT is_new AND state <> %s GROUP BY state ORDER BY state",
        (run_id, STATES["awaiting"]),
    ).fetchall()
    return {str(state): int(n) for state, n in rows}
