"""The funnel, the backlogs by age and the uncollected-card reminders, read from the trigger-kept summary of
migration 0031, against cards and accounts written straight into PostgreSQL (as the writers leave them)."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from issuance.domain.lifecycle import ApplicationState as A
from issuance.domain.lifecycle import CardStatus as C
from issuance.domain.lifecycle import FinancialStatus as F
from issuance.store import report_queries as rq
from issuance.store.db import connect
from tests.factories import BRANCH
from tests.fixtures_dashboard import fixed_vault
from tests.fixtures_lifecycle import seed_application, seed_card

OTHER_BRANCH = "BR-110105-002"


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    with connect(database_url, autocommit=True) as connection:
        yield connection


def _seed_every_step(conn: psycopg.Connection) -> None:
    vault = fixed_vault()
    seed_application(conn, vault, 1, A.SUBMITTED)
    seed_application(conn, vault, 2, A.REJECTED)
    seed_card(conn, vault, 3, C.ORDERED, F.REQUESTED, days_in_status=3)  # waiting for the bank
    seed_card(conn, vault, 4, C.ORDERED, F.OPENED, days_in_status=8)  # waiting for a vendor file
    seed_card(conn, vault, 5, C.IN_PRODUCTION, F.OPENED, days_in_status=1)
    seed_card(conn, vault, 6, C.PRODUCED, F.OPENED)
    seed_card(conn, vault, 7, C.AT_BRANCH, F.OPENED, days_in_status=45)  # due a reminder
    seed_card(conn, vault, 8, C.AT_BRANCH, F.OPENED, days_in_status=31, branch_code=OTHER_BRANCH)
    seed_card(conn, vault, 9, C.AT_BRANCH, F.OPENED, days_in_status=29)  # not yet
    seed_card(conn, vault, 10, C.ISSUED, F.OPENED, state=A.COMPLETED)
    seed_card(conn, vault, 11, C.ISSUED, F.ACTIVE, state=A.COMPLETED)
    seed_card(conn, vault, 12, C.CANCELLED, F.REFUSED, state=A.FAILED)


def test_funnel_counts_each_step_reached_and_now(conn: psycopg.Connection) -> None:
    _seed_every_step(conn)
    scope = rq.Scope.everything()
    funnel = {
        f.key: (f.reached, f.now)
        for f in rq.build_lifecycle_funnel(rq.state_counts(conn, scope), rq.side_counts(conn, scope))
    }
    assert funnel == {
        "submitted": (12, 1),
        "accepted": (10, 7),  # 7 accepted + 2 completed + 1 failed
        "account_opened": (8, 7),  # opened and not (yet) active, wherever the card is
        "produced": (6, 1),
        "at_branch": (5, 3),
        "collected": (2, 2),
        "savings_active": (1, 1),
    }


def test_backlogs_by_age(conn: psycopg.Connection) -> None:
    _seed_every_step(conn)
    backlogs = {b.key: b for b in rq.lifecycle_backlogs(conn, rq.Scope.everything())}
    bank, vendor, branch = backlogs["bank"], backlogs["vendor"], backlogs["branch"]
    assert (bank.total, bank.oldest_days, bank.buckets["1-6 days"]) == (1, 3, 1)
    assert [(p.label, p.total, p.oldest_days) for p in vendor.parts] == [
        ("ordered, account opened", 1, 8),
        ("in production", 1, 1),
    ]
    assert vendor.buckets == {
        "today": 0,
        "1-6 days": 1,
        "7-13 days": 1,
        "14-29 days": 0,
        "30 days or more": 0,
    }
    assert (branch.total, branch.oldest_days) == (4, 45)
    assert branch.buckets["30 days or more"] == 2 and branch.buckets["today"] == 1


def test_reminders_list_branches_with_cards_uncollected_too_long(conn: psycopg.Connection) -> None:
    _seed_every_step(conn)
    late = rq.uncollected(conn, rq.Scope.everything(), 30)
    assert [(r.branch_code, r.cards, r.oldest_days) for r in late] == [(BRANCH, 1, 45), (OTHER_BRANCH, 1, 31)]
    # A branch sees only its own.
    mine = rq.uncollected(conn, rq.Scope(rq.Role.BRANCH, branch_code=BRANCH), 30)
    assert [r.branch_code for r in mine] == [BRANCH]


def test_summary_follows_every_change_and_equals_the_tables(conn: psycopg.Connection) -> None:
    _seed_every_step(conn)
    # Writers move cards and accounts in any statement shape, one statement touching both included.
    conn.execute(
        "WITH moved AS (UPDATE cards SET status = %s, received_at = now(), updated_at = now()"
        " WHERE status = %s RETURNING application_id)"
        " UPDATE bank_accounts SET status = %s WHERE application_id IN (SELECT application_id FROM moved)",
        (C.AT_BRANCH.value, C.PRODUCED.value, F.ACTIVE.value),
    )
    conn.execute("DELETE FROM bank_accounts WHERE status = %s", (F.REFUSED.value,))
    rq.compact(conn)
    summary = {(s.side, s.status): 0 for s in rq.side_counts(conn, rq.Scope.everything())}
    for s in rq.side_counts(conn, rq.Scope.everything()):
        summary[s.side, s.status] += s.count
    direct = {
        ("card", str(s)): int(n) for s, n in conn.execute("SELECT status, count(*) FROM cards GROUP BY 1")
    }
    direct |= {
        ("financial", str(s)): int(n)
        for s, n in conn.execute("SELECT status, count(*) FROM bank_accounts GROUP BY 1")
    }
    assert summary == direct


def test_backlog_page_lists_the_branches_to_remind(conn: psycopg.Connection) -> None:
    from dashboard.reads import backlog

    _seed_every_step(conn)
    data = backlog(conn, rq.Scope(rq.Role.BRANCH, branch_code=OTHER_BRANCH), rq.Filters(), reminder_days=30)
    assert data["reminders"] == {
        "after_days": 30,
        "branches": [{"branch_code": OTHER_BRANCH, "cards": 1, "oldest_days": 31}],
    }
    assert {b["key"] for b in data["backlogs"]} == {"bank", "vendor", "branch"}
