"""`issuance generate`: realistic synthetic data with known right answers, deterministic for a seed.

The generator is the independent oracle the nightly batch is tested against: every expected outcome follows
from the defect the generator injected (see producers/cases.py), never from the verification code. Everything
is written as it is made, so a million applications take constant memory. File formats: producers/README.md.
"""

from __future__ import annotations

import json
import random
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import IO, Any

from producers.cases import DEFECT_CASES, PAIR_CASES, VALID_CASES, Case, valid
from producers.catalog import build_catalog
from producers.raw_messages import write_raw_messages
from producers.world import Night, Sinks, World

FORMAT_VERSION = 1
DEFAULT_START_DATE = date(2026, 3, 2)
NIGHT_OFFSETS = {1: 0, 2: 3, 3: 31}  # days after the start date
EXTRA_PERSON_SHARE = 0.05  # registry entries of people who apply for nothing
APPLICATION_FILES = {1: "applications.jsonl", 2: "applications-night2.jsonl"}
AGREEMENT_FILES = {1: "agreements.jsonl", 2: "agreements-night2.jsonl", 3: "agreements-night3.jsonl"}
REFERENCE_FILE = "reference.json"
# Nights whose reference data differs from the night before: a whole document each, loaded before that night.
REFERENCE_FILES = {1: REFERENCE_FILE, 2: "reference.night2.json"}
EXPECTED_FILE = "expected.jsonl"
RAW_FILE = "raw_messages.jsonl"
MANIFEST_FILE = "manifest.json"


@dataclass(frozen=True, slots=True)
class GenerateOptions:
    """What to generate."""

    applications: int
    seed: int
    invalid_ratio: float = 0.2
    start_date: date = DEFAULT_START_DATE

    def __post_init__(self) -> None:
        if self.applications < 1:
            raise ValueError("applications must be at least 1")
        if not 0.0 <= self.invalid_ratio <= 1.0:
            raise ValueError("invalid_ratio must be between 0 and 1")


def raw_message_count(applications: int) -> int:
    """One dead-letter message per thousand applications, at least one of each kind."""
    from producers.raw_messages import RAW_KINDS

    return max(len(RAW_KINDS), applications // 1000)


def generate(out_dir: Path, options: GenerateOptions) -> dict[str, Any]:
    """Write every file into out_dir and return the manifest (also written as manifest.json)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(options.seed)
    nights = {n: Night(n, options.start_date + timedelta(days=d)) for n, d in NIGHT_OFFSETS.items()}
    catalog = build_catalog(rng)
    with ExitStack() as stack:

        def open_(name: str) -> IO[str]:
            return stack.enter_context((out_dir / name).open("w", encoding="utf-8", newline="\n"))

        registries = {night: open_(name) for night, name in REFERENCE_FILES.items()}
        for night, registry in registries.items():
            head = json.dumps(catalog.to_json(night), ensure_ascii=False, indent=1)
            registry.write(head[: head.rindex("}")].rstrip() + ',\n "persons": [')
        sinks = Sinks(
            registries,
            {n: open_(name) for n, name in APPLICATION_FILES.items()},
            {n: open_(name) for n, name in AGREEMENT_FILES.items()},
            open_(EXPECTED_FILE),
            open_(RAW_FILE),
        )
        world = World(rng, catalog, nights, sinks)
        _write_cases(world, options)
        write_raw_messages(world, raw_message_count(options.applications))
        for registry in registries.values():
            registry.write("\n ]\n}\n")
    manifest = _manifest(options, nights, world)
    (out_dir / MANIFEST_FILE).write_text(
        json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return manifest


def _write_cases(world: World, options: GenerateOptions) -> None:
    """Draw cases until exactly `applications` applications are written."""
    rng = world.rng
    defects = 0
    valid_cases = [case for case, _ in VALID_CASES]
    weights = [weight for _, weight in VALID_CASES]
    while world.applications_written < options.applications:
        case: Case
        if rng.random() < options.invalid_ratio:
            case = DEFECT_CASES[defects % len(DEFECT_CASES)]
            defects += 1
        else:
            case = rng.choices(valid_cases, weights)[0]
        if case in PAIR_CASES and options.applications - world.applications_written < 2:
            case = valid
        case(world)
        if rng.random() < EXTRA_PERSON_SHARE:
            _extra_person(world)


def _extra_person(world: World) -> None:
    """Someone in the registry who applies for nothing, sometimes with old or active cards."""
    person = world.person(insured=world.rng.random() < 0.9)
    for _ in range(world.rng.choice((0, 0, 1, 1, 2))):
        world.card(
            person,
            world.rng.choice(world.catalog.banks).bank_code,
            status=world.rng.choice(("VALID", "VALID", "LOST", "CANCELLED")),
            financial=world.rng.choice(("INACTIVE", "ACTIVE")),
        )
    world.register(person)


def _manifest(options: GenerateOptions, nights: dict[int, Night], world: World) -> dict[str, Any]:
    return {
        "format": FORMAT_VERSION,
        "seed": options.seed,
        "applications": options.applications,
        "invalid_ratio": options.invalid_ratio,
        "start_date": options.start_date.isoformat(),
        "agreement_window_days": 30,
        "reference": REFERENCE_FILE,
        "expected": EXPECTED_FILE,
        "persons": world.sinks.persons_written,
        "nights": [
            {
                "night": night.number,
                "business_date": night.business_date.isoformat(),
                "reference": REFERENCE_FILES.get(night.number) if night.number > 1 else None,
                "applications": APPLICATION_FILES.get(night.number),
                "agreements": AGREEMENT_FILES.get(night.number),
                "raw_messages": RAW_FILE if night.number == 1 else None,
            }
            for night in nights.values()
        ],
        "counts": dict(sorted(world.counts.items())),
    }
