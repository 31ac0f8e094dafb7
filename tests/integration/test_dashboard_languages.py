"""The dashboard in Chinese (the default) and English: every page in both, the reader's choice over the
browser's, the browser's over the setting, and the JSON API the same in both."""

# ruff: noqa: F811  (pytest fixtures imported from tests.fixtures_dashboard)

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import psycopg
import pytest

from dashboard.language import LANG_COOKIE
from issuance.i18n import lang
from tests.fixtures_dashboard import PASSWORD, DashboardData, dashboard_data, dashboard_url, serve  # noqa: F401

ZH = {"accept-language": "zh-CN,zh;q=0.9,en;q=0.8"}
EN = {"accept-language": "en-US,en;q=0.9"}

# Labels a reader sees on each page (English msgids of the dashboard catalog): on the zh_CN page none may
# remain in English and each must show in Chinese; on the en page each shows as it is.
KEY_LABELS: dict[str, list[str]] = {
    "/": [
        "Overview: from application to active savings function",
        "Applications received",
        "Cards collected",
        "Waiting for agreement",
        "Funnel",
        "Now here",
        "Of previous",
        "Applications by state",
        "Rejection reasons",
        "Nightly runs",
        "Unreadable messages",
        "Find an application",
        "Sign out",
        "Issuing area",
        "All branches",
        "Clear filters",
    ],
    "/reasons": ["Why applications are rejected", "Share of rejected", "Rejection reasons chart"],
    "/backlog": [
        "Backlog: what is still waiting, by age",
        "Waiting for the bank",
        "Waiting for the vendor",
        "At the branch, not yet collected",
        "Waiting for (days)",
        "30 days or more",
        "Cards to remind holders of",
        "in production",
    ],
    "/runs": [
        "Nightly runs (latest 14)",
        "Reconciliation",
        "Records read",
        "Throughput",
        "Counts per stage",
        "Decisions (applications first read in this run, by state now)",
    ],
    "/dead-letters": ["Unreadable messages (dead letters)", "Latest examples", "What was wrong"],
    "/applications/{app}": [
        "Applicant",
        "Branch / bank / area",
        "Social security side",
        "Savings function",
        "Reasons / detail",
        "The card",
    ],
    "/login": [
        "Sign in",
        "Username",
        "Password",
        "Bureau officials see every branch and bank; branch and bank staff see their own applications only.",
    ],
}
# Texts of the reasons catalog the pages show (state labels), checked the same way.
STATE_LABELS = ["Completed", "Rejected", "Waiting for the signed agreement"]


def visible_text(html: str) -> str:
    """What a reader sees or hears (a chart's aria-label): no scripts (the page data keeps the API's English),
    no tags, entities read."""
    html = re.sub(r"<script\b.*?</script>", " ", html, flags=re.S)
    html = re.sub(r'aria-label="([^"]*)"', r"> \1 <", html)
    text = re.sub(r"<[^>]+>", " ", html)
    text = text.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">").replace("&#39;", "'")
    return re.sub(r"\s+", " ", text)


def shown(label: str, text: str) -> bool:
    """True when the label is on the page as words of its own (not inside a longer word)."""
    return re.search(rf"(?<![A-Za-z]){re.escape(label)}(?![A-Za-z])", text) is not None


def csrf(client: httpx.Client, path: str = "/login") -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert match, "no CSRF token on the page"
    return match.group(1)


@contextmanager
def logged_in(base: str, username: str, headers: dict[str, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base, timeout=30, headers=headers) as client:
        response = client.post(
            "/login",
            data={"username": username, "password": PASSWORD, "csrf_token": csrf(client)},
            follow_redirects=False,
        )
        assert response.status_code == 303
        yield client


@pytest.fixture
def clients(dashboard_url: str) -> Iterator[dict[str, httpx.Client]]:
    """The bureau logged in twice: a Chinese browser and an English one."""
    with logged_in(dashboard_url, "bureau", ZH) as zh, logged_in(dashboard_url, "bureau", EN) as en:
        yield {"zh_CN": zh, "en": en}


def page_paths(data: DashboardData) -> dict[str, str]:
    return {
        template: template.replace("{app}", data.application_with_card("ISSUED")) for template in KEY_LABELS
    }


def test_every_page_in_both_languages(
    dashboard_data: DashboardData, clients: dict[str, httpx.Client]
) -> None:
    zh = lang("zh_CN")
    paths = page_paths(dashboard_data)
    for template, path in paths.items():
        query = "?date=" + str(dashboard_data.filled.business_dates[-1]) if template == "/" else ""
        for code, client in clients.items():
            if template == "/login":
                client = httpx.Client(base_url=str(client.base_url), headers=dict(client.headers))
            response = client.get(path + query)
            assert response.status_code == 200, (path, code)
            html = response.text
            assert f'<html lang="{code.replace("_", "-")}">' in html, (path, code)
            text = visible_text(html)
            labels = KEY_LABELS[template] + (STATE_LABELS if template == "/" else [])
            for label in labels:
                domain = "reasons" if label in STATE_LABELS else "dashboard"
                translated = zh.gettext(label, domain)
                assert translated != label, f"no Chinese for {label!r}"
                if code == "zh_CN":
                    assert not shown(label, text), f"{path}: English {label!r} left on the Chinese page"
                    assert translated in text, f"{path}: {translated!r} missing"
                else:
                    assert shown(label, text), f"{path}: {label!r} missing on the English page"
                    assert translated not in text, f"{path}: Chinese {translated!r} on the English page"


def test_numbers_dates_and_reasons_as_chinese_readers_expect(
    dashboard_data: DashboardData, clients: dict[str, httpx.Client]
) -> None:
    zh, en = clients["zh_CN"], clients["en"]
    total = zh.get("/api/funnel").json()["total"]
    assert total >= 1000
    for client in (zh, en):
        assert f'id="total">{total:,}<' in client.get("/").text  # thousands separators in both
    day = dashboard_data.filled.business_dates[-1]
    assert f"{day.year}年{day.month}月{day.day}日" in zh.get("/").text  # the filter's business dates
    assert day.isoformat() in visible_text(en.get("/").text)
    # Times in business time, as Chinese forms write them.
    app_page = zh.get(f"/applications/{dashboard_data.application_with_card('ISSUED')}").text
    assert re.search(r"\d{4}年\d{1,2}月\d{1,2}日 \d\d:\d\d", app_page)
    # Rejection reasons: the reason catalogue's Chinese, what the counter clerk reads.
    reasons = zh.get("/api/reasons").json()["reasons"]
    assert reasons
    from issuance.reason_text import reason_message

    page = zh.get("/reasons").text
    for r in reasons:
        assert reason_message(r["reason"], lang("zh_CN")) in page
    # The chart labels come from the page, in its language.
    labels_block = re.search(r'<script type="application/json" id="page-labels">(.*?)</script>', page, re.S)
    assert labels_block and reason_message(reasons[0]["reason"], lang("zh_CN")) in labels_block.group(1)
    assert '"locale": "zh-CN"' in labels_block.group(1)


def test_the_api_is_the_same_in_both_languages(
    dashboard_data: DashboardData, clients: dict[str, httpx.Client]
) -> None:
    app_id = dashboard_data.application_with_card("ISSUED")
    for path in ["/api/funnel", "/api/reasons", "/api/backlog", "/api/runs", f"/api/applications/{app_id}"]:
        assert clients["zh_CN"].get(path).json() == clients["en"].get(path).json(), path
    assert clients["zh_CN"].get("/api/nothing-here").json() == {"error": "not found"}


def test_the_readers_choice_wins_over_the_browser(dashboard_url: str, dashboard_data: DashboardData) -> None:
    with logged_in(dashboard_url, "bureau", ZH) as client:
        assert '<html lang="zh-CN">' in client.get("/runs").text
        token = csrf(client, "/runs")
        chosen = client.post(
            "/language", data={"csrf_token": token, "lang": "en", "next": "/runs"}, follow_redirects=False
        )
        assert chosen.status_code == 303 and chosen.headers["location"] == "/runs"
        cookie = chosen.headers["set-cookie"]
        assert f"{LANG_COOKIE}=en" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert '<html lang="en">' in client.get("/runs").text  # the browser still asks for Chinese
        # Without the form's token nothing changes; somewhere else than this site is not a place to return to.
        refused = client.post("/language", data={"lang": "zh_CN", "next": "/"}, follow_redirects=False)
        assert refused.status_code == 403 and '<html lang="en">' in refused.text
        away = client.post(
            "/language",
            data={"csrf_token": token, "lang": "zh_CN", "next": "https://elsewhere.example/"},
            follow_redirects=False,
        )
        assert away.headers["location"] == "/"
        assert '<html lang="zh-CN">' in client.get("/runs").text
        assert (
            client.post(
                "/language", data={"csrf_token": token, "lang": "fr"}, follow_redirects=False
            ).status_code
            == 400
        )
    # Before login too: the login page has the switch, bound to the login form's token.
    with httpx.Client(base_url=dashboard_url, headers=EN) as stranger:
        token = csrf(stranger)
        stranger.post("/language", data={"csrf_token": token, "lang": "zh_CN", "next": "/login"})
        assert '<html lang="zh-CN">' in stranger.get("/login").text


def test_the_browser_then_the_setting(dashboard_data: DashboardData) -> None:
    with serve(dashboard_data.config(language="en")) as base, httpx.Client(base_url=base) as client:
        assert '<html lang="en">' in client.get("/login").text  # no Accept-Language: the setting
        assert '<html lang="en">' in client.get("/login", headers={"accept-language": "fr, de"}).text
        assert '<html lang="zh-CN">' in client.get("/login", headers={"accept-language": "zh"}).text
    with serve(dashboard_data.config()) as base, httpx.Client(base_url=base) as client:
        assert '<html lang="zh-CN">' in client.get("/login").text  # the default: Chinese
        assert '<html lang="en">' in client.get("/login", headers={"accept-language": "en-GB"}).text


def test_error_pages_in_the_readers_language(dashboard_url: str, dashboard_data: DashboardData) -> None:
    zh = lang("zh_CN")
    with logged_in(dashboard_url, "branch", ZH) as client:
        refused = client.get(f"/?branch={dashboard_data.other_branch}")
        assert refused.status_code == 403
        assert zh.gettext("That branch or bank is outside your access.", "dashboard") in refused.text
        missing = client.get("/no-such-page")
        assert (
            missing.status_code == 404 and zh.gettext("There is no such page.", "dashboard") in missing.text
        )
        assert '<html lang="zh-CN">' in missing.text
        bad_date = client.get("/?date=yesterday")
        assert bad_date.status_code == 400 and "业务日期" in bad_date.text
        wrong_method = client.put("/runs")
        assert wrong_method.status_code == 405 and '<html lang="zh-CN">' in wrong_method.text
    with httpx.Client(base_url=dashboard_url, headers=ZH) as client:
        too_large = client.post("/login", content=b"x" * 100_000)
        assert too_large.status_code == 413
        assert (
            zh.gettext("What was sent is larger than this dashboard accepts.", "dashboard") in too_large.text
        )
        wrong = client.post(
            "/login", data={"username": "bureau", "password": "wrong", "csrf_token": csrf(client)}
        )
        assert (
            wrong.status_code == 401 and zh.gettext("Wrong username or password.", "dashboard") in wrong.text
        )
    with httpx.Client(base_url=dashboard_url, headers=EN) as client:
        assert "There is no such page." in client.get("/no-such-page").text


def test_an_ended_session_is_explained_in_the_readers_language(
    dashboard_url: str, dashboard_data: DashboardData
) -> None:
    with logged_in(dashboard_url, "bureau", ZH) as client:
        with psycopg.connect(dashboard_data.database_url, autocommit=True) as conn:
            conn.execute("UPDATE dashboard_sessions SET last_seen_at = now() - interval '31 minutes'")
        again = client.get("/runs", follow_redirects=False)
        assert again.status_code == 303 and again.headers["location"] == "/login?next=/runs&ended=1"
        page = client.get(again.headers["location"]).text
        assert "您的会话已结束" in page and '<html lang="zh-CN">' in page
    with httpx.Client(base_url=dashboard_url, headers=ZH) as stranger:  # no session: nothing to explain
        assert stranger.get("/runs", follow_redirects=False).headers["location"] == "/login?next=/runs"
