"""The agreement join staged by the Beam stage, and the final transaction's apply of it.

The nights of the generated data (agreements on time, late, invalid, never) are decided from the staged
decisions and reach the expected outcomes; a run whose staged decisions do not cover the transaction's
candidates (here: staged before the stage existed, so none) is decided in the transaction, with the same
result.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from issuance.settings import Settings
from issuance.store.db import connect
from pipelines import nightly
from tests.fixtures_nightly import (
    expected_after,
    load_reference_file,
    make_generated,
    mismatches,
    publish_night,
    states,
)
from tests.fixtures_services import settings_env


def test_every_night_applies_the_staged_agreement_decisions(
    settings: Settings, database_url: str, tmp_path: Path
) -> None:
    generated = make_generated(tmp_path / "data", 200, seed=5)
    load_reference_file(settings, database_url, generated)
    expected = generated.expected()
    reexamined = 0
    for night in (1, 2, 3):
        publish_night(settings, generated, night)
        date = generated.business_date(night)
        result = nightly.run(["--business-date", date], settings=settings)
        timings = result.reconciliation["run"]["commit_timings_s"]
        assert "agreement_join_apply" in timings and "agreement_join_in_transaction" not in timings
        assert result.balanced
        assert mismatches(states(database_url), expected_after(expected, date)) == []
        reexamined += sum(result.reconciliation["run"]["reexamined"].values())
    assert reexamined > 0  # later nights decided applications awaiting from earlier ones


def test_a_run_staged_without_the_join_is_decided_in_the_transaction(
    settings: Settings, database_url: str, tmp_path: Path
) -> None:
    generated = make_generated(tmp_path / "data", 120, seed=9)
    load_reference_file(settings, database_url, generated)
    expected = generated.expected()
    publish_night(settings, generated, 1)
    nightly.run(["--business-date", generated.business_date(1)], settings=settings)
    publish_night(settings, generated, 2)
    day = generated.business_date(2)
    crashed = subprocess.run(
        [str(Path(sys.executable).parent / "issuance"), "batch", "run", "--business-date", day],
        env={**settings_env(settings), "ISSUANCE_CRASH_AT": "staged"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert crashed.returncode != 0
    with connect(database_url) as conn:
        staged = conn.execute("SELECT count(*) FROM staged_agreement_decisions").fetchone()
        assert staged is not None and staged[0] > 0
        conn.execute("TRUNCATE staged_agreement_decisions")

    result = nightly.run(["--business-date", day], settings=settings)
    assert result.resumed and result.balanced
    assert "agreement_join_in_transaction" in result.reconciliation["run"]["commit_timings_s"]
    assert mismatches(states(database_url), expected_after(expected, day)) == []
