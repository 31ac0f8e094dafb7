"""Access control of the dashboard: login, sessions, CSRF, throttling and per-role scope on every read."""

# ruff: noqa: F811  (pytest fixtures imported from tests.fixtures_dashboard)

from __future__ import annotations

import asyncio
import re
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from dashboard.app import create_app
from issuance.domain.lifecycle import FinancialStatus
from issuance.i18n import lang
from issuance.reason_text import state_label
from tests.fixtures_dashboard import PASSWORD, DashboardData, dashboard_data, dashboard_url  # noqa: F401

PAGES = ["/", "/reasons", "/backlog", "/runs", "/dead-letters", "/applications"]
API = ["/api/funnel", "/api/reasons", "/api/backlog", "/api/runs", "/api/dead-letters", "/api/me"]


@pytest.fixture
def client(dashboard_url: str) -> Iterator[httpx.Client]:
    # English pages: what this file reads on them is English (test_dashboard_languages.py covers both).
    with httpx.Client(base_url=dashboard_url, timeout=30, headers={"accept-language": "en"}) as c:
        yield c


def csrf(client: httpx.Client, path: str = "/login") -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert match, "no CSRF token on the page"
    return match.group(1)


def login(client: httpx.Client, username: str, password: str = PASSWORD) -> int:
    response = client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": csrf(client)},
        follow_redirects=False,
    )
    return response.status_code


def test_nothing_without_login(dashboard_data: DashboardData, client: httpx.Client) -> None:
    app_id = dashboard_data.application_of(dashboard_data.branch)
    for path in [*PAGES, f"/applications/{app_id}"]:
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/login"), path
        assert response.content == b""
    for path in [*API, f"/api/applications/{app_id}"]:
        response = client.get(path)
        assert response.status_code == 401, path
        assert response.json() == {"error": "login required"}
    assert client.get("/metrics").status_code == 401


def run_in_own_loop(coroutine: Coroutine[Any, Any, str]) -> str:
    """Run a coroutine on a fresh event loop in its own thread, whatever loop the main thread holds."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def test_session_cookie_is_strict_and_http_only_and_secure_over_tls(dashboard_data: DashboardData) -> None:
    async def set_cookie(https: bool) -> str:
        app = create_app(dashboard_data.config(https=https))
        base = "https://dashboard.test" if https else "http://dashboard.test"
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base) as ac:
            return (await ac.get("/login")).headers["set-cookie"].lower()

    tls = run_in_own_loop(set_cookie(True))
    assert "httponly" in tls and "samesite=strict" in tls and "secure" in tls
    plain = run_in_own_loop(set_cookie(False))
    assert "httponly" in plain and "samesite=strict" in plain and "secure" not in plain


def test_forms_need_the_csrf_token(dashboard_data: DashboardData, client: httpx.Client) -> None:
    client.get("/login")
    response = client.post(
        "/login", data={"username": "bureau", "password": PASSWORD}, follow_redirects=False
    )
    assert response.status_code == 403
    assert client.get("/api/me").status_code == 401
    assert login(client, "bureau") == 303
    assert client.post("/logout", data={}, follow_redirects=False).status_code == 403
    assert client.get("/api/me").json()["username"] == "bureau"
    token = csrf(client, "/")
    assert client.post("/logout", data={"csrf_token": token}, follow_redirects=False).status_code == 303
    assert client.get("/api/me").status_code == 401


def test_failed_logins_are_throttled_per_user(dashboard_data: DashboardData, client: httpx.Client) -> None:
    for _ in range(5):
        assert login(client, "bureau", "wrong") == 401
    # Locked now, even with the right password.
    assert login(client, "bureau") == 429
    assert client.get("/api/me").status_code == 401


def test_unknown_user_and_wrong_password_look_the_same(
    dashboard_data: DashboardData, client: httpx.Client
) -> None:
    assert login(client, "nobody", "x") == 401
    assert login(client, "bureau", "x") == 401


def test_bureau_counts_equal_sql(dashboard_data: DashboardData, client: httpx.Client) -> None:
    login(client, "bureau")
    funnel = client.get("/api/funnel").json()
    expected = dashboard_data.sql_counts()
    assert {k: v for k, v in funnel["by_state"].items() if v} == expected
    assert funnel["total"] == sum(expected.values()) == 1500
    steps = {row["key"]: row["reached"] for row in funnel["funnel"]}
    assert steps["collected"] == dashboard_data.sql_scalar(
        "SELECT count(*) FROM cards WHERE status = 'ISSUED'"
    )
    assert steps["savings_active"] == dashboard_data.sql_scalar(
        "SELECT count(*) FROM bank_accounts WHERE status = 'ACTIVE'"
    )
    branch = dashboard_data.branch
    filtered = client.get(f"/api/funnel?branch={branch}").json()["by_state"]
    assert {k: v for k, v in filtered.items() if v} == dashboard_data.sql_counts(
        "branch_code = %s", (branch,)
    )


def test_branch_user_sees_only_its_branch(dashboard_data: DashboardData, client: httpx.Client) -> None:
    data = dashboard_data
    assert login(client, "branch") == 303
    own = client.get("/api/funnel").json()["by_state"]
    assert {k: v for k, v in own.items() if v} == data.sql_counts("branch_code = %s", (data.branch,))
    # Editing parameters and URLs does not reach another branch.
    for path in [
        f"/api/funnel?branch={data.other_branch}",
        f"/api/reasons?branch={data.other_branch}",
        f"/api/backlog?branch={data.other_branch}",
        f"/api/runs?branch={data.other_branch}",
        f"/api/dead-letters?branch={data.other_branch}",
    ]:
        assert client.get(path).status_code == 403, path
    assert client.get(f"/?branch={data.other_branch}").status_code == 403
    other_app = data.application_of(data.other_branch)
    assert client.get(f"/api/applications/{other_app}").status_code == 404
    page = client.get(f"/applications/{other_app}")
    assert page.status_code == 404 and "ID " not in page.text
    own_app = data.application_of(data.branch)
    assert client.get(f"/api/applications/{own_app}").json()["branch_code"] == data.branch
    # Filter choices offer only the own branch; run-wide numbers are hidden.
    assert data.other_branch not in client.get("/").text
    runs = client.get("/api/runs").json()["runs"]
    assert runs and all(r["counters"] is None for r in runs)
    # Dead letters of other branches are not counted.
    letters = client.get("/api/dead-letters").json()
    assert all(s["branch_code"] == data.branch for s in letters["samples"])


def test_bank_user_sees_only_its_bank(dashboard_data: DashboardData, client: httpx.Client) -> None:
    data = dashboard_data
    assert login(client, "bank") == 303
    own = client.get("/api/funnel").json()["by_state"]
    assert {k: v for k, v in own.items() if v} == data.sql_counts("bank_code = %s", (data.bank,))
    other_bank = next(k for _, k, _ in data.filled.branches if k != data.bank)
    assert client.get(f"/api/funnel?bank={other_bank}").status_code == 403
    # A branch of another bank is only a narrower filter: the bank scope still applies.
    total = client.get(f"/api/funnel?branch={data.other_branch}").json()["total"]
    assert total == sum(
        data.sql_counts("bank_code = %s AND branch_code = %s", (data.bank, data.other_branch)).values()
    )


def test_application_shows_masked_personal_data_only(
    dashboard_data: DashboardData, client: httpx.Client
) -> None:
    import psycopg

    data = dashboard_data
    app_id = data.application_of(data.branch)
    with psycopg.connect(data.database_url) as conn:
        row = conn.execute(
            "SELECT id_number_enc, name_enc, phone_enc FROM applications WHERE application_id = %s", (app_id,)
        ).fetchone()
    assert row is not None
    id_number, name, phone = (data.vault.decrypt(v) for v in row)
    login(client, "bureau")
    for body in (client.get(f"/applications/{app_id}").text, client.get(f"/api/applications/{app_id}").text):
        assert id_number not in body and phone not in body and name not in body
        assert id_number[:3] in body and id_number[-2:] in body
    found = client.get(f"/api/applications/{app_id}").json()
    assert found["applicant"]["id_number"].count("*") >= 10
    assert found["history"], "history is shown"


def test_dead_letters_never_carry_the_payload(dashboard_data: DashboardData, client: httpx.Client) -> None:
    login(client, "bureau")
    letters = client.get("/api/dead-letters").json()
    assert letters["by_reason"] and letters["samples"]
    assert all("payload" not in s and "payload_enc" not in s for s in letters["samples"])
    assert {s["status"] for s in letters["samples"]} == {"OPEN"}
    assert "<th>Status</th>" in client.get("/dead-letters").text


def test_metrics_need_a_token_or_a_bureau_login(dashboard_data: DashboardData, client: httpx.Client) -> None:
    assert client.get("/metrics", headers={"authorization": "Bearer nope"}).status_code == 401
    response = client.get("/metrics", headers={"authorization": "Bearer scrape-me"})
    assert response.status_code == 200
    completed = dashboard_data.sql_counts()["COMPLETED"]
    assert f'issuance_applications{{state="COMPLETED"}} {float(completed)}' in response.text
    assert (
        "issuance_outbox_unpublished" in response.text
        and "issuance_last_run_duration_seconds" in response.text
    )
    login(client, "branch")
    assert client.get("/metrics").status_code == 401


@pytest.mark.parametrize("path", ["/?date=yesterday", "/api/funnel?date=2026-13-01"])
def test_bad_filters_are_refused(dashboard_data: DashboardData, client: httpx.Client, path: str) -> None:
    login(client, "bureau")
    assert client.get(path).status_code == 400


def test_application_page_shows_both_sides_of_the_card_masked(
    dashboard_data: DashboardData, client: httpx.Client
) -> None:
    import psycopg

    from tests.fixtures_dashboard import fixed_vault

    with psycopg.connect(dashboard_data.database_url) as conn:
        row = conn.execute(
            "SELECT c.application_id, c.card_number, b.account_number_enc FROM cards c"
            " JOIN bank_accounts b USING (application_id) WHERE c.status = 'ISSUED' AND b.status = 'ACTIVE'"
            " ORDER BY 1 LIMIT 1"
        ).fetchone()
    assert row is not None
    app_id, card_number, sealed = row
    account = fixed_vault().decrypt(sealed)
    login(client, "bureau")
    shown = client.get(f"/api/applications/{app_id}").json()
    assert (shown["state"], shown["card"]["status"], shown["card"]["financial_status"]) == (
        "COMPLETED",
        "ISSUED",
        "ACTIVE",
    )
    assert shown["card"]["card_number"] == card_number
    assert shown["card"]["account_number"].count("*") >= 9 and account not in str(shown)
    assert [s["to"] for s in shown["steps"] if s["side"] == "application"] == ["ACCEPTED", "COMPLETED"]
    page = client.get(f"/applications/{app_id}").text
    assert state_label(FinancialStatus.ACTIVE, lang("en")) in page
    assert card_number in page and account not in page
    assert 'id="steps"' in page
