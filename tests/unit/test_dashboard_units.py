"""Pure parts of the dashboard: the funnel, the scope clause, throttling, masking, redirects."""

from __future__ import annotations

from datetime import date

import pytest
from psycopg import sql

from dashboard.app import _safe_next, script_json
from dashboard.security import (
    BoundedLRU,
    LoginThrottle,
    Refusal,
    csrf_valid,
    login_csrf_token,
    new_login_nonce,
    session_csrf_token,
)
from issuance.domain.lifecycle import ApplicationState, CardStatus, FinancialStatus
from issuance.store.dashboard_queries import build_funnel, mask_detail
from issuance.store.report_queries import Filters, Role, Scope, SideCount, StateCount, build_backlogs, where


def rendered(clause: sql.Composed) -> str:
    return clause.as_string(None)


def test_funnel_counts_and_shares() -> None:
    counts = [
        StateCount(ApplicationState.SUBMITTED, "NEW_CARD", "", 5),
        StateCount(ApplicationState.REJECTED, "NEW_CARD", "VERIFICATION", 10),
        StateCount(ApplicationState.REJECTED, "NEW_CARD", "AGREEMENT", 5),
        StateCount(ApplicationState.AWAITING_AGREEMENT, "NEW_CARD", "", 10),
        StateCount(ApplicationState.ACCEPTED, "FINANCIAL_ACTIVATION", "", 5),
        StateCount(ApplicationState.ACCEPTED, "NEW_CARD", "", 20),
        StateCount(ApplicationState.COMPLETED, "NEW_CARD", "", 40),
        StateCount(ApplicationState.FAILED, "NEW_CARD", "", 5),
    ]
    sides = [
        SideCount("card", CardStatus.ORDERED, date(2026, 11, 1), 8),
        SideCount("card", CardStatus.IN_PRODUCTION, date(2026, 11, 1), 4),
        SideCount("card", CardStatus.PRODUCED, date(2026, 11, 1), 3),
        SideCount("card", CardStatus.AT_BRANCH, date(2026, 11, 1), 5),
        SideCount("card", CardStatus.ISSUED, None, 40),
        SideCount("card", CardStatus.CANCELLED, None, 5),
        SideCount("financial", FinancialStatus.REQUESTED, date(2026, 11, 1), 6),
        SideCount("financial", FinancialStatus.OPENED, None, 44),
        SideCount("financial", FinancialStatus.ACTIVE, None, 10),
        SideCount("financial", FinancialStatus.REFUSED, None, 5),
    ]
    funnel = build_funnel(counts, sides)
    rows = {r.key: r for r in funnel.rows}
    assert [r.key for r in funnel.rows] == [
        "submitted",
        "accepted",
        "account_opened",
        "produced",
        "at_branch",
        "collected",
        "savings_active",
    ]
    assert funnel.total == 100
    # New cards only (the activation is not a step of a new card's journey); failed ones got this far.
    assert (rows["submitted"].reached, rows["submitted"].now) == (95, 15)
    assert (rows["accepted"].reached, rows["accepted"].now) == (65, 20)
    assert rows["account_opened"].reached == 54  # opened or active; not requested, not refused
    assert rows["produced"].reached == 48 and rows["at_branch"].reached == 45  # the ones past it included
    assert (rows["collected"].reached, rows["savings_active"].reached) == (40, 10)
    assert rows["savings_active"].of_previous == pytest.approx(10 / 40)
    assert (funnel.rejected_in_verification, funnel.rejected_for_agreement) == (10, 5)
    assert funnel.by_state[ApplicationState.REJECTED] == 15
    assert sum(funnel.by_state.values()) == 100


def test_empty_funnel_has_no_shares() -> None:
    funnel = build_funnel([], [])
    assert funnel.total == 0 and all(r.of_previous is None for r in funnel.rows)


def test_backlogs_age_in_buckets_and_name_the_oldest() -> None:
    today = date(2026, 11, 30)
    sides = [
        SideCount("financial", FinancialStatus.REQUESTED, date(2026, 11, 29), 2),
        SideCount("card", CardStatus.IN_PRODUCTION, date(2026, 11, 30), 3),
        SideCount("card", CardStatus.AT_BRANCH, date(2026, 10, 1), 1),
        SideCount("card", CardStatus.AT_BRANCH, date(2026, 11, 20), 4),
        SideCount("card", CardStatus.ISSUED, None, 99),  # not a backlog
    ]
    backlogs = {b.key: b for b in build_backlogs(sides, {date(2026, 11, 15): 5}, today)}
    assert (backlogs["bank"].total, backlogs["bank"].oldest_days) == (2, 1)
    assert backlogs["vendor"].total == 8 and backlogs["vendor"].oldest_days == 15
    assert backlogs["vendor"].buckets["today"] == 3 and backlogs["vendor"].buckets["14-29 days"] == 5
    assert backlogs["branch"].buckets == {
        "today": 0,
        "1-6 days": 0,
        "7-13 days": 4,
        "14-29 days": 0,
        "30 days or more": 1,
    }
    assert backlogs["branch"].oldest_days == 60


def test_scope_is_always_in_the_where_clause() -> None:
    branch = Scope(Role.BRANCH, branch_code="BR-1")
    clause = rendered(where(branch, Filters(branch_code="BR-2", business_date=date(2026, 11, 1))))
    assert "branch_code = 'BR-1'" in clause and "branch_code = 'BR-2'" in clause
    assert "bank_code = 'ICBC'" in rendered(where(Scope(Role.BANK, bank_code="ICBC")))
    assert rendered(where(Scope.everything())) == "WHERE TRUE"
    # Quoting is psycopg's: a hostile value stays a literal.
    assert "'x'' OR ''1''=''1'" in rendered(where(Scope.everything(), Filters(area_code="x' OR '1'='1")))


def test_scope_permits_only_its_own_branch_or_bank() -> None:
    branch = Scope(Role.BRANCH, branch_code="BR-1")
    assert branch.permits(Filters()) and branch.permits(Filters(branch_code="BR-1"))
    assert not branch.permits(Filters(branch_code="BR-2"))
    bank = Scope(Role.BANK, bank_code="ICBC")
    assert bank.permits(Filters(branch_code="BR-2")) and not bank.permits(Filters(bank_code="CCB"))
    with pytest.raises(ValueError):
        Scope(Role.BRANCH)


def fail(throttle: LoginThrottle, username: str, address: str) -> None:
    assert throttle.admit(username, address) is None
    throttle.done(username, address, succeeded=False)


def test_throttle_locks_user_and_address_after_five_failures() -> None:
    now = [0.0]
    throttle = LoginThrottle(clock=lambda: now[0])
    for _ in range(5):
        fail(throttle, "li", "10.0.0.1")
    refusal = throttle.admit("li", "10.0.0.9")  # the user, from anywhere
    assert isinstance(refusal, Refusal) and refusal.locked and refusal.retry_after_header == str(15 * 60)
    assert throttle.admit("wang", "10.0.0.1") is not None  # the address, for anyone
    assert throttle.admit("wang", "10.0.0.2") is None
    throttle.done("wang", "10.0.0.2", succeeded=True)
    now[0] += 15 * 60 + 1
    assert throttle.admit("li", "10.0.0.1") is None


def test_parallel_guesses_for_one_account_are_refused_not_checked() -> None:
    throttle = LoginThrottle()
    assert throttle.admit("li", "10.0.0.1") is None  # a check under way
    for address in ("10.0.0.2", "10.0.0.3"):
        refusal = throttle.admit("LI ", address)  # the same account, spelled otherwise
        assert refusal is not None and not refusal.locked and refusal.retry_after_header == "1"
    assert throttle.admit("wang", "10.0.0.1") is not None  # the same address
    throttle.done("li", "10.0.0.1", succeeded=False)
    assert throttle.admit("li", "10.0.0.2") is None


def test_only_a_few_password_checks_run_at_once() -> None:
    throttle = LoginThrottle(checks_at_once=2)
    admitted = [throttle.admit(f"user{i}", f"10.0.1.{i}") is None for i in range(16)]
    assert admitted.count(True) == 2 and throttle.peak_checks == 2


def test_a_flood_of_names_and_addresses_keeps_the_throttle_bounded() -> None:
    throttle = LoginThrottle(max_keys=100, max_failures=2)
    for i in range(5_000):
        user, address = f"guess-{i}", f"10.{i // 65536}.{i // 256 % 256}.{i % 256}"
        for _ in range(2):
            if throttle.admit(user, address) is None:
                throttle.done(user, address, succeeded=False)
    assert throttle.tracked_keys() <= 2 * 100
    # The newest lockouts are the ones kept.
    assert throttle.admit("guess-4999", "10.9.9.9") is not None


def test_bounded_lru_drops_the_least_recently_used() -> None:
    lru: BoundedLRU[int] = BoundedLRU(2)
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.get("a") == 1
    lru.put("c", 3)
    assert (lru.get("a"), lru.get("b"), lru.get("c"), len(lru)) == (1, None, 3, 2)


def test_csrf_tokens_are_bound_to_their_cookie_or_session() -> None:
    nonce = new_login_nonce()
    token = login_csrf_token("secret", nonce)
    assert csrf_valid(login_csrf_token("secret", nonce), token)
    assert not csrf_valid(login_csrf_token("secret", new_login_nonce()), token)
    assert not csrf_valid(login_csrf_token("other secret", nonce), token)
    assert not csrf_valid(token, None) and not csrf_valid(None, token)
    # A login form's token is no session's token, even for the same random value.
    assert session_csrf_token("secret", nonce) != token


def test_details_hide_long_digit_runs() -> None:
    assert mask_detail("id 110105198001011238 bad") == "id 11" + "*" * 16 + " bad"
    assert mask_detail("field 17 of 2026") == "field 17 of 2026"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/runs?date=2026-11-01", "/runs?date=2026-11-01"),
        ("//evil.example", "/"),
        ("https://x", "/"),
        (None, "/"),
    ],
)
def test_only_local_redirects_after_login(value: str | None, expected: str) -> None:
    assert _safe_next(value) == expected


def test_json_in_pages_cannot_close_the_script_element() -> None:
    assert "</script>" not in script_json({"x": "</script><script>alert(1)</script>"})
