"""The demo's loop, its commands recorded instead of run: the order of one night, the return files received
once each, and the extra nights stopping when a night changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli import demo
from cli.demo import Simulators, night, run_nights


@pytest.fixture
def ran(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    commands: list[list[str]] = []

    def record(title: str, args: list[str], env: dict[str, str]) -> float:
        commands.append(args)
        return 0.0

    monkeypatch.setattr(demo, "_step", record)
    return commands


def test_one_night_runs_every_partner_in_order(ran: list[list[str]], tmp_path: Path) -> None:
    vendor_dir = tmp_path / "personalization"
    (vendor_dir / "run-000002").mkdir(parents=True)
    (vendor_dir / "run-000002" / "V1.return.jsonl").write_text("")
    (vendor_dir / "run-000002" / "V1.jsonl").write_text("")  # a vendor file, not a return file
    plan = {"night": 2, "business_date": "2026-03-03", "applications": "a.jsonl", "agreements": "g.jsonl"}
    received: set[Path] = set()
    night("night 2", plan, tmp_path, {}, Simulators(bank_fail_rate=0.1, seed=4), vendor_dir, received)
    assert [c[:2] for c in ran] == [
        ["submit", "applications"],
        ["submit", "agreements"],
        ["batch", "run"],
        ["bank", "serve"],
        ["vendor", "simulate"],
        ["vendor", "receive"],
        ["branch", "simulate"],
        ["consume", "--until-idle"],  # the banks' answers and the branches' card events, one group join
    ]
    assert ran[2][-1] == "2026-03-03"
    assert ran[3][ran[3].index("--fail-rate") + 1] == "0.1" and "--all" in ran[3]
    assert ran[5][-1].endswith("run-000002/V1.return.jsonl")
    assert ran[6][ran[6].index("--collect-rate") + 1] == "1.0"
    assert ran[6][ran[6].index("--activate-rate") + 1] == "1.0"
    assert ran[6][ran[6].index("--date") + 1] == "2026-03-03"  # the holders' applications dated that day
    # The next night receives only the return files it has not received.
    ran.clear()
    night("night 3", {"business_date": "2026-03-04"}, tmp_path, {}, Simulators(0.1, 4), vendor_dir, received)
    assert ["vendor", "receive"] not in [c[:2] for c in ran]


def test_extra_nights_run_until_one_changes_nothing(
    ran: list[list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    states = iter([("a", 1), ("a", 2), ("a", 3), ("a", 3)])
    monkeypatch.setattr(demo, "_fingerprint", lambda url: next(states))
    planned = [{"night": 1, "business_date": "2026-03-02"}, {"night": 2, "business_date": "2026-03-31"}]
    count = run_nights(planned, tmp_path, {}, Simulators(0.0, 1), tmp_path, "postgresql://unused")
    dates = [c[-1] for c in ran if c[:2] == ["batch", "run"]]
    assert dates == ["2026-03-02", "2026-03-31", "2026-04-01", "2026-04-02", "2026-04-03"]
    assert count == 5
