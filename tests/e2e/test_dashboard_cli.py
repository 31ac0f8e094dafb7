"""`issuance dashboard` as a user starts it: beside a configured database it needs a users file made with
`issuance dashboard add-user` (no demo users, no printed passwords); operators list and revoke sessions."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


ISSUANCE = str(Path(sys.executable).parent / "issuance")
PASSWORD = "a long enough secret"


def add_user(cli_env: dict[str, str], users: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ISSUANCE, "dashboard", "add-user", "--users", str(users), "--password-stdin", *args],
        env=cli_env,
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
    )


def test_no_demo_users_beside_a_configured_database(cli_env: dict[str, str], tmp_path: Path) -> None:
    state_dir = Path(cli_env["ISSUANCE_STATE_DIR"])
    done = subprocess.run(
        [ISSUANCE, "dashboard", "--port", str(free_port())],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "ISSUANCE_DASHBOARD_USERS" in done.stderr and "add-user" in done.stderr
    assert "demo login" not in done.stdout + done.stderr
    assert not (state_dir / "dashboard-demo-logins.json").exists()


def test_add_user_writes_a_hash_and_never_the_password(cli_env: dict[str, str], tmp_path: Path) -> None:
    users = tmp_path / "users.json"
    done = add_user(cli_env, users, "--username", "li.wei", "--role", "bureau")
    assert done.returncode == 0, done.stderr
    assert PASSWORD not in done.stdout + done.stderr and PASSWORD not in users.read_text()
    assert users.stat().st_mode & 0o777 == 0o600
    entry = json.loads(users.read_text())["users"][0]
    assert entry["role"] == "bureau" and entry["password_hash"].startswith("$argon2id$")
    again = add_user(cli_env, users, "--username", "li.wei", "--role", "bureau")
    assert again.returncode == 2 and "--replace" in again.stderr
    branch = add_user(cli_env, users, "--username", "br1", "--role", "branch")
    assert branch.returncode == 2  # a branch user needs its branch
    short_args = ["--users", str(users), "--password-stdin", "--username", "x", "--role", "bureau"]
    short = subprocess.run(
        [ISSUANCE, "dashboard", "add-user", *short_args],
        env=cli_env,
        input="short\n",
        capture_output=True,
        text=True,
    )
    assert short.returncode == 2 and "at least 12" in short.stderr


def test_dashboard_with_a_users_file_and_operator_sessions(cli_env: dict[str, str], tmp_path: Path) -> None:
    users = tmp_path / "users.json"
    assert add_user(cli_env, users, "--username", "li.wei", "--role", "bureau").returncode == 0
    port = free_port()
    process = subprocess.Popen(
        [ISSUANCE, "dashboard", "--port", str(port), "--users", str(users)],
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.strip() == f"dashboard: http://127.0.0.1:{port}/", line
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=10, follow_redirects=True) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    client.get("/login")
                    break
                except httpx.ConnectError:
                    assert time.monotonic() < deadline, "the dashboard did not start"
                    time.sleep(0.2)
            # The command's server ignores X-Forwarded-For from its local peer (no proxy configured).
            for i in range(5):
                token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
                assert token
                response = client.post(
                    "/login",
                    data={"username": f"nobody-{i}", "password": "guess", "csrf_token": token.group(1)},
                    headers={"x-forwarded-for": f"10.6.0.{i}"},
                )
                assert response.status_code == 401
            token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
            assert token
            refused = client.post(
                "/login",
                data={"username": "li.wei", "password": PASSWORD, "csrf_token": token.group(1)},
                headers={"x-forwarded-for": "10.6.0.99"},
            )
            assert refused.status_code == 429 and refused.headers["retry-after"].isdigit()
    finally:
        process.terminate()
        process.wait(10)
    with psycopg.connect(cli_env["ISSUANCE_DATABASE_URL"], autocommit=True) as conn:
        conn.execute(
            "INSERT INTO dashboard_sessions (session_hash, username, address, expires_at)"
            " VALUES (sha256('x'), 'li.wei', '10.0.0.1', now() + interval '1 hour')"
        )
    listed = subprocess.run(
        [ISSUANCE, "dashboard", "sessions", "list", "--json"], env=cli_env, capture_output=True, text=True
    )
    assert listed.returncode == 0, listed.stderr
    sessions = json.loads(listed.stdout)["sessions"]
    assert [(s["username"], s["state"]) for s in sessions] == [("li.wei", "live")]
    nameless = subprocess.run(
        [ISSUANCE, "dashboard", "sessions", "revoke", str(sessions[0]["id"])],
        env={k: v for k, v in cli_env.items() if k != "ISSUANCE_OPERATOR"},
        capture_output=True,
        text=True,
    )
    assert nameless.returncode == 2  # the audit log must name someone
    revoked = subprocess.run(
        [ISSUANCE, "dashboard", "sessions", "revoke", "--user", "li.wei", "--operator", "ops.zhang"],
        env=cli_env,
        capture_output=True,
        text=True,
    )
    assert revoked.returncode == 0 and "revoked 1 session" in revoked.stdout, revoked.stderr
    with psycopg.connect(cli_env["ISSUANCE_DATABASE_URL"]) as conn:
        assert conn.execute(
            "SELECT actor FROM audit_log WHERE action = 'dashboard.session.revoke'"
        ).fetchall() == [("ops.zhang",)]
