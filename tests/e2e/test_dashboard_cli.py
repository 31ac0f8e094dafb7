"""`issuance dashboard` as a user starts it: it prints its address and a demo login that works."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_dashboard_prints_its_address_and_a_working_demo_login(cli_env: dict[str, str]) -> None:
    port = free_port()
    issuance = str(Path(sys.executable).parent / "issuance")
    process = subprocess.Popen(
        [issuance, "dashboard", "--port", str(port)],
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(2)]
        assert lines[0].strip() == f"dashboard: http://127.0.0.1:{port}/", lines
        login = re.search(r"demo login \(everything\): (\S+) / (\S+)", lines[1])
        assert login, lines
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=10, follow_redirects=True) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    page = client.get("/login")
                    break
                except httpx.ConnectError:
                    assert time.monotonic() < deadline, "the dashboard did not start"
                    time.sleep(0.2)
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert token
            response = client.post(
                "/login",
                data={"username": login.group(1), "password": login.group(2), "csrf_token": token.group(1)},
            )
            assert response.status_code == 200 and "Overview" in response.text
            assert client.get("/api/me").json()["role"] == "bureau"
    finally:
        process.terminate()
        process.wait(10)
