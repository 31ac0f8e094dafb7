"""Two nightly processes never work on the same run: the second one stops with a clear error."""

from __future__ import annotations

import pytest

from issuance.settings import Settings
from issuance.store.db import connect
from issuance.store.run_repo import NightlyRunning, lock_nightly
from pipelines import nightly


def test_a_second_nightly_process_is_refused(settings: Settings, database_url: str) -> None:
    with connect(database_url) as holder:
        lock_nightly(holder)
        with pytest.raises(NightlyRunning):
            nightly.run(["--business-date", "2026-03-02"], settings=settings)
