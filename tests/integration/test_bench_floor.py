"""The benchmark's honest floor reads exactly the planned records and decodes every decodable one.

A faster floor must not be a wrong one: it is held against an independent read of the same planned ranges
(one partition at a time, the project's codec), on a real broker and PostgreSQL, with records published after
the plan that it must leave alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from benchmarks.floors import HONEST_TABLE, contract_floor, honest_floor
from issuance.codec.avro import decode
from issuance.errors import DecodeError
from issuance.kafka.client_config import KafkaClientConfig
from issuance.kafka.topics import Topics
from issuance.settings import Settings
from issuance.store.db import connect
from pipelines.plan import plan_ranges
from pipelines.records import PartitionRange
from tests.fixtures_nightly import load_reference_file, make_generated, publish_night

Offset = tuple[str, int, int]


def planned_records(bootstrap: str, plan: list[PartitionRange]) -> dict[Offset, bytes]:
    """Every planned record's value, read one partition at a time."""
    consumer = KafkaConsumer(
        **KafkaClientConfig.plaintext(bootstrap).client_kwargs(), group_id=None, enable_auto_commit=False
    )
    values: dict[Offset, bytes] = {}
    try:
        for part in plan:
            tp = TopicPartition(part.topic, part.partition)
            consumer.assign([tp])
            consumer.seek(tp, part.start)
            while consumer.position(tp) < part.end:
                for record in consumer.poll(timeout_ms=200).get(tp, ()):
                    if record.offset < part.end:
                        values[(part.topic, part.partition, record.offset)] = record.value
    finally:
        consumer.close()
    return values


def project_decode(topic: str, value: bytes | None) -> dict[str, Any] | None:
    """The record as the project's codec decodes it for the topic's contract, or None."""
    if value is None:  # a null record: nothing to decode
        return None
    expected = "ApplicationSubmitted" if topic.endswith("applications") else "AgreementSigned"
    try:
        return decode(value, expected).record
    except DecodeError:
        return None


def test_honest_floor_reads_the_plan_and_decodes_every_decodable_record(
    settings: Settings, database_url: str, tmp_path: Path
) -> None:
    generated = make_generated(tmp_path / "data", 300)
    load_reference_file(settings, database_url, generated)
    publish_night(settings, generated, 1)  # with the malformed messages of night 1
    topics = Topics(settings)
    bootstrap = str(settings.kafka_bootstrap)
    plan = plan_ranges(KafkaClientConfig.plaintext(bootstrap), [topics.applications, topics.agreements], {})
    publish_night(settings, generated, 2)  # after the plan: not the floor's to read

    wanted = planned_records(bootstrap, plan)
    decodable = {offset: project_decode(offset[0], value) for offset, value in wanted.items()}
    assert len(wanted) == sum(p.size for p in plan)
    assert any(r is None for r in decodable.values()) and any(r is not None for r in decodable.values())

    floor = honest_floor(KafkaClientConfig.plaintext(bootstrap), database_url, plan)

    for step in floor.passes():
        assert step.records == len(wanted), step.label
    assert floor.decode.decoded == floor.full.decoded == sum(r is not None for r in decodable.values())
    with connect(database_url) as conn:
        rows = conn.execute(f"SELECT topic, part, off, id, bank, ok FROM {HONEST_TABLE}").fetchall()
    assert len(rows) == len(wanted)
    kept = {(topic, part, off): (id_, bank, ok) for topic, part, off, id_, bank, ok in rows}
    assert set(kept) == set(wanted)
    for offset, record in decodable.items():
        if record is None:
            assert kept[offset] == (None, None, False), offset
        else:
            key = "application_id" if offset[0].endswith("applications") else "agreement_id"
            assert kept[offset] == (record[key], record["bank_code"], True), offset


def test_contract_floor_reads_the_same_planned_records(
    settings: Settings, database_url: str, tmp_path: Path
) -> None:
    generated = make_generated(tmp_path / "data", 100)
    load_reference_file(settings, database_url, generated)
    publish_night(settings, generated, 1)
    topics = Topics(settings)
    bootstrap = str(settings.kafka_bootstrap)
    plan = plan_ranges(KafkaClientConfig.plaintext(bootstrap), [topics.applications, topics.agreements], {})
    publish_night(settings, generated, 2)

    count, _seconds = contract_floor(KafkaClientConfig.plaintext(bootstrap), database_url, plan)

    assert count == sum(p.size for p in plan)
