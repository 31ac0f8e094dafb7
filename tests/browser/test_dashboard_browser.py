"""The dashboard in a real browser: what the bureau, a branch and a stranger can and cannot see."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dashboard import labels
from issuance import i18n
from tests.fixtures_dashboard import PASSWORD, DashboardData, report_counts

PAGES = {
    "overview": "/",
    "reasons": "/reasons",
    "backlog": "/backlog",
    "runs": "/runs",
    "dead-letters": "/dead-letters",
}


def log_in(browser: Any, base: str, username: str, locale: str = "en-US") -> Any:
    """A new browser page, logged in through the login form, in a browser set to `locale` (its
    Accept-Language: the tests below that read English text run in an English browser)."""
    context = browser.new_context(base_url=base, viewport={"width": 1280, "height": 900}, locale=locale)
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
    context = browser.new_context(base_url=dashboard_url, locale="en-US")
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


# The heading of each page and the labels a reader must find on it, as English msgids of the catalogs.
HEADINGS = {
    "overview": "Overview: from application to active savings function",
    "reasons": "Why applications are rejected",
    "backlog": "Backlog: what is still waiting, by age",
    "runs": "Nightly runs (latest 14)",
    "dead-letters": "Unreadable messages (dead letters)",
}
NAVIGATION = ["Overview", "Rejection reasons", "Backlog", "Nightly runs", "Unreadable messages"]
COLUMNS = {
    "overview": ["Step", "Reached", "Now here", "Of previous"],
    "reasons": ["Reason", "Code", "Applications", "Share of rejected"],
    "backlog": ["Waiting for (days)", "Branch", "Cards", "Oldest (days)"],
    "runs": ["Run", "Business date", "Status", "Reconciliation", "Duration"],
    "dead-letters": ["Problem", "Code", "Messages"],
}


@pytest.mark.parametrize(("code", "locale"), [("zh_CN", "zh-CN"), ("en", "en-US")])
def test_every_page_in_the_browsers_language(
    browser: Any,
    dashboard_url: str,
    dashboard_data: DashboardData,
    screenshots: Path,
    code: str,
    locale: str,
) -> None:
    lang = i18n.lang(code)

    def t(msgid: str) -> str:
        return lang.gettext(msgid, "dashboard")

    login = browser.new_context(
        base_url=dashboard_url, viewport={"width": 1280, "height": 900}, locale=locale
    )
    first = login.new_page()
    first.goto("/login")
    assert first.locator("html").get_attribute("lang") == code.replace("_", "-")
    assert first.locator("h1").inner_text() == t("Sign in")
    first.screenshot(path=str(screenshots / f"login.{code}.png"), full_page=True)
    login.close()

    page = log_in(browser, dashboard_url, "bureau", locale)
    for name, path in PAGES.items():
        page.goto(path)
        assert page.locator("html").get_attribute("lang") == code.replace("_", "-")
        assert page.locator("h1").inner_text() == t(HEADINGS[name])
        assert page.locator("nav.tabs a").all_inner_texts()[:5] == [t(label) for label in NAVIGATION]
        headers = page.locator("table.numbers thead th").all_inner_texts()
        for column in COLUMNS[name]:
            assert t(column) in headers, (name, column)
        page.screenshot(path=str(screenshots / f"{name}.{code}.png"), full_page=True)
    # The charts are named from the page: the funnel's steps and the backlog's ages in the page's language.
    page.goto("/")
    steps = page.evaluate("Chart.getChart('funnel-chart').data.labels")
    assert steps == [labels.Labels(lang).step(key) for key in labels.FUNNEL_STEPS]
    assert page.evaluate("Chart.getChart('funnel-chart').options.locale") == code.replace("_", "-")
    page.goto("/backlog")
    ages = page.evaluate("Chart.getChart('backlog-bank-chart').data.labels")
    assert ages == [labels.Labels(lang).age(bucket) for bucket in labels.AGES]
    page.goto("/runs")
    series = page.evaluate("Chart.getChart('runs-chart').data.datasets.map(d => d.label)")
    assert labels.Labels(lang).state("COMPLETED") in series
    # One application: its states in the reasons catalogue's words.
    app_id = dashboard_data.application_with_card("ISSUED")
    page.goto(f"/applications/{app_id}")
    assert page.locator("#card .card-status .badge").inner_text() == labels.Labels(lang).card_status("ISSUED")
    page.screenshot(path=str(screenshots / f"application.{code}.png"), full_page=True)
    page.context.close()


def test_the_language_switch(browser: Any, dashboard_url: str, dashboard_data: DashboardData) -> None:
    page = log_in(browser, dashboard_url, "bureau", "zh-CN")
    page.goto("/runs")
    zh = i18n.lang("zh_CN")
    assert page.locator("h1").inner_text() == zh.gettext("Nightly runs (latest 14)", "dashboard")
    page.click("form.lang-switch button[value=en]")
    page.wait_for_url(f"{dashboard_url}/runs")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("h1").inner_text() == "Nightly runs (latest 14)"
    page.goto("/")  # the choice stays, though the browser asks for Chinese
    assert page.locator("h1").inner_text() == HEADINGS["overview"]
    page.click("form.lang-switch button[value=zh_CN]")
    page.wait_for_url(f"{dashboard_url}/")
    assert page.locator("h1").inner_text() == zh.gettext(HEADINGS["overview"], "dashboard")
    page.context.close()
