"""Helpers for nightly-batch tests: generated data, its reference data loaded, a night's messages published."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kafka import KafkaProducer

from issuance.codec.avro import encode
from issuance.crypto import Vault
from issuance.domain.reference import parse_reference
from issuance.kafka.topics import Topics, ensure_topics
from issuance.settings import Settings
from issuance.store.db import connect
from issuance.store.reference_load import load_reference
from producers.generator import AGREEMENT_FILES, APPLICATION_FILES, GenerateOptions, generate


@dataclass(frozen=True)
class Generated:
    directory: Path
    manifest: dict[str, Any]

    def business_date(self, night: int) -> str:
        return str(next(n["business_date"] for n in self.manifest["nights"] if n["night"] == night))

    def expected(self) -> list[dict[str, Any]]:
        with (self.directory / "expected.jsonl").open(encoding="utf-8") as handle:
            return [json.loads(line) for line in handle]


def make_generated(directory: Path, applications: int, seed: int = 7) -> Generated:
    manifest = generate(directory, GenerateOptions(applications=applications, seed=seed))
    return Generated(directory, manifest)


def load_reference_file(settings: Settings, database_url: str, generated: Generated) -> None:
    reference = parse_reference(json.loads((generated.directory / "reference.json").read_text(encoding="utf-8")))
    with connect(database_url) as conn:
        load_reference(conn, Vault.from_settings(settings), reference, actor="test", source="reference.json")
    ensure_topics(str(settings.kafka_bootstrap), settings, list(reference.banks))


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    if not path.exists():
        return
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def publish_night(settings: Settings, generated: Generated, night: int, raw: bool = True) -> int:
    """Publish a night's applications and agreements (and, on night 1, the raw messages) as a branch would."""
    from issuance.domain.contract import agreement_to_record, application_to_record, parse_agreement, parse_application

    topics = Topics(settings)
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all", linger_ms=5)
    sent = 0
    try:
        name = APPLICATION_FILES.get(night)
        if name:
            for record in _lines(generated.directory / name):
                value = encode("ApplicationSubmitted", application_to_record(parse_application(record)))
                producer.send(topics.applications, key=record["application_id"].encode(), value=value)
                sent += 1
        name = AGREEMENT_FILES.get(night)
        if name:
            for record in _lines(generated.directory / name):
                value = encode("AgreementSigned", agreement_to_record(parse_agreement(record)))
                producer.send(topics.agreements, key=record["application_id"].encode(), value=value)
                sent += 1
        if raw and night == 1:
            for message in _lines(generated.directory / "raw_messages.jsonl"):
                topic = topics.applications if message["topic"] == "applications" else topics.agreements
                producer.send(topic, key=message["key"].encode(), value=base64.b64decode(message["value_b64"]))
                sent += 1
        producer.flush()
    finally:
        producer.close()
    return sent


def states(database_url: str) -> dict[str, tuple[str, list[str]]]:
    with connect(database_url) as conn:
        rows = conn.execute("SELECT application_id, state, reasons FROM applications").fetchall()
    return {str(a): (str(s), sorted(r)) for a, s, r in rows}


def expected_after(expected: list[dict[str, Any]], business_date: str) -> dict[str, tuple[str, list[str]]]:
    """Each application's expected state and reasons after the night of `business_date` (before bank answers)."""
    out = {}
    for line in expected:
        if line["kind"] != "application":
            continue
        steps = [s for s in line["timeline"] if s["business_date"] <= business_date]
        if steps:
            out[line["application_id"]] = (steps[-1]["state"], sorted(steps[-1]["reasons"]))
    return out


def mismatches(actual: dict[str, tuple[str, list[str]]], wanted: dict[str, tuple[str, list[str]]]) -> list[str]:
    """Human-readable differences (application id: actual != expected), at most 20."""
    lines = []
    for app_id in sorted(set(actual) | set(wanted)):
        if actual.get(app_id) != wanted.get(app_id):
            lines.append(f"{app_id}: {actual.get(app_id)} != expected {wanted.get(app_id)}")
    return lines[:20]
