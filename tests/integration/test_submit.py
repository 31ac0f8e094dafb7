"""Submission against the real broker: what is published, how it is keyed, and what is refused."""

from __future__ import annotations

import base64
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition

from issuance.codec.avro import decode
from issuance.kafka.client_config import KafkaClientConfig
from issuance.kafka.topics import Topics
from issuance.settings import Settings
from producers.client import BranchClient
from producers.generator import GenerateOptions, generate
from producers.submission import Kind, submit_file
from tests.fixtures_nightly import Generated, load_reference_file, provision_partners


def read_topic(bootstrap: str, topic: str, expected: int, idle_s: float = 3.0) -> list[tuple[bytes, bytes]]:
    """Every (key, value) of the topic, reading until `expected` records came or nothing came for idle_s."""
    consumer = KafkaConsumer(
        **KafkaClientConfig.plaintext(bootstrap).client_kwargs(), enable_auto_commit=False, group_id=None
    )
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        records: list[tuple[bytes, bytes]] = []
        last = time.monotonic()
        while len(records) < expected or time.monotonic() - last < 0.5:
            batch = consumer.poll(timeout_ms=200)
            for messages in batch.values():
                records.extend((m.key, m.value) for m in messages)
                last = time.monotonic()
            if time.monotonic() - last > idle_s:
                break
        return records
    finally:
        consumer.close()


@pytest.fixture
def generated(tmp_path: Path) -> Path:
    out = tmp_path / "generated"
    generate(out, GenerateOptions(applications=120, seed=8, invalid_ratio=0.3))
    return out


@pytest.fixture
def client(settings: Settings, database_url: str, generated: Path) -> Any:
    """A branch client holding the keys of the generated branches and banks (provisioned, registered)."""
    load_reference_file(settings, database_url, Generated(generated, {}))
    provision_partners(settings)
    with BranchClient.from_settings(settings, delivery_timeout_s=15) as branch:
        yield branch


def _with_bad_lines(source: Path, target: Path, bad_record: dict[str, Any]) -> list[int]:
    """Copy source with a non-JSON line, an array, a blank line and a contract break; their line numbers."""
    lines = source.read_text(encoding="utf-8").splitlines()
    out = [*lines[:3], "{not json", "[1, 2]", "", json.dumps(bad_record, ensure_ascii=False), *lines[3:]]
    target.write_text("\n".join(out) + "\n", encoding="utf-8")
    return [4, 5, 7]


def test_invalid_lines_are_reported_and_not_published(
    client: BranchClient, generated: Path, settings: Settings, kafka_bootstrap: str, tmp_path: Path
) -> None:
    valid = [json.loads(line) for line in (generated / "applications.jsonl").read_text().splitlines()]
    broken = dict(valid[0], application_id="BROKEN-1", submitted_at="2026-03-02 09:00:00")
    broken["applicant"] = dict(valid[0]["applicant"], id_number="12345")
    path = tmp_path / "applications.jsonl"
    bad_lines = _with_bad_lines(generated / "applications.jsonl", path, broken)

    report = submit_file(client, path, Kind.APPLICATIONS, report_file=tmp_path / "report.jsonl")

    assert (report.published, report.rejected, report.unconfirmed) == (len(valid), 3, 0)
    assert report.exit_code == 2
    assert [r.line for r in report.rejections] == bad_lines
    fields = {field for field, _ in report.rejections[2].problems}
    assert fields == {"applicant.id_number", "submitted_at"}
    assert all("12345" not in reason for _, reason in report.rejections[2].problems)
    per_line = [json.loads(line) for line in (tmp_path / "report.jsonl").read_text().splitlines()]
    assert [e["line"] for e in per_line if e["status"] == "rejected"] == bad_lines
    assert sum(e["status"] == "published" for e in per_line) == len(valid)

    records = read_topic(kafka_bootstrap, Topics(settings).applications, len(valid))
    by_id = {r["application_id"]: r for r in valid}
    seen = []
    for key, value in records:
        record = decode(value, "ApplicationSubmitted").record
        seen.append(record["application_id"])
        assert key == record["application_id"].encode()  # keyed by application id: no person's identifier
        assert by_id[record["application_id"]]["applicant"]["id_number"].encode() not in value
    assert sorted(seen) == sorted(by_id)


def test_agreements_are_keyed_by_application_id(
    client: BranchClient, generated: Path, settings: Settings, kafka_bootstrap: str
) -> None:
    lines = [json.loads(line) for line in (generated / "agreements.jsonl").read_text().splitlines()]
    report = submit_file(client, generated / "agreements.jsonl", Kind.AGREEMENTS)
    assert (report.published, report.exit_code) == (len(lines), 0)
    records = read_topic(kafka_bootstrap, Topics(settings).agreements, len(lines))
    decoded = [(key, decode(value, "AgreementSigned").record) for key, value in records]
    assert sorted(r["agreement_id"] for _, r in decoded) == sorted(a["agreement_id"] for a in lines)
    assert all(key == r["application_id"].encode() for key, r in decoded)


def test_the_same_file_twice_publishes_the_same_ids_twice(
    client: BranchClient, generated: Path, settings: Settings, kafka_bootstrap: str
) -> None:
    path = generated / "applications.jsonl"
    ids = [json.loads(line)["application_id"] for line in path.read_text().splitlines()]
    first = submit_file(client, path, Kind.APPLICATIONS)
    second = submit_file(client, path, Kind.APPLICATIONS)
    assert first.exit_code == second.exit_code == 0
    records = read_topic(kafka_bootstrap, Topics(settings).applications, 2 * len(ids))
    counted = Counter(decode(value).record["application_id"] for _, value in records)
    # Downstream idempotency keys: the same application id twice, so the batch stores each application once.
    assert counted == Counter({application_id: 2 for application_id in ids})


def test_raw_messages_are_published_as_prepared(
    client: BranchClient, generated: Path, settings: Settings, kafka_bootstrap: str
) -> None:
    raw = [json.loads(line) for line in (generated / "raw_messages.jsonl").read_text().splitlines()]
    report = submit_file(client, generated / "raw_messages.jsonl", Kind.RAW)
    assert (report.published, report.exit_code) == (len(raw), 0)
    topics = Topics(settings)
    on_topic = read_topic(
        kafka_bootstrap, topics.applications, sum(r["topic"] == "applications" for r in raw)
    )
    on_topic += read_topic(kafka_bootstrap, topics.agreements, sum(r["topic"] == "agreements" for r in raw))
    verbatim = [r for r in raw if "record" not in r]  # the others are encoded and sealed at submit
    sent = [
        (r["key"].encode(), None if r["value_b64"] is None else base64.b64decode(r["value_b64"]))
        for r in verbatim
    ]
    assert len(on_topic) == len(raw) and {k for k, _ in on_topic} == {r["key"].encode() for r in raw}
    assert set(sent) <= set(on_topic) and any(v is None for _, v in sent)  # null records among them


def test_single_records_resolve_to_acknowledgements(client: BranchClient, generated: Path) -> None:
    record = json.loads((generated / "applications.jsonl").read_text().splitlines()[0])
    ack = client.submit_application(record).result(timeout=15)
    assert ack.topic == client.topics.applications and ack.offset >= 0
