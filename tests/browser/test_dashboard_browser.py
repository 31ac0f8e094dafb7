"""The dashboard in a real browser: what the bureau, a branch and a stranger can and cannot see."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.fixtures_dashboard import PASSWORD, DashboardData, report_counts

PAGES = {
    "overview": "/",
    "reasons": "/reasons",
    "backlog": "/backlog",
    "runs": "/runs",
    "dead-letters": "/dead-letters",
}


def log_in(browser: Any, base: str, username: str) -> Any:
    """A new browser page, logged in through the login form."""
    context = browser.new_context(base_url=base, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto("/")
    assert page.url.endswith("/login?next=/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(f"{base}/")
    return page


def number(text: str) -> int:
    return int(text.replace(",", "").strip())


def test_bureau_sees_the_funnel_of_issuance_report(
    browser: Any,
    dashboard_url: str,
    dashboard_data: DashboardData,
    cli_env: dict[str, str],
    screenshots: Path,
) -> None:
    page = log_in(browser, dashboard_url, "bureau")
    shown = {
        row.get_attribute("data-state"): number(row.locator("td").inner_text())
        for row in page.locator("#by-state tbody tr").all()
    }
    # The same numbers as `issuance report --json` on the same database, and as counting directly.
    expected = dashboard_data.sql_counts()
    reported = report_counts(cli_env)
    assert reported is not None, "`issuance report` is missing"
    assert {k: v for k, v in reported.items() if v} == expected
    assert {k: v for k, v in shown.items() if v} == expected
    assert number(page.locator("#total").inner_text()) == sum(expected.values())
    # The seven lifecycle steps, the collected cards as counted directly.
    keys = [row.get_attribute("data-key") for row in page.locator("#funnel tbody tr").all()]
    assert keys == [
        "submitted",
        "accepted",
        "account_opened",
        "produced",
        "at_branch",
        "collected",
        "savings_active",
    ]
    collected = dashboard_data.sql_scalar("SELECT count(*) FROM cards WHERE status = 'ISSUED'")
    assert number(page.locator("#funnel tr[data-key=collected] td.reached").inner_text()) == collected
    # Charts are drawn from the app's own copy of Chart.js (no internet on bureau networks).
    assert page.evaluate("typeof Chart") == "function"
    assert page.locator("#funnel-chart").bounding_box()["height"] > 100

    for name, path in PAGES.items():
        page.goto(path)
        assert page.locator("h1").count() == 1
        page.screenshot(path=str(screenshots / f"bureau-{name}.png"), full_page=True)
    page.goto("/backlog")
    for key in ("bank", "vendor", "branch", "agreement"):
        assert page.locator(f"#backlog-{key} tbody tr").count() == 5  # one row per age bucket
    assert page.locator("#reminders tbody tr").count() >= 1
    app_id = dashboard_data.application_with_card("ISSUED")
    page.goto("/applications")
    page.fill("input[name=id]", app_id)
    page.click("form[action='/applications'] button")
    assert page.locator("#steps tbody tr").count() >= 2
    assert "*" in page.locator("#application dd").nth(1).inner_text()
    assert page.locator("#card .card-status code").inner_text() == "ISSUED"
    assert "*" in page.locator("#card .financial-status").inner_text()  # the account number, masked
    page.screenshot(path=str(screenshots / "bureau-application.png"), full_page=True)
    page.goto(f"/?bank={dashboard_data.bank}&date={dashboard_data.filled.business_dates[-2]}")
    page.screenshot(path=str(screenshots / "bureau-overview-filtered.png"), full_page=True)
    page.context.close()


def test_branch_user_cannot_reach_another_branch(
    browser: Any, dashboard_url: str, dashboard_data: DashboardData, screenshots: Path
) -> None:
    data = dashboard_data
    page = log_in(browser, dashboard_url, "branch")
    own = {k: v for k, v in data.sql_counts("branch_code = %s", (data.branch,)).items()}
    assert number(page.locator("#total").inner_text()) == sum(own.values())
    options = page.locator("select[name=branch] option").all_inner_texts()
    assert options and all(data.branch in o for o in options)
    page.screenshot(path=str(screenshots / "branch-overview.png"), full_page=True)

    # Editing the URL: another branch's funnel, another branch's application.
    response = page.goto(f"/?branch={data.other_branch}")
    assert response is not None and response.status == 403
    assert "outside your access" in page.content()
    page.screenshot(path=str(screenshots / "branch-other-branch-refused.png"), full_page=True)
    other_app = data.application_of(data.other_branch)
    response = page.goto(f"/applications/{other_app}")
    assert response is not None and response.status == 404
    assert page.locator("#application").count() == 0
    # Editing API parameters, with the logged-in session's cookies.
    for path in (f"/api/funnel?branch={data.other_branch}", f"/api/dead-letters?branch={data.other_branch}"):
        assert page.request.get(path).status == 403
    assert page.request.get(f"/api/applications/{other_app}").status == 404
    assert page.request.get("/metrics").status == 401
    for name, path in PAGES.items():
        response = page.goto(path)
        assert response is not None and response.status == 200
        assert data.other_branch not in page.content()
        page.screenshot(path=str(screenshots / f"branch-{name}.png"), full_page=True)
    page.context.close()


def test_no_data_without_login(
    browser: Any, dashboard_url: str, dashboard_data: DashboardData, screenshots: Path
) -> None:
    context = browser.new_context(base_url=dashboard_url)
    page = context.new_page()
    app_id = dashboard_data.application_of(dashboard_data.branch)
    for path in [*PAGES.values(), f"/applications/{app_id}"]:
        page.goto(path)
        assert "/login" in page.url
        assert page.locator("#total, #funnel, #application, table").count() == 0
    page.screenshot(path=str(screenshots / "login.png"), full_page=True)
    for path in ("/api/funnel", "/api/runs", f"/api/applications/{app_id}", "/metrics"):
        response = page.request.get(path)
        assert response.status == 401, path
        assert app_id not in response.text()
    context.close()
