"""The dashboard against hostile clients: sessions that end for good, guesses that are refused, a flood that
keeps the process bounded, proxies believed only when configured, bodies refused unread, HSTS over https."""

# ruff: noqa: F811  (pytest fixtures imported from tests.fixtures_dashboard)

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx
import psycopg
import pytest

from dashboard.app import SESSION_COOKIE, create_app
from dashboard.sessions import revoke
from tests.fixtures_dashboard import PASSWORD, DashboardData, dashboard_data, dashboard_url, serve_app  # noqa: F401
from tests.integration.test_dashboard_access import csrf, login

T = TypeVar("T")


def run_in_own_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on a fresh event loop in its own thread, whatever loop the main thread holds."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@pytest.fixture
def client(dashboard_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=dashboard_url, timeout=30) as c:
        yield c


def sql(data: DashboardData, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(data.database_url, autocommit=True) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else []


def test_logout_ends_the_session_for_every_copy_of_the_cookie(
    dashboard_data: DashboardData, dashboard_url: str, client: httpx.Client
) -> None:
    assert login(client, "bureau") == 303
    stolen = client.cookies[SESSION_COOKIE]
    with httpx.Client(base_url=dashboard_url, cookies={SESSION_COOKIE: stolen}) as thief:
        assert thief.get("/api/me").json()["username"] == "bureau"
        token = csrf(client, "/")
        assert client.post("/logout", data={"csrf_token": token}, follow_redirects=False).status_code == 303
        assert thief.get("/api/me").status_code == 401
        assert thief.get("/", follow_redirects=False).headers["location"].startswith("/login")
    # The table holds a digest of the id, never the id itself.
    rows = sql(dashboard_data, "SELECT session_hash, revoked_by FROM dashboard_sessions")
    assert len(rows) == 1 and rows[0][1] == "logout" and stolen.encode() not in bytes(rows[0][0])


def test_an_operator_revokes_a_users_sessions_and_the_audit_log_names_them(
    dashboard_data: DashboardData, client: httpx.Client
) -> None:
    assert login(client, "branch") == 303
    assert client.get("/api/me").status_code == 200
    with psycopg.connect(dashboard_data.database_url) as conn:
        revoked = revoke(conn, operator="ops.zhang", username="branch")
    assert len(revoked) == 1
    assert client.get("/api/me").status_code == 401
    audit = sql(
        dashboard_data,
        "SELECT actor, action, entity_id, detail->>'username' FROM audit_log"
        " WHERE entity = 'dashboard_session'",
    )
    assert audit == [("ops.zhang", "dashboard.session.revoke", str(revoked[0]), "branch")]


def test_sessions_end_when_idle_and_at_their_absolute_end(
    dashboard_data: DashboardData, client: httpx.Client
) -> None:
    assert login(client, "bureau") == 303
    sql(dashboard_data, "UPDATE dashboard_sessions SET last_seen_at = now() - interval '29 minutes'")
    assert client.get("/api/me").status_code == 200  # and the request counts as activity
    sql(dashboard_data, "UPDATE dashboard_sessions SET last_seen_at = now() - interval '31 minutes'")
    assert client.get("/api/me").status_code == 401
    assert login(client, "bureau") == 303
    sql(dashboard_data, "UPDATE dashboard_sessions SET expires_at = now() WHERE revoked_at IS NULL")
    assert client.get("/api/me").status_code == 401
    # A login with the old cookie replaced that session: the one before it is revoked, not left live.
    assert [r[0] for r in sql(dashboard_data, "SELECT revoked_by FROM dashboard_sessions ORDER BY id")] == [
        "login",
        None,
    ]


def parallel_logins(base: str, attempts: list[tuple[str, str]], xff: bool = False) -> list[httpx.Response]:
    """Log in with each (username, address) at the same moment, each from its own client with its token."""
    barrier = threading.Barrier(len(attempts))

    def attempt(item: tuple[str, str]) -> httpx.Response:
        username, address = item
        headers = {"x-forwarded-for": address} if xff else {}
        with httpx.Client(base_url=base, timeout=60, headers=headers) as c:
            token = csrf(c)
            barrier.wait()
            return c.post(
                "/login",
                data={"username": username, "password": "wrong guess", "csrf_token": token},
                follow_redirects=False,
            )

    with ThreadPoolExecutor(max_workers=len(attempts)) as pool:
        return list(pool.map(attempt, attempts))


def test_parallel_guesses_for_one_account_are_refused_not_checked(dashboard_data: DashboardData) -> None:
    app = create_app(dashboard_data.config(trusted_proxies="127.0.0.1"))
    with serve_app(app) as base:
        # 16 guesses at once from 16 addresses: only one check per account at a time, five failures at most.
        answers = parallel_logins(base, [("bureau", f"10.0.0.{i}") for i in range(16)], xff=True)
    statuses = [a.status_code for a in answers]
    assert set(statuses) <= {401, 429} and statuses.count(401) <= 5, statuses
    assert all(a.headers["retry-after"].isdigit() for a in answers if a.status_code == 429)
    assert app.state.throttle.peak_checks <= 2


def test_a_flood_of_anonymous_requests_keeps_every_structure_bounded(dashboard_data: DashboardData) -> None:
    app = create_app(dashboard_data.config(trusted_proxies="127.0.0.1", throttle_max_keys=10))
    throttle = app.state.throttle
    with serve_app(app) as base:
        with httpx.Client(base_url=base, timeout=30) as c:
            for i in range(300):
                assert c.get("/login", headers={"x-forwarded-for": f"10.1.{i // 250}.{i % 250}"}).is_success
                assert c.get("/api/funnel").status_code == 401
                assert c.get(f"/applications/{i}", follow_redirects=False).status_code == 303
        # Failed logins from 30 addresses for 30 names: remembered up to the cap only.
        for i in range(30):
            with httpx.Client(base_url=base, timeout=30, headers={"x-forwarded-for": f"10.2.0.{i}"}) as c:
                assert login(c, f"nobody-{i}", "guess") == 401
        assert throttle.tracked_keys() <= 2 * 10
        # 40 logins at once for 40 names from 40 addresses: never more than two password checks at once
        # (each costs argon2id's 64 MiB), the others refused at once with 429.
        answers = parallel_logins(base, [(f"else-{i}", f"10.3.0.{i}") for i in range(40)], xff=True)
    statuses = [a.status_code for a in answers]
    assert set(statuses) <= {401, 429} and 429 in statuses
    assert throttle.peak_checks <= 2 and throttle.tracked_keys() <= 2 * 10
    # Nothing was written for anyone who did not log in.
    assert sql(dashboard_data, "SELECT count(*) FROM dashboard_sessions") == [(0,)]


def test_forwarded_for_is_believed_only_from_a_configured_proxy(dashboard_data: DashboardData) -> None:
    # Not configured: the local peer's X-Forwarded-For is ignored, so five failures lock the peer's address
    # whatever addresses the header claims.
    with serve_app(create_app(dashboard_data.config())) as base:
        for i in range(5):
            with httpx.Client(base_url=base, headers={"x-forwarded-for": f"10.4.0.{i}"}) as c:
                assert login(c, f"nobody-{i}", "guess") == 401
        with httpx.Client(base_url=base, headers={"x-forwarded-for": "10.4.0.99"}) as c:
            assert login(c, "bureau") == 429
    # Configured: the proxy's client is the address (locked alone, and recorded with the session).
    with serve_app(create_app(dashboard_data.config(trusted_proxies="127.0.0.0/8, ::1"))) as base:
        for i in range(5):
            with httpx.Client(base_url=base, headers={"x-forwarded-for": "10.5.0.1"}) as c:
                assert login(c, f"nobody-{i}", "guess") == 401
        with httpx.Client(base_url=base, headers={"x-forwarded-for": "10.5.0.1"}) as c:
            assert login(c, "bank") == 429
        # The left-most entry is the client's own word; the right-most untrusted one is what the proxy saw.
        with httpx.Client(base_url=base, headers={"x-forwarded-for": "10.5.0.1, 10.5.0.2"}) as c:
            assert login(c, "bureau") == 303
    assert sql(dashboard_data, "SELECT address FROM dashboard_sessions") == [("10.5.0.2",)]


def test_oversized_bodies_are_refused_before_they_are_read(dashboard_data: DashboardData) -> None:
    app = create_app(dashboard_data.config(max_body_bytes=16_384))
    chunk = b"username=" + b"x" * 65_527  # 64 KiB per chunk
    read: list[int] = []

    async def body(chunks: int) -> AsyncIterator[bytes]:
        for _ in range(chunks):
            read.append(1)
            yield chunk

    async def post(headers: dict[str, str], chunks: int) -> int:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://dashboard.test") as ac:
            response = await ac.post("/login", content=body(chunks), headers=headers)
            return response.status_code

    # A declared 100 MB: refused on the header, not one byte read.
    declared = {"content-length": str(100 * 1024 * 1024), "content-type": "application/x-www-form-urlencoded"}
    assert run_in_own_loop(post(declared, 1600)) == 413
    assert len(read) == 0
    # Chunked, no length: reading stops at the first chunk past the limit.
    chunked = {"content-type": "application/x-www-form-urlencoded"}
    assert run_in_own_loop(post(chunked, 1600)) == 413
    assert len(read) <= 2


def test_hsts_only_over_https(dashboard_data: DashboardData) -> None:
    def hsts(base: str, trusted: str, headers: dict[str, str]) -> str | None:
        app = create_app(dashboard_data.config(trusted_proxies=trusted))

        async def get() -> str | None:
            transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
            async with httpx.AsyncClient(transport=transport, base_url=base) as ac:
                return (await ac.get("/login", headers=headers)).headers.get("strict-transport-security")

        return run_in_own_loop(get())

    assert hsts("https://dashboard.test", "", {}) == "max-age=31536000"
    assert hsts("http://dashboard.test", "", {}) is None
    assert hsts("http://dashboard.test", "", {"x-forwarded-proto": "https"}) is None  # not a trusted peer
    assert hsts("http://dashboard.test", "127.0.0.1", {"x-forwarded-proto": "https"}) == "max-age=31536000"


def test_the_login_page_answers_without_a_database_write(dashboard_data: DashboardData) -> None:
    app = create_app(dashboard_data.config())

    async def login_page() -> str:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://dashboard.test") as ac:
            response = await ac.get("/login")
            return str(response.text)

    page = run_in_own_loop(login_page())
    assert re.search(r'name="csrf_token" value="[^"]+"', page)
    assert sql(dashboard_data, "SELECT count(*) FROM dashboard_sessions") == [(0,)]
