"""Run CLI commands as subprocesses and kill them mid-stream, for crash-recovery tests."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable

CLI = [sys.executable, "-c", "from cli.main import main; main()"]


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    """Start `issuance ARGS` in the background."""
    return subprocess.Popen([*CLI, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run(args: list[str], env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Run `issuance ARGS` to the end."""
    return subprocess.run(
        [*CLI, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def kill_when(
    proc: subprocess.Popen[str], ready: Callable[[], bool], sig: int = signal.SIGKILL, timeout: float = 120
) -> None:
    """Send `sig` to the process as soon as `ready()` holds (it must still be running then)."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, f"exited early: {proc.communicate()[1][-2000:]}"
        assert time.monotonic() < deadline, "the process never got there"
        time.sleep(0.02)
    proc.send_signal(sig)
    proc.communicate(timeout=60)
