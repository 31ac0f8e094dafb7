"""`issuance dev` and `issuance setup` as a user runs them, in subprocesses with a private state directory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures_services import PREFIX, leftover_processes, private_dir, stop_services

# The console script installed next to this interpreter, as a user runs it.
ISSUANCE = [str(Path(sys.executable).with_name("issuance"))]


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the CLI and capture its output."""
    return subprocess.run(
        [*ISSUANCE, *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.fixture
def dev_env() -> Iterator[tuple[Path, dict[str, str]]]:
    """A private state directory and an environment with no configured servers."""
    root = private_dir(f"{PREFIX}cli-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ISSUANCE_")}
    env["ISSUANCE_STATE_DIR"] = str(root)
    env["ISSUANCE_KEYS_DIR"] = str(root / "keys")  # the development keys setup writes, removed with root
    yield root, env
    stop_services(root)
    shutil.rmtree(root, ignore_errors=True)


def test_dev_up_setup_status_down(dev_env: tuple[Path, dict[str, str]]) -> None:
    root, env = dev_env
    no_state = {k: v for k, v in env.items() if k != "ISSUANCE_STATE_DIR"}
    up = run(["dev", "up", "--state-dir", str(root)], no_state)
    assert up.returncode == 0, up.stderr
    assert "kafka: started" in up.stdout and "postgres: started" in up.stdout
    again = run(["dev", "up", "--json"], env)
    assert again.returncode == 0, again.stderr
    assert {s["outcome"] for s in json.loads(again.stdout).values()} == {"already running"}

    for _ in range(2):
        setup = run(["setup", "--json"], env)
        assert setup.returncode == 0, setup.stderr
    report = json.loads(setup.stdout)
    assert report["migrations_applied"] == [] and report["topics_created"] == []
    assert "branch.applications" in report["topics_existing"]
    # The embedded services: the bureau's development key is generated and registered (no partners yet).
    assert report["simulated_parties_with_keys"] == 1 and (root / "keys" / "bureau.key").exists()

    status = run(["dev", "status", "--json"], env)
    assert status.returncode == 0, status.stdout + status.stderr
    health = json.loads(status.stdout)
    assert health["kafka"]["healthy"] and health["postgres"]["healthy"]
    assert health["kafka"]["address"].startswith("127.0.0.1:")

    down = run(["dev", "down"], env)
    assert down.returncode == 0, down.stderr
    assert "kafka: stopped" in down.stdout and "postgres: stopped" in down.stdout
    assert leftover_processes(root) == []
    assert run(["dev", "status"], env).returncode == 1


def test_status_masks_configured_password(dev_env: tuple[Path, dict[str, str]]) -> None:
    _, env = dev_env
    env = {**env, "ISSUANCE_DATABASE_URL": "postgresql://app:s3cr3t-pw@127.0.0.1:1/issuance"}
    status = run(["dev", "status", "--json"], env)
    assert status.returncode == 1
    assert "s3cr3t-pw" not in status.stdout + status.stderr
    health = json.loads(status.stdout)
    assert health["postgres"]["address"] == "postgresql://app:***@127.0.0.1:1/issuance"
    assert not health["postgres"]["healthy"] and not health["kafka"]["healthy"]


def test_setup_without_services_says_how_to_start_them(dev_env: tuple[Path, dict[str, str]]) -> None:
    _, env = dev_env
    setup = run(["setup"], env)
    assert setup.returncode == 1
    assert "issuance dev up" in setup.stderr
