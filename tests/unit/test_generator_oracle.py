"""The generator's expected outcomes agree with the domain rules replayed night by night.

Two independent implementations of the business rules (the generator's construction and the domain functions)
must give the same answer; a disagreement means one of them misreads the brief.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from issuance.domain.agreement import AgreementOutcome, AgreementStatus, check_agreements
from issuance.domain.contract import parse_agreement, parse_application
from issuance.domain.duplicates import resolve_duplicates
from issuance.domain.model import Agreement, Application, ApplicationType
from issuance.domain.reference import parse_reference
from issuance.domain.verification import verify
from producers.generator import GenerateOptions, generate

OPEN = {"AWAITING_AGREEMENT", "ACCEPTED"}


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("oracle")
    generate(out, GenerateOptions(applications=3000, seed=11, invalid_ratio=0.4))
    return out


def _lines(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def _replay(out: Path) -> dict[str, list[tuple[str, str, list[str]]]]:
    """Run the domain rules over every night of the manifest: application id -> [(date, state, reasons)]."""
    manifest = json.loads((out / "manifest.json").read_text())
    apps: dict[str, Application] = {}
    state: dict[str, str] = {}
    agreements: dict[str, list[Agreement]] = defaultdict(list)
    issued_to: set[str] = set()
    timeline: dict[str, list[tuple[str, str, list[str]]]] = defaultdict(list)
    catalog = parse_reference(json.loads((out / manifest["reference"]).read_text()))
    for night in manifest["nights"]:
        day = date.fromisoformat(night["business_date"])
        if night["reference"]:  # that night's reference data, loaded before its run
            catalog = parse_reference(json.loads((out / night["reference"]).read_text()))
        registered_cards = {card.card_number for person in catalog.persons.values() for card in person.cards}
        new = (
            [parse_application(r) for r in _lines(out / night["applications"])]
            if night["applications"]
            else []
        )
        for record in _lines(out / night["agreements"]):
            agreement = parse_agreement(record)
            agreements[agreement.application_id].append(agreement)
        passed: dict[str, list[Application]] = defaultdict(list)
        for app in new:
            if app.application_id in apps:
                continue  # re-sent (its first decision again) or reused (a dead letter): not decided again
            apps[app.application_id] = app
            person = catalog.persons.get(app.applicant.id_number)
            reasons = verify(
                app,
                person,
                catalog,
                app.card_number in registered_cards,
                issued_card_holder=app.applicant.id_number in issued_to,
                guardian=catalog.persons.get(app.guardian_id_number or ""),
            )
            if reasons:
                state[app.application_id] = "REJECTED"
                timeline[app.application_id].append((night["business_date"], "REJECTED", sorted(reasons)))
            else:
                passed[app.applicant.id_number].append(app)
        open_people = {apps[a].applicant.id_number for a, s in state.items() if s in OPEN}
        going_on = [a for a, s in state.items() if s == "AWAITING_AGREEMENT"]
        for person_id, candidates in passed.items():
            resolution = resolve_duplicates(candidates, person_id in open_people)
            for dup in resolution.duplicates:
                state[dup.application_id] = "REJECTED"
                timeline[dup.application_id].append(
                    (night["business_date"], "REJECTED", ["DUPLICATE_APPLICATION"])
                )
            if resolution.kept is not None:
                going_on.append(resolution.kept.application_id)
        for application_id in going_on:
            app = apps[application_id]
            outcome = check_agreements(app, agreements[application_id], catalog.banks[app.bank_code], day)
            waited = state.get(application_id) == "AWAITING_AGREEMENT"
            if outcome.status is AgreementStatus.ACCEPTED and waited:
                # Accepted on a late agreement: verified again against tonight's reference data (Article 5).
                again = verify(
                    app,
                    catalog.persons.get(app.applicant.id_number),
                    catalog,
                    app.card_number in registered_cards,
                    issued_card_holder=app.applicant.id_number in issued_to,
                    guardian=catalog.persons.get(app.guardian_id_number or ""),
                )
                if again:
                    outcome = AgreementOutcome(AgreementStatus.REJECTED, reasons=tuple(again))
            if outcome.status is AgreementStatus.ACCEPTED:
                state[application_id] = "ACCEPTED"
                if app.application_type is ApplicationType.NEW_CARD:
                    issued_to.add(app.applicant.id_number)
                entry = ("ACCEPTED", [])
            elif outcome.status is AgreementStatus.AWAITING:
                state[application_id] = "AWAITING_AGREEMENT"
                entry = ("AWAITING_AGREEMENT", [])
            else:
                state[application_id] = "REJECTED"
                entry = ("REJECTED", sorted(outcome.reasons))
            timeline[application_id].append((night["business_date"], *entry))
    return timeline


def test_expected_outcomes_match_the_domain_rules(generated: Path) -> None:
    replayed = _replay(generated)
    mismatches = []
    for line in _lines(generated / "expected.jsonl"):
        if line["kind"] != "application":
            continue
        expected = [(s["business_date"], s["state"], s["reasons"]) for s in line["timeline"]]
        if replayed[line["application_id"]] != expected:
            mismatches.append((line["defect"], expected, replayed[line["application_id"]]))
    assert mismatches == []


def test_repeated_ids_are_told_apart_by_content(generated: Path) -> None:
    """A re-sent record equals the first one and expects its first decision; a reused id does not."""
    manifest = json.loads((generated / "manifest.json").read_text())
    first: dict[str, Application] = {}
    repeats: dict[str, Application] = {}
    for night in manifest["nights"]:
        for record in _lines(generated / night["applications"]) if night["applications"] else []:
            app = parse_application(record)
            (repeats if app.application_id in first else first)[app.application_id] = app
    replayed = _replay(generated)
    kinds = set()
    for line in _lines(generated / "expected.jsonl"):
        if line["kind"] == "resent_application":
            app_id = line["application_id"]
            assert repeats[app_id] == first[app_id]
            _date, state, reasons = replayed[app_id][0]
            assert (line["timeline"][0]["state"], line["timeline"][0]["reasons"]) == (state, reasons)
        elif line["kind"] == "reused_application_id":
            assert repeats[line["application_id"]] != first[line["application_id"]]
            assert line["reasons"] == ["APPLICATION_ID_REUSED"]
        kinds.add(line["kind"])
    assert {"resent_application", "reused_application_id"} <= kinds
