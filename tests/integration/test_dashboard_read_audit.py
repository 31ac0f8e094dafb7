"""The dashboard records who looked at which application (page and JSON API), never what it showed; it does
so in its own database role, which may insert audit rows and nothing else."""

# ruff: noqa: F811  (pytest fixtures imported from tests.fixtures_dashboard)

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import psycopg
import pytest

from issuance.store.audit_chain import verify
from issuance.store.db import connect
from tests.fixtures_dashboard import PASSWORD, DashboardData, dashboard_data, dashboard_url  # noqa: F401


@pytest.fixture
def client(dashboard_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=dashboard_url, timeout=30) as c:
        token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").text)
        assert token is not None
        form = {"username": "branch", "password": PASSWORD, "csrf_token": token.group(1)}
        assert c.post("/login", data=form, follow_redirects=False).status_code == 303
        yield c


def reads(database_url: str) -> list[tuple[str, str, str, dict[str, object]]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT actor, action, entity_id, detail FROM audit_log"
            " WHERE action = 'application.read' ORDER BY seq"
        ).fetchall()
    return [(str(a), str(b), str(c), dict(d)) for a, b, c, d in rows]


def test_every_lookup_is_recorded_with_the_user_and_the_id(
    dashboard_data: DashboardData, client: httpx.Client
) -> None:
    data = dashboard_data
    own = data.application_of(data.branch)
    other = data.application_of(data.other_branch)
    assert client.get(f"/applications/{own}").status_code == 200
    assert client.get(f"/api/applications/{own}").status_code == 200
    assert client.get(f"/api/applications/{other}").status_code == 404  # outside the user's scope
    assert client.get("/applications", params={"id": "110101199003074512"}).status_code == 404
    assert client.get("/").status_code == 200  # aggregates: not a read of one person's data
    assert reads(data.database_url) == [
        ("dashboard:branch", "application.read", own, {"via": "page", "shown": True}),
        ("dashboard:branch", "application.read", own, {"via": "api", "shown": True}),
        ("dashboard:branch", "application.read", "(not shown)", {"via": "api", "shown": False}),
        ("dashboard:branch", "application.read", "(not shown)", {"via": "page", "shown": False}),
    ]
    with connect(data.database_url) as conn:
        assert verify(conn).ok
