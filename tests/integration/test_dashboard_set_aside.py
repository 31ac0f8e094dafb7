"""The dashboard shows events set aside by the relay: to the bureau on the dead-letters page, in /metrics."""

# ruff: noqa: F811  (pytest fixtures imported from tests.fixtures_dashboard)

from __future__ import annotations

import httpx
import psycopg

from tests.fixtures_dashboard import DashboardData, dashboard_data, dashboard_url  # noqa: F401
from tests.integration.test_dashboard_access import client, login  # noqa: F401

REASON = "1000205 bytes, above the largest message (1000000)"


def _set_aside_one(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO outbox (event_id, topic, payload, event_type, set_aside_at, set_aside_reason)"
            " VALUES ('too-large', 'branch.decisions', %s, 'DecisionIssued', now(), %s)",
            (b"\x00" * 1_000_100, REASON),
        )


def test_the_bureau_sees_events_set_aside(dashboard_data: DashboardData, client: httpx.Client) -> None:
    _set_aside_one(dashboard_data.database_url)
    metrics = client.get("/metrics", headers={"authorization": "Bearer scrape-me"})
    assert "issuance_outbox_set_aside 1.0" in metrics.text
    login(client, "bureau")
    page = client.get("/dead-letters")
    assert page.status_code == 200 and 'id="events-set-aside"' in page.text and REASON in page.text
    (event,) = client.get("/api/dead-letters").json()["events_set_aside"]
    assert event["event_id"] == "too-large" and event["reason"] == REASON


def test_a_branch_does_not_see_events_set_aside(dashboard_data: DashboardData, client: httpx.Client) -> None:
    _set_aside_one(dashboard_data.database_url)
    login(client, "branch")
    assert 'id="events-set-aside"' not in client.get("/dead-letters").text
    assert client.get("/api/dead-letters").json()["events_set_aside"] == []
