"""The demo's check of every application's end against expected.jsonl, injected refusals accounted for."""

from __future__ import annotations

import json
from pathlib import Path

from cli.demo import Outcome, compare
from consumers.bank_simulator import FailurePolicy
from issuance.messages import account_opening_request_event_id, activation_request_event_id

SERVED = ("ISSUED", "ACTIVE")


def _expected(tmp_path: Path, *lines: dict[str, object]) -> Path:
    path = tmp_path / "expected.jsonl"
    path.write_text("".join(json.dumps({"kind": "application", **line}) + "\n" for line in lines))
    return path


def _line(app_id: str, state: str, reasons: list[str] | None = None) -> dict[str, object]:
    served = state == "COMPLETED"
    return {
        "application_id": app_id,
        "final_state": state,
        "final_reasons": reasons or [],
        "final_card_status": SERVED[0] if served else None,
        "final_financial_status": SERVED[1] if served else None,
    }


def _refused_every_time(policy: FailurePolicy, event_id: object, attempts: int, prefix: str) -> str:
    """An application id whose first `attempts` requests the policy refuses."""
    for n in range(10_000):
        app_id = f"{prefix}{n:05d}"
        if all(policy.failure(event_id(app_id, a)) for a in range(1, attempts + 1)):  # type: ignore[operator]
            return app_id
    raise AssertionError("no such application id")


def test_served_rejected_and_injected_failures(tmp_path: Path) -> None:
    policy = FailurePolicy(0.5, 3)
    refused_new = _refused_every_time(policy, account_opening_request_event_id, 3, "NEW")
    refused_act = _refused_every_time(policy, activation_request_event_id, 3, "ACT")
    expected = _expected(
        tmp_path,
        _line("A1", "COMPLETED"),
        _line("A2", "REJECTED", ["NOT_INSURED"]),
        _line(refused_new, "COMPLETED"),
        _line(refused_act, "COMPLETED"),
        _line("A5", "COMPLETED"),
    )
    ended = {
        "A1": Outcome("NEW_CARD", "COMPLETED", (), 0, SERVED),
        "A2": Outcome("NEW_CARD", "REJECTED", ("NOT_INSURED",), 0, (None, None)),
        refused_new: Outcome("NEW_CARD", "FAILED", (), 3, ("CANCELLED", "REFUSED")),
        refused_act: Outcome("FINANCIAL_ACTIVATION", "FAILED", (), 3, ("ISSUED", "OPENED")),
        # Never produced: the vendor failed it max_productions times.
        "A5": Outcome("NEW_CARD", "FAILED", (), 0, ("CANCELLED", "OPENED"), production_failures=3),
        # A holder's own activation of A1's card (not in the file).
        "H1": Outcome("FINANCIAL_ACTIVATION", "COMPLETED", (), 0, SERVED),
    }
    result = compare(expected, ended, policy, max_productions=3)
    assert result == {
        "matched": 2,
        "injected_failures": 3,
        "mismatched": [],
        "holder_activations": {"COMPLETED": 1},
    }


def test_what_was_not_injected_is_a_mismatch(tmp_path: Path) -> None:
    policy = FailurePolicy(0.0, 3)  # nothing injected: any failure is real
    expected = _expected(
        tmp_path, _line("A1", "COMPLETED"), _line("A2", "COMPLETED"), _line("A3", "COMPLETED")
    )
    ended = {
        "A1": Outcome("NEW_CARD", "FAILED", (), 3, ("CANCELLED", "REFUSED")),
        "A2": Outcome("NEW_CARD", "COMPLETED", (), 0, ("ISSUED", "REQUESTED")),  # a card without its account
        # A3 is missing altogether.
        "H1": Outcome("FINANCIAL_ACTIVATION", "ACCEPTED", (), 0, ("ISSUED", "OPENED")),  # never answered
    }
    result = compare(expected, ended, policy)
    assert result["mismatched"] == ["A1", "A2", "A3", "H1"] and result["matched"] == 0
