"""The synthetic generator: deterministic, complete coverage, valid where it should be, constant memory."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from issuance.crypto import Vault
from issuance.domain.contract import parse_agreement, parse_application
from issuance.domain.identity import age_on, is_valid_id_number, normalize_id_number, parse_id_number
from issuance.domain.model import DeadLetterReason, Reason
from issuance.domain.reference import parse_reference
from issuance.settings import Settings
from issuance.trust.parties import bank, branch
from pipelines.records import Chunk, RawRecord, RecordBatch
from pipelines.transforms.decode import DecodeBatch
from producers.cases import DEFECT_CASES
from producers.generator import GenerateOptions, generate
from producers.identifiers import card_check_character
from producers.submission import Kind, prepare_line
from tests.pii_scan import generated_secrets, scan
from tests.wire_parties import WireParties

# UNPROCESSABLE_RECORD is never generated: it is the safety net for a record that meets the contract and
# still cannot be processed by a stage; no valid case reaches it (tests/integration/test_poison_records.py
# reaches it by staging a row that bypassed the contract).
# TRANSITION_NOT_ALLOWED is about the branches' card events (a collection before the receipt), which the
# generator does not write: tests/integration/test_card_events.py reaches it.
NEVER_GENERATED = {
    DeadLetterReason.UNPROCESSABLE_RECORD,
    DeadLetterReason.TRANSITION_NOT_ALLOWED,
}
# Reason codes no generated record can reach: an ID number of the wrong shape breaks the contract first; only
# a branch with a registered key can send, and the simulated partners are the catalog's, so no application
# comes from a branch the catalog lacks (tests/unit/test_verification.py judges one).
UNREACHABLE_REASONS = {Reason.ID_NUMBER_FORMAT, Reason.BRANCH_UNKNOWN}
# Reasons that come from the decoder and the contract alone (the others need the night's data).
DECODER_REASONS = {
    DeadLetterReason.MALFORMED_MESSAGE,
    DeadLetterReason.UNKNOWN_SCHEMA,
    DeadLetterReason.SCHEMA_VIOLATION,
    DeadLetterReason.EMPTY_MESSAGE,
    DeadLetterReason.OVERSIZED_MESSAGE,
}
# Reasons of the night's trust in the sender and the sealed personal fields.
TRUST_REASONS = {
    DeadLetterReason.SIGNATURE_MISSING,
    DeadLetterReason.SIGNATURE_INVALID,
    DeadLetterReason.SENDER_MISMATCH,
    DeadLetterReason.SEAL_INVALID,
}

FILES = (
    "reference.json",
    "reference.night2.json",
    "applications.jsonl",
    "applications-night2.jsonl",
    "agreements.jsonl",
    "agreements-night2.jsonl",
    "agreements-night3.jsonl",
    "raw_messages.jsonl",
    "expected.jsonl",
    "manifest.json",
)


def _lines(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("generated")
    generate(out, GenerateOptions(applications=1500, seed=5, invalid_ratio=0.3))
    return out


def test_same_seed_writes_the_same_bytes(tmp_path: Path) -> None:
    options = GenerateOptions(applications=400, seed=17, invalid_ratio=0.3)
    generate(tmp_path / "a", options)
    generate(tmp_path / "b", options)
    for name in FILES:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_another_seed_writes_other_data(tmp_path: Path) -> None:
    generate(tmp_path / "a", GenerateOptions(applications=200, seed=1))
    generate(tmp_path / "b", GenerateOptions(applications=200, seed=2))
    for name in ("reference.json", "applications.jsonl", "agreements.jsonl", "raw_messages.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() != (tmp_path / "b" / name).read_bytes(), name


def test_exactly_the_requested_number_of_applications(generated: Path) -> None:
    night1 = _lines(generated / "applications.jsonl")
    night2 = _lines(generated / "applications-night2.jsonl")
    lines = _lines(generated / "expected.jsonl")
    # Records repeating an application id (the same application re-sent, or another under a used id) are
    # not applications of their own.
    repeats = [e for e in lines if e["kind"] in {"resent_application", "reused_application_id"}]
    assert {e["kind"] for e in repeats} == {"resent_application", "reused_application_id"}
    assert len(night1) + len(night2) == 1500 + len(repeats)
    ids = [a["application_id"] for a in night1 + night2]
    assert len(set(ids)) == 1500
    expected = [e for e in lines if e["kind"] == "application"]
    assert sorted(e["application_id"] for e in expected) == sorted(set(ids))


def test_expected_covers_every_reason_and_dead_letter_reason(generated: Path) -> None:
    expected = _lines(generated / "expected.jsonl")
    reasons = {r for e in expected for step in e["timeline"] for r in step["reasons"]}
    assert {r.value for r in Reason if r not in UNREACHABLE_REASONS} <= reasons
    assert {r.value for r in DeadLetterReason if r not in NEVER_GENERATED} <= reasons
    states = {step["state"] for e in expected for step in e["timeline"]}
    assert {"REJECTED", "AWAITING_AGREEMENT", "ACCEPTED", "DEAD_LETTERED"} <= states
    defects = {e["defect"] for e in expected}
    assert {"AGREEMENT_LATE", "AGREEMENT_NEVER", "DUPLICATE_SAME_NIGHT", "DUPLICATE_ACROSS_NIGHTS"} <= defects


def test_night2_reference_is_night1_with_the_withdrawal_and_the_lapsed_insurance(generated: Path) -> None:
    """Night 2's document holds the same persons in the same order (a reload of them must change nothing the
    system did); only the withdrawn area and the persons of the cases built on them differ."""
    manifest = json.loads((generated / "manifest.json").read_text())
    assert [n["reference"] for n in manifest["nights"]] == [None, "reference.night2.json", None]
    first = json.loads((generated / "reference.json").read_text())
    second = json.loads((generated / "reference.night2.json").read_text())
    parse_reference(second)  # a document `issuance reference load` accepts
    assert (first["banks"], first["branches"]) == (second["banks"], second["branches"])
    withdrawn = [
        (a, b) for a, b in zip(first["issuing_areas"], second["issuing_areas"], strict=True) if a != b
    ]
    assert [(a["approved"], b["approved"], b["approval_ref"]) for a, b in withdrawn] == [(True, False, None)]
    changed = [(a, b) for a, b in zip(first["persons"], second["persons"], strict=True) if a != b]
    assert changed and all(a == {**b, "insured": True} and not b["insured"] for a, b in changed)
    expected = _lines(generated / "expected.jsonl")
    lapsed = [e for e in expected if e["defect"] == "INSURANCE_LAPSED_BEFORE_AGREEMENT"]
    withdrawn_cases = [e for e in expected if e["defect"] == "AREA_WITHDRAWN_BEFORE_AGREEMENT"]
    assert len(changed) == len(lapsed) > 0 and withdrawn_cases
    for case, reason in ((lapsed[0], "NOT_INSURED"), (withdrawn_cases[0], "AREA_NOT_APPROVED")):
        assert [(s["business_date"], s["state"], s["reasons"]) for s in case["timeline"]] == [
            ("2026-03-02", "AWAITING_AGREEMENT", []),
            ("2026-03-05", "REJECTED", [reason]),
        ]
    area = withdrawn[0][0]["area_code"]
    branches = {b["branch_code"] for b in second["branches"] if b["area_code"] == area}
    apps = [a for night in (1, 2) for a in _lines(generated / manifest["nights"][night - 1]["applications"])]
    at_withdrawn = {a["application_id"] for a in apps if a["branch_code"] in branches}
    assert at_withdrawn == {e["application_id"] for e in withdrawn_cases}  # no other case uses that area


def test_small_runs_still_cover_every_defect(tmp_path: Path) -> None:
    generate(tmp_path, GenerateOptions(applications=len(DEFECT_CASES) * 2 + 10, seed=3, invalid_ratio=1.0))
    reasons = {r for e in _lines(tmp_path / "expected.jsonl") for s in e["timeline"] for r in s["reasons"]}
    assert {r.value for r in Reason if r not in UNREACHABLE_REASONS} <= reasons


def test_every_record_meets_the_contract(generated: Path) -> None:
    for name in ("applications.jsonl", "applications-night2.jsonl"):
        for record in _lines(generated / name):
            parse_application(record)
    for name in ("agreements.jsonl", "agreements-night2.jsonl", "agreements-night3.jsonl"):
        for record in _lines(generated / name):
            parse_agreement(record)
    parse_reference(json.loads((generated / "reference.json").read_text(encoding="utf-8")))


def test_registry_and_accepted_applicants_have_valid_id_numbers(generated: Path) -> None:
    reference = json.loads((generated / "reference.json").read_text(encoding="utf-8"))
    registry = {p["id_number"]: p for p in reference["persons"]}
    assert len(registry) == len(reference["persons"])
    assert all(is_valid_id_number(number) for number in registry)
    cards = [c["card_number"] for p in reference["persons"] for c in p["cards"]]
    assert len(set(cards)) == len(cards)
    assert all(card[8] == card_check_character(card[:8]) for card in cards)
    statuses = {(c["status"], c["financial_status"]) for p in reference["persons"] for c in p["cards"]}
    assert {
        ("VALID", "INACTIVE"),
        ("VALID", "ACTIVE"),
        ("LOST", "INACTIVE"),
        ("CANCELLED", "INACTIVE"),
    } <= statuses
    assert any(not area["approved"] for area in reference["issuing_areas"])
    assert 3 <= len(reference["banks"]) <= 5
    outcome = {
        e["application_id"]: e for e in _lines(generated / "expected.jsonl") if e["kind"] == "application"
    }
    ages = set()
    for app in _lines(generated / "applications.jsonl"):
        day = datetime.fromisoformat(app["submitted_at"]).date()
        parsed = parse_id_number(app["applicant"]["id_number"], day)
        if "ID_NUMBER_INVALID" in outcome[app["application_id"]]["reasons"]:
            assert not is_valid_id_number(app["applicant"]["id_number"], day)
        elif outcome[app["application_id"]]["final_state"] == "COMPLETED":
            assert normalize_id_number(app["applicant"]["id_number"]) in registry  # a typed "x" is an "X"
            age = age_on(parsed.birth_date, day)  # type: ignore[union-attr]
            ages.add(age // 10)
            if age < 16:
                guardian = app["guardian_id_number"]
                assert guardian in registry
                assert age_on(parse_id_number(guardian, day).birth_date, day) >= 18  # type: ignore[union-attr]
    assert min(ages) == 0 and max(ages) >= 8  # minors and people over 80


def test_both_types_channels_and_offsets(generated: Path) -> None:
    apps = _lines(generated / "applications.jsonl")
    assert {a["application_type"] for a in apps} == {"NEW_CARD", "FINANCIAL_ACTIVATION"}
    assert {a["channel"] for a in apps} == {"COUNTER", "SELF_SERVICE_TERMINAL"}
    assert all(a["submitted_at"].endswith("+08:00") for a in apps)
    hours = {datetime.fromisoformat(a["submitted_at"]).hour for a in apps}
    assert min(hours) <= 9 and max(hours) >= 16
    assert all(datetime.fromisoformat(a["submitted_at"]).date() == date(2026, 3, 2) for a in apps)


def test_raw_messages_really_fail_as_expected(generated: Path) -> None:
    """Each raw message, prepared as `issuance submit raw` prepares it and decoded as the night decodes it,
    is set aside with its expected reason; the trust reasons are reached on both topics."""
    reference = json.loads((generated / "reference.json").read_text(encoding="utf-8"))
    parties = WireParties(
        [branch(b["branch_code"]) for b in reference["branches"]]
        + [bank(b["bank_code"]) for b in reference["banks"]]
    )
    preparer = parties.preparer()
    stage = DecodeBatch(
        Vault([("t", bytes(32))], bytes(32)), parties.trust(), None, Settings().max_record_bytes
    )
    stage.setup()
    seen = set()
    for number, line in enumerate(_lines(generated / "raw_messages.jsonl")):
        prepared = prepare_line(preparer, Kind.RAW, json.dumps(line, ensure_ascii=False).encode())
        kind = "application" if line["topic"] == "applications" else "agreement"
        chunk = Chunk(1, kind, prepared.topic, 0, number, number + 1)
        record = RawRecord(number, prepared.key, prepared.value, tuple(prepared.headers or ()))
        decoded = next(iter(stage.process(RecordBatch(chunk, [record]))))
        assert [row[5] for row in decoded.dead_letters] == [line["expected_reason"]], line["defect"]
        seen.add((line["topic"], line["expected_reason"]))
    assert {reason for _, reason in seen} == {r.value for r in (DECODER_REASONS | TRUST_REASONS)}
    assert {(topic, reason) for topic, reason in seen if reason in TRUST_REASONS} >= {
        ("applications", "SIGNATURE_MISSING"),
        ("agreements", "SIGNATURE_MISSING"),
        ("applications", "SIGNATURE_INVALID"),
        ("agreements", "SIGNATURE_INVALID"),
        ("applications", "SENDER_MISMATCH"),
        ("agreements", "SENDER_MISMATCH"),
        ("applications", "SEAL_INVALID"),
    }


def test_no_raw_message_carries_personal_data_in_clear(generated: Path) -> None:
    """The bytes the generator writes verbatim hold no ID number, name or phone of anyone it generated."""
    secrets = generated_secrets(generated)
    blobs = [
        base64.b64decode(line["value_b64"])
        for line in _lines(generated / "raw_messages.jsonl")
        if line.get("value_b64")
    ]
    assert blobs and scan(blobs, secrets) == []


_MEMORY_PROBE = """
import resource, sys
from pathlib import Path
from producers.generator import GenerateOptions, generate
generate(Path(sys.argv[1]) / "warm", GenerateOptions(applications=500, seed=1))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
generate(Path(sys.argv[1]) / "big", GenerateOptions(applications=int(sys.argv[2]), seed=1))
print(before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def test_a_large_run_keeps_memory_constant(tmp_path: Path) -> None:
    """Peak RSS after 500 applications and after 30,000 differ by a few MiB: nothing is kept per record."""
    result = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, str(tmp_path), "30000"],
        capture_output=True,
        text=True,
        check=True,
    )
    before_kib, after_kib = map(int, result.stdout.split())
    assert after_kib - before_kib < 8 * 1024


def test_two_vendors_make_the_cards_of_every_issuing_area(generated: Path) -> None:
    for name in ("reference.json", "reference.night2.json"):
        reference = parse_reference(json.loads((generated / name).read_text()))
        covered = [area for vendor in reference.vendors.values() for area in vendor.area_codes]
        assert len(reference.vendors) == 2
        assert sorted(covered) == sorted(reference.issuing_areas)  # each area by exactly one vendor


def test_expected_states_the_lifecycle_end_of_every_application(generated: Path) -> None:
    """Served applications end COMPLETED with their card issued and its savings function active (the demo's
    simulators make, deliver, hand over and activate every card); the others end without a card."""
    lines = [e for e in _lines(generated / "expected.jsonl") if e["kind"] == "application"]
    ends = {(e["final_state"], e["final_card_status"], e["final_financial_status"]) for e in lines}
    assert ends <= {
        ("COMPLETED", "ISSUED", "ACTIVE"),
        ("REJECTED", None, None),
        ("AWAITING_AGREEMENT", None, None),
    }
    assert ("COMPLETED", "ISSUED", "ACTIVE") in ends and ("REJECTED", None, None) in ends
    assert all(e["timeline"][-1]["state"] == "ACCEPTED" for e in lines if e["final_state"] == "COMPLETED")
