"""`issuance batch run`'s text report shows the cards' lifecycle: personalized by vendor, the areas waiting
for a vendor, the steps since the previous run and the balance checks."""

from __future__ import annotations

from datetime import date

import pytest

from cli import language
from cli.batch import _print_report
from pipelines.nightly import NightlyResult

LIFECYCLE = {
    "personalized": 3,
    "by_vendor": {"VENDOR-A": 2, "VENDOR-B": 1},
    "waiting_for_vendor": {"310115": 4},
    "since_previous_run": {
        "accounts_opened": 5,
        "cards_produced": 6,
        "cards_received_at_branch": 7,
        "cards_collected": 8,
        "savings_activated": 9,
    },
    "history_upto": 40,
    "cards_by_status": {"IN_PRODUCTION": 3, "ORDERED": 4},
    "checks": {
        "cards": 7,
        "every_card_in_one_status": True,
        "every_personalized_card_in_one_vendor_file": True,
    },
    "balanced": True,
}


def test_the_report_shows_the_lifecycle_and_the_vendor_files(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(language._Chosen, "lang", language.use("en"))  # the English words checked below
    total = {"read": 0, "balanced": True}
    result = NightlyResult(
        7,
        date(2026, 11, 3),
        False,
        0,
        {"total": total, "branches": {}, "balanced": True, "lifecycle": LIFECYCLE},
        {"personalize.cards": 3, "personalize.cards_per_s": 1500},
        files=[{"vendor_code": "VENDOR-A", "record_count": 2, "sha256": "ab" * 32}],
    )

    _print_report(result)

    out = capsys.readouterr().out
    assert "cards personalized 3 (by vendor: VENDOR-A 2, VENDOR-B 1)" in out
    assert "cards waiting, no vendor for their area: 310115 4" in out
    assert (
        "since the previous run: accounts opened 5, cards produced 6, cards received at branch 7, cards"
        " collected 8, savings activated 9"
    ) in " ".join(out.split())
    assert "each in one status: yes; each personalized card in one vendor file: yes" in " ".join(out.split())
    assert f"vendor file VENDOR-A: 2 cards sha256 {'ab' * 32}" in out
    assert "personalize.cards_per_s" in out
