"""The dashboard's reads: funnel, backlogs, runs, dead letters, one application; all under a Scope."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import class_row

from issuance.domain.lifecycle import ApplicationState
from issuance.store.report_queries import (
    Filters,
    Role,
    Scope,
    StateCount,
    dead_letter_where,
    state_counts,
    where,
)
from issuance.store.status_queries import HistoryRow

AFTER_AGREEMENT = (ApplicationState.ACCEPTED, ApplicationState.COMPLETED, ApplicationState.FAILED)
AFTER_REQUEST = AFTER_AGREEMENT


@dataclass(frozen=True, slots=True)
class FunnelRow:
    """One line of the funnel: how many are in this state now, how many ever got this far."""

    key: str
    label: str
    now: int | None
    reached: int | None
    conversion: float | None
    conversion_of: str = ""  # what the conversion is a share of


@dataclass(frozen=True, slots=True)
class Funnel:
    """The funnel plus the counts per state it was built from (equal to `issuance report`)."""

    total: int
    rows: list[FunnelRow]
    by_state: dict[str, int]
    rejected_in_verification: int
    rejected_for_agreement: int


def build_funnel(counts: list[StateCount]) -> Funnel:
    """Turn counts per state, type and rejecting stage into the funnel (pure)."""
    by_state = {s.value: 0 for s in ApplicationState}
    rejected = {"VERIFICATION": 0, "AGREEMENT": 0}
    personalized_reached = 0
    for c in counts:
        by_state[c.state.value] += c.count
        if c.state is ApplicationState.REJECTED:
            rejected[c.rejected_at or "VERIFICATION"] += c.count
        # A financial activation goes straight to the bank: only new cards are ever personalized.
        if c.state in AFTER_AGREEMENT and c.application_type == "NEW_CARD":
            personalized_reached += c.count
    total = sum(by_state.values())
    verified = total - by_state[ApplicationState.SUBMITTED] - rejected["VERIFICATION"]
    requested = sum(by_state[s] for s in AFTER_REQUEST)

    def ratio(part: int, whole: int) -> float | None:
        return part / whole if whole else None

    rows = [
        FunnelRow("submitted", "Submitted", by_state[ApplicationState.SUBMITTED], total, None),
        FunnelRow("verified", "Verified", None, verified, ratio(verified, total), "of received"),
        FunnelRow(
            "awaiting_agreement",
            "Waiting for agreement",
            by_state[ApplicationState.AWAITING_AGREEMENT],
            None,
            None,
        ),
        FunnelRow(
            "personalized",
            "Personalized (new cards)",
            by_state[ApplicationState.PERSONALIZED],
            personalized_reached,
            None,
        ),
        FunnelRow(
            "activation_requested",
            "Activation requested",
            by_state[ApplicationState.ACTIVATION_REQUESTED],
            requested,
            ratio(requested, verified),
            "of verified",
        ),
        FunnelRow(
            "active",
            "Active",
            by_state[ApplicationState.ACTIVE],
            by_state[ApplicationState.ACTIVE],
            ratio(by_state[ApplicationState.ACTIVE], requested),
            "of activation requests",
        ),
        FunnelRow(
            "rejected",
            "Rejected",
            by_state[ApplicationState.REJECTED],
            None,
            ratio(by_state[ApplicationState.REJECTED], total),
            "of received",
        ),
        FunnelRow(
            "failed",
            "Activation failed",
            by_state[ApplicationState.ACTIVATION_FAILED],
            None,
            ratio(by_state[ApplicationState.ACTIVATION_FAILED], requested),
            "of activation requests",
        ),
    ]
    return Funnel(total, rows, by_state, rejected["VERIFICATION"], rejected["AGREEMENT"])


def funnel(conn: psycopg.Connection, scope: Scope, filters: Filters) -> Funnel:
    """The funnel within the scope and filters."""
    return build_funnel(state_counts(conn, scope, filters))


# Backlogs -------------------------------------------------------------------------------------------------

AGE_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("today", 0, 1),
    ("1-6 days", 1, 7),
    ("7-13 days", 7, 14),
    ("14-29 days", 14, 30),
    ("30 days or more", 30, None),
)


@dataclass(frozen=True, slots=True)
class Backlog:
    """Waiting applications per age bucket, and the oldest one's age in days."""

    name: str
    buckets: dict[str, int]
    total: int
    oldest_days: int | None


def backlog(conn: psycopg.Connection, scope: Scope, filters: Filters, *, waiting_for: str) -> Backlog:
    """Applications waiting for an agreement (days since submission) or the bank (since the request)."""
    if waiting_for == "agreement":
        state, name = ApplicationState.AWAITING_AGREEMENT, "Waiting for agreement"
    elif waiting_for == "bank":
        state, name = ApplicationState.ACTIVATION_REQUESTED, "Waiting for the bank"
    else:
        raise ValueError(f"unknown backlog {waiting_for!r}")
    cases = [
        sql.SQL("coalesce(sum(n) FILTER (WHERE age >= {lo}{hi}), 0)").format(
            lo=sql.Literal(lo),
            hi=sql.SQL(" AND age < {}").format(sql.Literal(hi)) if hi is not None else sql.SQL(""),
        )
        for _, lo, hi in AGE_BUCKETS
    ]
    # Ages in whole days (UTC), from the trigger-maintained summary of migration 0006_dashboard_waiting.
    query = sql.SQL(
        "SELECT {cases}, coalesce(sum(n), 0), max(age) FROM ("
        " SELECT (now() AT TIME ZONE 'UTC')::date - since_day AS age, sum(n) AS n"
        " FROM dashboard_waiting_counts {where} AND state = {state}"
        " GROUP BY since_day HAVING sum(n) <> 0"
        ") AS waiting"
    ).format(cases=sql.SQL(", ").join(cases), where=where(scope, filters), state=sql.Literal(state.value))
    row = conn.execute(query).fetchone()
    assert row is not None
    buckets = {label: int(n) for (label, _, _), n in zip(AGE_BUCKETS, row[: len(AGE_BUCKETS)], strict=True)}
    oldest = row[-1]
    return Backlog(name, buckets, int(row[-2]), int(oldest) if oldest is not None else None)


# Runs -----------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class RunRow:
    """One nightly run as the bureau reads it."""

    run_id: int
    business_date: date
    status: str
    started_at: datetime
    finished_at: datetime | None
    records_read: int
    balanced: bool | None
    counters: dict[str, Any] | None
    reconciliation: dict[str, Any] | None
    error: str | None
    in_scope: dict[str, int] = field(default_factory=dict)

    @property
    def duration_s(self) -> float | None:
        """Seconds from start to finish."""
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def throughput(self) -> float | None:
        """Records read per second."""
        d = self.duration_s
        return self.records_read / d if d else None


def runs(conn: psycopg.Connection, scope: Scope, filters: Filters, limit: int = 14) -> list[RunRow]:
    """The latest runs; outside the bureau, counters and reconciliation are replaced by in-scope counts."""
    date_filter = (
        sql.SQL("WHERE business_date = {}").format(sql.Literal(filters.business_date))
        if filters.business_date
        else sql.SQL("")
    )
    query = sql.SQL(
        "SELECT run_id, business_date, status, started_at, finished_at, records_read, balanced, counters,"
        " reconciliation, error FROM runs {} ORDER BY run_id DESC LIMIT {}"
    ).format(date_filter, sql.Literal(limit))
    with conn.cursor(row_factory=class_row(RunRow)) as cur:
        result = cur.execute(query).fetchall()
    # Applications first read by each run, by state, as this reader may see them.
    per_run = sql.SQL(
        "SELECT first_run_id, state, sum(n)::bigint FROM dashboard_state_counts {} "
        "AND first_run_id = ANY({}) GROUP BY 1, 2 HAVING sum(n) <> 0"
    ).format(where(scope, filters), sql.Literal([r.run_id for r in result]))
    counts: dict[int, dict[str, int]] = {}
    for run_id, state, n in conn.execute(per_run).fetchall():
        counts.setdefault(int(run_id), {})[state] = int(n)
    for r in result:
        r.in_scope = counts.get(r.run_id, {})
        if scope.role is not Role.BUREAU:
            # Run-wide numbers cover every branch and bank: only the bureau sees them.
            r.counters = r.reconciliation = None
            r.records_read = sum(r.in_scope.values())
            r.error = None
    return result


# Dead letters ---------------------------------------------------------------------------------------------

_DIGITS = re.compile(r"\d{6,}")


def mask_detail(text: str) -> str:
    """Hide any long digit run in a detail message (it could be part of an ID or account number)."""
    return _DIGITS.sub(lambda m: m.group(0)[:2] + "*" * (len(m.group(0)) - 2), text)


@dataclass(frozen=True, slots=True)
class DeadLetterSample:
    """A dead letter without its payload."""

    id: int
    created_at: datetime
    reason: str
    stage: str
    source: str
    branch_code: str | None
    detail: str
    status: str  # OPEN, REDRIVEN or HANDLED (`issuance dead-letters`)


def dead_letters(
    conn: psycopg.Connection, scope: Scope, filters: Filters, samples_per_reason: int = 5
) -> tuple[dict[str, int], list[DeadLetterSample]]:
    """Dead letters by reason and the newest few of each reason; the payload is never read."""
    clause = dead_letter_where(scope, filters)
    counts = {
        r: int(n)
        for r, n in conn.execute(
            sql.SQL("SELECT reason, count(*) FROM dead_letters {} GROUP BY 1 ORDER BY 2 DESC, 1").format(
                clause
            )
        ).fetchall()
    }
    samples: list[DeadLetterSample] = []
    for reason in counts:
        with conn.cursor(row_factory=class_row(DeadLetterSample)) as cur:
            rows = cur.execute(
                sql.SQL(
                    "SELECT id, created_at, reason, stage,"
                    " source_topic || '/' || source_partition || '@' || source_offset AS source,"
                    " branch_code, detail, status"
                    " FROM dead_letters {} AND reason = {} ORDER BY id DESC LIMIT {}"
                ).format(clause, sql.Literal(reason), sql.Literal(samples_per_reason))
            ).fetchall()
        samples.extend(replace(r, detail=mask_detail(r.detail)) for r in rows)
    return counts, samples


# One application ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredApplication:
    """An application row with its sensitive fields still encrypted."""

    application_id: str
    application_type: str
    branch_code: str
    bank_code: str
    area_code: str | None
    channel: str
    state: str
    reasons: list[str]
    submitted_at: datetime
    updated_at: datetime
    card_number: str | None
    agreement_id: str | None
    bank_refusals: int
    id_number_enc: bytes
    name_enc: bytes
    phone_enc: bytes | None


def application(
    conn: psycopg.Connection, scope: Scope, application_id: str
) -> tuple[StoredApplication, list[HistoryRow]] | None:
    """One application and its history, or None when absent or outside the scope (indistinguishable)."""
    query = sql.SQL(
        "SELECT application_id, application_type, branch_code, bank_code, area_code, channel, state, reasons,"
        " submitted_at, updated_at, card_number, agreement_id, bank_refusals, id_number_enc, name_enc,"
        " phone_enc FROM applications {} AND application_id = {}"
    ).format(where(scope), sql.Literal(application_id))
    with conn.cursor(row_factory=class_row(StoredApplication)) as cur:
        found = cur.execute(query).fetchone()
    if found is None:
        return None
    with conn.cursor(row_factory=class_row(HistoryRow)) as cur:
        history = cur.execute(
            "SELECT at, from_state, to_state, stage, reasons, run_id, detail FROM application_history"
            " WHERE application_id = %s ORDER BY id",
            (application_id,),
        ).fetchall()
    return found, history


# Choices for the filter bar -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Choices:
    """What the filter bar offers this reader."""

    areas: list[tuple[str, str]]
    branches: list[tuple[str, str]]
    banks: list[tuple[str, str]]
    business_dates: list[date]


def choices(conn: psycopg.Connection, scope: Scope) -> Choices:
    """Areas, branches, banks and business dates, limited to what the scope may pick."""
    branch_sql = "SELECT branch_code, name FROM branches"
    bank_sql = "SELECT bank_code, name FROM banks"
    params: tuple[str, ...] = ()
    if scope.role is Role.BRANCH:
        branch_sql += " WHERE branch_code = %s"
        bank_sql += " WHERE bank_code = (SELECT bank_code FROM branches WHERE branch_code = %s)"
        params = (scope.branch_code or "",)
    elif scope.role is Role.BANK:
        branch_sql += " WHERE bank_code = %s"
        bank_sql += " WHERE bank_code = %s"
        params = (scope.bank_code or "",)
    areas = conn.execute("SELECT area_code, name FROM issuing_areas ORDER BY area_code").fetchall()
    branches = conn.execute(branch_sql + " ORDER BY branch_code", params).fetchall()
    banks = conn.execute(bank_sql + " ORDER BY bank_code", params).fetchall()
    dates = [r[0] for r in conn.execute("SELECT DISTINCT business_date FROM runs ORDER BY 1 DESC LIMIT 60")]
    return Choices(
        [(a, n) for a, n in areas], [(b, n) for b, n in branches], [(b, n) for b, n in banks], dates
    )
