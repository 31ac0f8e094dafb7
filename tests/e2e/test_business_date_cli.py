"""`issuance batch run` business dates: today in Asia/Shanghai by default; no going back unless forced and
audited."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime

from psycopg.types.json import Jsonb

from issuance.domain.business_dates import business_day
from issuance.services.endpoints import resolve
from issuance.settings import Settings
from issuance.store.db import connect

CLI = [sys.executable, "-c", "from cli.main import main; main()"]


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=600, check=False)


def said(result: subprocess.CompletedProcess[str]) -> str:
    """The error output with the terminal's line wrapping undone."""
    return " ".join(result.stderr.split())


def test_business_dates_go_forward_unless_forced(settings: Settings, cli_env: dict[str, str]) -> None:
    assert run(["setup"], cli_env).returncode == 0
    url = resolve(settings).database_url
    with connect(url) as conn:
        conn.execute(
            "INSERT INTO runs (business_date, status, plan) VALUES (%s, 'SUCCEEDED', %s)",
            (date(2026, 3, 10), Jsonb([])),
        )

    earlier = run(["--lang", "en", "batch", "run", "--business-date", "2026-03-09"], cli_env)
    assert earlier.returncode == 2, earlier.stderr
    assert "earlier than the last successful run's (2026-03-10)" in said(earlier)
    assert "--force --operator" in said(earlier)

    unnamed = run(["batch", "run", "--business-date", "2026-03-09", "--force"], cli_env)
    assert unnamed.returncode == 2, unnamed.stderr
    assert "error: --force 需要 --operator" in said(unnamed)  # Chinese by default, the prefix kept

    forced = run(
        ["batch", "run", "--business-date", "2026-03-09", "--force", "--operator", "wang.li", "--json"],
        cli_env,
    )
    assert forced.returncode == 0, forced.stderr
    assert json.loads(forced.stdout)["business_date"] == "2026-03-09"
    with connect(url) as conn:
        audited = conn.execute(
            "SELECT actor, action, entity, entity_id, detail FROM audit_log"
            " WHERE action = 'batch.run.earlier_business_date'"
        ).fetchall()
    assert audited == [
        (
            "wang.li",
            "batch.run.earlier_business_date",
            "business_date",
            "2026-03-09",
            {"last_succeeded_business_date": "2026-03-10"},
        )
    ]

    same_again = run(["batch", "run", "--business-date", "2026-03-09", "--json"], cli_env)
    assert same_again.returncode == 0, same_again.stderr  # the same date again is a re-run, not going back

    before = business_day(datetime.now(UTC))
    default = run(["batch", "run", "--json"], cli_env)
    after = business_day(datetime.now(UTC))
    assert default.returncode == 0, default.stderr
    assert json.loads(default.stdout)["business_date"] in {before.isoformat(), after.isoformat()}
