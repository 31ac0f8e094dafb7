"""The nightly batch against a real broker and PostgreSQL, on generated data, night by night."""

from __future__ import annotations

from pathlib import Path

import pytest

from issuance.settings import Settings
from pipelines import nightly
from tests.fixtures_nightly import (
    expected_after,
    load_reference_file,
    make_generated,
    mismatches,
    publish_night,
    states,
)


@pytest.mark.parametrize(
    "beam_args",
    [[], ["--direct_runner_bundle_repeat=1"]],
    ids=["default", "bundle-repeat"],
)
def test_three_nights_reach_the_expected_outcomes(
    settings: Settings, database_url: str, tmp_path: Path, beam_args: list[str]
) -> None:
    generated = make_generated(tmp_path / "data", 300)
    load_reference_file(settings, database_url, generated)
    expected = generated.expected()
    for night in (1, 2, 3):
        publish_night(settings, generated, night)
        date = generated.business_date(night)
        result = nightly.run(["--business-date", date, *beam_args], settings=settings)
        assert result.balanced, result.reconciliation["total"]
        assert mismatches(states(database_url), expected_after(expected, date)) == []
