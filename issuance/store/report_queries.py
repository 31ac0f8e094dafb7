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
from psycopg.rows import class_row

from issuance.domain.lifecycle import (
    ACCOUNT_EXISTS,
    COLLECTED_OR_LATER,
    ApplicationState,
    CardStatus,
    FinancialStatus,
)
from issuance.domain.model import ApplicationType


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


# The lifecycle: funnel, backlogs by age, uncollected cards ------------------------------------------------

AGE_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("today", 0, 1),
    ("1-6 days", 1, 7),
    ("7-13 days", 7, 14),
    ("14-29 days", 14, 30),
    ("30 days or more", 30, None),
)


@dataclass(frozen=True, slots=True)
class SideCount:
    """Cards of this system with one side in one status (for aged statuses, per day they entered it)."""

    side: str  # 'card' (social-security side) or 'financial'
    status: str
    since_day: date | None
    count: int


def side_counts(conn: psycopg.Connection, scope: Scope, filters: Filters = Filters()) -> list[SideCount]:
    """Both sides of the cards by status and day entered, from the trigger-kept summary of migration 0031."""
    query = sql.SQL(
        "SELECT side, status, since_day, sum(n)::bigint AS count FROM dashboard_card_counts {} "
        "GROUP BY 1, 2, 3 HAVING sum(n) <> 0 ORDER BY 1, 2, 3"
    ).format(where(scope, filters))
    with conn.cursor(row_factory=class_row(SideCount)) as cur:
        return cur.execute(query).fetchall()


def ordered_with_account(
    conn: psycopg.Connection, scope: Scope, filters: Filters = Filters()
) -> dict[date, int]:
    """Cards ordered whose account is opened (waiting to go into a vendor file), per day the card was ordered.

    Read from the cards (a small set, the partial index on ORDERED cards), joined to the account."""
    query = sql.SQL(
        "SELECT since_day, count(*) FROM ("
        " SELECT a.area_code, a.branch_code, a.bank_code, a.first_run_id,"
        " (c.updated_at AT TIME ZONE 'UTC')::date AS since_day"
        " FROM cards c JOIN bank_accounts b USING (application_id) JOIN applications a USING (application_id)"
        " WHERE c.status = {ordered} AND b.status = {opened}) AS waiting {where} GROUP BY 1"
    ).format(
        ordered=sql.Literal(CardStatus.ORDERED.value),
        opened=sql.Literal(FinancialStatus.OPENED.value),
        where=where(scope, filters),
    )
    return {r[0]: int(r[1]) for r in conn.execute(query).fetchall()}


@dataclass(frozen=True, slots=True)
class FunnelStep:
    """One step of the lifecycle funnel: how many ever got this far, how many are at it now."""

    key: str
    label: str
    reached: int
    now: int
    of_previous: float | None  # reached as a share of the previous step's reached


FUNNEL_STEPS: tuple[tuple[str, str], ...] = (
    ("submitted", "Submitted"),
    ("accepted", "Accepted"),
    ("account_opened", "Account opened"),
    ("produced", "Produced"),
    ("at_branch", "At the branch"),
    ("collected", "Collected"),
    ("savings_active", "Savings active"),
)
# Where each card step is reached: the statuses at or past it (a cancelled card never got past ORDERED).
_PRODUCED_OR_LATER = frozenset({CardStatus.PRODUCED, CardStatus.AT_BRANCH}) | COLLECTED_OR_LATER
_AT_BRANCH_OR_LATER = frozenset({CardStatus.AT_BRANCH}) | COLLECTED_OR_LATER
_WAS_ACTIVE = frozenset({FinancialStatus.ACTIVE, FinancialStatus.FROZEN})


def build_lifecycle_funnel(states: list[StateCount], sides: list[SideCount]) -> list[FunnelStep]:
    """The seven steps of a new card (pure): its application submitted and accepted, then its card's steps
    and its account's; savings active counts those cards' accounts the bank switched on. The holders'
    FINANCIAL_ACTIVATION applications (and those of registry cards) are not steps of this journey: they show
    in the counts by state, so that each step's share of the previous one compares the same applications."""
    by_state = {s: 0 for s in ApplicationState}
    for c in states:
        if c.application_type == ApplicationType.NEW_CARD.value:
            by_state[c.state] += c.count
    card: dict[str, int] = {}
    financial: dict[str, int] = {}
    for s in sides:
        bucket = card if s.side == "card" else financial
        bucket[s.status] = bucket.get(s.status, 0) + s.count

    def cards_in(statuses: frozenset[CardStatus]) -> int:
        return sum(card.get(s.value, 0) for s in statuses)

    def accounts_in(statuses: frozenset[FinancialStatus]) -> int:
        return sum(financial.get(s.value, 0) for s in statuses)

    accepted = sum(
        by_state[s] for s in (ApplicationState.ACCEPTED, ApplicationState.COMPLETED, ApplicationState.FAILED)
    )
    steps = [
        (
            sum(by_state.values()),
            by_state[ApplicationState.SUBMITTED] + by_state[ApplicationState.AWAITING_AGREEMENT],
        ),
        (accepted, by_state[ApplicationState.ACCEPTED]),
        (accounts_in(ACCOUNT_EXISTS), financial.get(FinancialStatus.OPENED.value, 0)),
        (cards_in(_PRODUCED_OR_LATER), card.get(CardStatus.PRODUCED.value, 0)),
        (cards_in(_AT_BRANCH_OR_LATER), card.get(CardStatus.AT_BRANCH.value, 0)),
        (cards_in(COLLECTED_OR_LATER), card.get(CardStatus.ISSUED.value, 0)),
        (accounts_in(_WAS_ACTIVE), financial.get(FinancialStatus.ACTIVE.value, 0)),
    ]
    result = []
    previous: int | None = None
    for (key, label), (reached, now) in zip(FUNNEL_STEPS, steps, strict=True):
        share = reached / previous if previous else None
        result.append(FunnelStep(key, label, reached, now, share))
        previous = reached
    return result


@dataclass(frozen=True, slots=True)
class Aged:
    """Cards (or applications) waiting in one status: how many, per age bucket, and the oldest's age."""

    label: str
    total: int
    buckets: dict[str, int]
    oldest_days: int | None


def age(label: str, per_day: dict[date, int], today: date) -> Aged:
    """Bucket counts per day entered into ages in whole days (pure)."""
    buckets = {name: 0 for name, _, _ in AGE_BUCKETS}
    oldest: int | None = None
    for day, n in per_day.items():
        if not n:
            continue
        days = max((today - day).days, 0)
        oldest = days if oldest is None else max(oldest, days)
        for name, lo, hi in AGE_BUCKETS:
            if days >= lo and (hi is None or days < hi):
                buckets[name] += n
    return Aged(label, sum(per_day.values()), buckets, oldest)


@dataclass(frozen=True, slots=True)
class LifecycleBacklog:
    """One of the three backlogs and the statuses it is made of."""

    key: str  # bank, vendor, branch
    label: str
    total: int
    oldest_days: int | None
    buckets: dict[str, int]
    parts: list[Aged]


BACKLOGS: tuple[tuple[str, str], ...] = (
    ("bank", "Waiting for the bank"),
    ("vendor", "Waiting for the vendor"),
    ("branch", "At the branch, not yet collected"),
)


def _per_day(sides: list[SideCount], side: str, status: str) -> dict[date, int]:
    days: dict[date, int] = {}
    for s in sides:
        if s.side == side and s.status == status and s.since_day is not None:
            days[s.since_day] = days.get(s.since_day, 0) + s.count
    return days


def build_backlogs(
    sides: list[SideCount], ordered_opened: dict[date, int], today: date
) -> list[LifecycleBacklog]:
    """The bank's (account requested), the vendor's (ordered with the account opened, in production) and the
    branch's (produced and on its way, at the branch) backlogs with their ages (pure)."""
    parts = {
        "bank": [
            age("account opening requested", _per_day(sides, "financial", FinancialStatus.REQUESTED), today)
        ],
        "vendor": [
            age("ordered, account opened", ordered_opened, today),
            age("in production", _per_day(sides, "card", CardStatus.IN_PRODUCTION), today),
        ],
        "branch": [
            age("produced, on its way", _per_day(sides, "card", CardStatus.PRODUCED), today),
            age("at the branch", _per_day(sides, "card", CardStatus.AT_BRANCH), today),
        ],
    }
    result = []
    for key, label in BACKLOGS:
        aged = parts[key]
        oldest = [a.oldest_days for a in aged if a.oldest_days is not None]
        buckets = {name: sum(a.buckets[name] for a in aged) for name, _, _ in AGE_BUCKETS}
        result.append(
            LifecycleBacklog(key, label, sum(a.total for a in aged), max(oldest, default=None), buckets, aged)
        )
    return result


def today(conn: psycopg.Connection) -> date:
    """The database's current day in UTC, the day every age is counted to."""
    row = conn.execute("SELECT (now() AT TIME ZONE 'UTC')::date").fetchone()
    assert row is not None
    return date.fromisoformat(str(row[0]))


def lifecycle_backlogs(
    conn: psycopg.Connection, scope: Scope, filters: Filters = Filters()
) -> list[LifecycleBacklog]:
    """The three backlogs within the scope and filters."""
    return build_backlogs(
        side_counts(conn, scope, filters), ordered_with_account(conn, scope, filters), today(conn)
    )


@dataclass(frozen=True, slots=True)
class Reminder:
    """A branch holding cards its holders have not collected for longer than the reminder period."""

    branch_code: str
    cards: int
    oldest_days: int


def uncollected(
    conn: psycopg.Connection, scope: Scope, reminder_days: int, filters: Filters = Filters()
) -> list[Reminder]:
    """Per branch, the cards AT_BRANCH received more than `reminder_days` days ago, most first."""
    query = sql.SQL(
        "SELECT branch_code, sum(n)::bigint AS cards, ((now() AT TIME ZONE 'UTC')::date - min(since_day))"
        " AS oldest_days FROM ("
        " SELECT branch_code, since_day, sum(n) AS n FROM dashboard_card_counts {where}"
        " AND side = 'card' AND status = {at_branch}"
        " AND since_day < (now() AT TIME ZONE 'UTC')::date - {days}"
        " GROUP BY 1, 2 HAVING sum(n) <> 0) AS late"
        " GROUP BY 1 ORDER BY 2 DESC, 1"
    ).format(
        where=where(scope, filters),
        at_branch=sql.Literal(CardStatus.AT_BRANCH.value),
        days=sql.Literal(reminder_days),
    )
    with conn.cursor(row_factory=class_row(Reminder)) as cur:
        return cur.execute(query).fetchall()
