"""Counting queries shared by `issuance report` and the dashboard, always under one access scope.

Counts come from the trigger-maintained summaries of migration 0006, so they equal count(*) over
`applications` in the same snapshot while staying fast at millions of rows. Every query takes a `Scope`
(who asks) and `Filters` (what they picked); `where()` is the one place both become SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

import psycopg
from psycopg import sql

from issuance.domain.lifecycle import ApplicationState


class Role(StrEnum):
    BUREAU = "bureau"
    BRANCH = "branch"
    BANK = "bank"


@dataclass(frozen=True, slots=True)
class Scope:
    """What one reader may see: the bureau everything, a branch or a bank only its own applications."""

    role: Role
    branch_code: str | None = None
    bank_code: str | None = None

    def __post_init__(self) -> None:
        if self.role is Role.BRANCH and not self.branch_code:
            raise ValueError("a branch scope needs a branch_code")
        if self.role is Role.BANK and not self.bank_code:
            raise ValueError("a bank scope needs a bank_code")

    @classmethod
    def everything(cls) -> Scope:
        """The bureau's scope (also what the command-line report uses)."""
        return cls(Role.BUREAU)

    def permits(self, filters: Filters) -> bool:
        """False when a filter asks for a branch or bank outside this scope."""
        if self.role is Role.BRANCH:
            return filters.branch_code in (None, self.branch_code)
        if self.role is Role.BANK:
            return filters.bank_code in (None, self.bank_code)
        return True


@dataclass(frozen=True, slots=True)
class Filters:
    """The reader's choices on the page: issuing area, branch, bank, business date of the night."""

    area_code: str | None = None
    branch_code: str | None = None
    bank_code: str | None = None
    business_date: date | None = None


def where(scope: Scope, filters: Filters = Filters()) -> sql.Composed:
    """The WHERE clause for a table with branch_code, bank_code, area_code and first_run_id columns."""
    parts: list[sql.Composable] = [sql.SQL("TRUE")]
    # The scope comes first and is never optional: the filters only narrow it further.
    if scope.role is Role.BRANCH:
        parts.append(sql.SQL("branch_code = {}").format(sql.Literal(scope.branch_code)))
    elif scope.role is Role.BANK:
        parts.append(sql.SQL("bank_code = {}").format(sql.Literal(scope.bank_code)))
    if filters.area_code:
        parts.append(sql.SQL("area_code = {}").format(sql.Literal(filters.area_code)))
    if filters.branch_code:
        parts.append(sql.SQL("branch_code = {}").format(sql.Literal(filters.branch_code)))
    if filters.bank_code:
        parts.append(sql.SQL("bank_code = {}").format(sql.Literal(filters.bank_code)))
    if filters.business_date:
        parts.append(
            sql.SQL("first_run_id IN (SELECT run_id FROM runs WHERE business_date = {})").format(
                sql.Literal(filters.business_date)
            )
        )
    return sql.SQL("WHERE ") + sql.SQL(" AND ").join(parts)


def dead_letter_where(scope: Scope, filters: Filters = Filters()) -> sql.Composed:
    """The WHERE clause for dead letters, which know only the branch (when it could be read)."""
    parts: list[sql.Composable] = [sql.SQL("TRUE")]
    branch_of_bank = sql.SQL("branch_code IN (SELECT branch_code FROM branches WHERE bank_code = {})")
    if scope.role is Role.BRANCH:
        parts.append(sql.SQL("branch_code = {}").format(sql.Literal(scope.branch_code)))
    elif scope.role is Role.BANK:
        parts.append(branch_of_bank.format(sql.Literal(scope.bank_code)))
    if filters.branch_code:
        parts.append(sql.SQL("branch_code = {}").format(sql.Literal(filters.branch_code)))
    if filters.bank_code:
        parts.append(branch_of_bank.format(sql.Literal(filters.bank_code)))
    if filters.area_code:
        parts.append(
            sql.SQL("branch_code IN (SELECT branch_code FROM branches WHERE area_code = {})").format(
                sql.Literal(filters.area_code)
            )
        )
    if filters.business_date:
        parts.append(
            sql.SQL("run_id IN (SELECT run_id FROM runs WHERE business_date = {})").format(
                sql.Literal(filters.business_date)
            )
        )
    return sql.SQL("WHERE ") + sql.SQL(" AND ").join(parts)


@dataclass(frozen=True, slots=True)
class StateCount:
    """Applications in one state; for REJECTED, split by the stage that rejected them."""

    state: ApplicationState
    application_type: str
    rejected_at: str
    count: int


def state_counts(conn: psycopg.Connection, scope: Scope, filters: Filters = Filters()) -> list[StateCount]:
    """Applications by state, type and rejecting stage, within the scope and filters."""
    query = sql.SQL(
        "SELECT state, application_type, rejected_at, sum(n)::bigint FROM dashboard_state_counts {} "
        "GROUP BY 1, 2, 3 HAVING sum(n) <> 0 ORDER BY 1, 2, 3"
    ).format(where(scope, filters))
    rows = conn.execute(query).fetchall()
    return [StateCount(ApplicationState(r[0]), r[1], r[2], int(r[3])) for r in rows]


def counts_by_state(conn: psycopg.Connection, scope: Scope, filters: Filters = Filters()) -> dict[str, int]:
    """Applications per state (every state present, zero when none)."""
    totals = {state.value: 0 for state in ApplicationState}
    for row in state_counts(conn, scope, filters):
        totals[row.state.value] += row.count
    return totals


def counts_by_reason(conn: psycopg.Connection, scope: Scope, filters: Filters = Filters()) -> dict[str, int]:
    """Rejected applications per reason (an application with two reasons counts under both)."""
    query = sql.SQL(
        "SELECT reason, sum(n)::bigint FROM dashboard_reason_counts {} "
        "GROUP BY 1 HAVING sum(n) <> 0 ORDER BY 2 DESC, 1"
    ).format(where(scope, filters))
    return {r[0]: int(r[1]) for r in conn.execute(query).fetchall()}


def counts_by(
    conn: psycopg.Connection, dimension: str, scope: Scope, filters: Filters = Filters()
) -> dict[str, dict[str, int]]:
    """Applications per state for each branch_code, bank_code, area_code or first_run_id."""
    if dimension not in {"branch_code", "bank_code", "area_code", "first_run_id"}:
        raise ValueError(f"cannot count by {dimension!r}")
    query = sql.SQL(
        "SELECT {dim}::text, state, sum(n)::bigint FROM dashboard_state_counts {where} "
        "GROUP BY 1, 2 HAVING sum(n) <> 0 ORDER BY 1, 2"
    ).format(dim=sql.Identifier(dimension), where=where(scope, filters))
    result: dict[str, dict[str, int]] = {}
    for key, state, n in conn.execute(query).fetchall():
        result.setdefault(key if key is not None else "", {})[state] = int(n)
    return result


def compact(conn: psycopg.Connection) -> None:
    """Fold the appended summary rows together (safe at any time, alongside writers)."""
    conn.execute("SELECT dashboard_compact_counts()")
