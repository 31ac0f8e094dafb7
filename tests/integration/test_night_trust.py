"""The night trusts applications and agreements only from the party they speak for, against the real broker
and PostgreSQL: a forged agreement is no consent and closes nothing, a forged application is a dead letter,
a generated night reaches every trust reason and changes nothing else, and no record of branch.applications
holds a generated person's ID number, name or phone number in clear."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition

from issuance.domain.contract import agreement_to_record, application_to_record
from issuance.kafka.client_config import KafkaClientConfig
from issuance.kafka.topics import Topics
from issuance.settings import Settings
from issuance.store.db import connect
from issuance.trust.parties import Party, bank, branch
from pipelines import nightly
from producers.client import BranchClient, Prepared
from producers.raw_prepare import Forgery, encode_record, sign_raw
from tests import factories as f
from tests.fixtures_nightly import (
    expected_after,
    load_reference_data,
    load_reference_file,
    make_generated,
    mismatches,
    provision_partners,
    publish_night,
    publish_records,
    states,
)
from tests.pii_scan import generated_secrets, scan

NIGHTS = ("2026-11-01", "2026-11-02")
OTHER_BRANCH = "BR-310115-001"  # the other bank's branch in tests.factories.reference()


def _forge(
    settings: Settings,
    kind: str,
    record: dict[str, Any],
    sender: Party | None,
    forgery: Forgery | None = None,
) -> None:
    """Publish a record as an attacker with write access to the topic would: signed by `sender` (None:
    unsigned), forged as `forgery` says."""
    with BranchClient.from_settings(settings, delivery_timeout_s=30) as client:
        topics = client.topics
        topic = topics.applications if kind == "application" else topics.agreements
        key = str(record["application_id"]).encode()
        value = encode_record(client.preparer, topic, record, sender, forgery)
        client.send(sign_raw(client.preparer, Prepared(topic, key, value, "forged"), sender, forgery)).result(
            30
        )


def _night(settings: Settings, day: str) -> nightly.NightlyResult:
    result = nightly.run(["--business-date", day], settings=settings)
    assert result.balanced
    return result


def _dead_letters(database_url: str) -> list[tuple[str, str | None]]:
    with connect(database_url) as conn:
        rows = conn.execute("SELECT reason, branch_code FROM dead_letters ORDER BY id").fetchall()
    return [(str(reason), branch_code) for reason, branch_code in rows]


@pytest.mark.parametrize(
    ("sender", "reason"), [(None, "SIGNATURE_MISSING"), (bank(f.OTHER_BANK), "SENDER_MISMATCH")]
)
def test_a_forged_agreement_is_no_consent(
    settings: Settings, database_url: str, sender: Party | None, reason: str
) -> None:
    load_reference_data(settings, database_url, f.reference())
    publish_records(settings, applications=[f.application()])
    _forge(settings, "agreement", agreement_to_record(f.agreement()), sender)
    _night(settings, NIGHTS[0])
    assert states(database_url)["APP-000001"] == ("AWAITING_AGREEMENT", [])
    assert _dead_letters(database_url) == [(reason, None)]


def test_a_forged_invalid_agreement_does_not_close_the_application(
    settings: Settings, database_url: str
) -> None:
    load_reference_data(settings, database_url, f.reference())
    publish_records(settings, applications=[f.application()])
    outdated = agreement_to_record(f.agreement(agreement_id="AGR-FORGED", terms_version="2019.1"))
    _forge(settings, "agreement", outdated, bank(f.OTHER_BANK))  # another bank speaking for ICBC
    _forge(settings, "agreement", outdated | {"agreement_id": "AGR-FORGED-2"}, bank(f.BANK), Forgery.ALTERED)
    _night(settings, NIGHTS[0])
    assert states(database_url)["APP-000001"] == ("AWAITING_AGREEMENT", [])  # not REJECTED

    publish_records(settings, agreements=[f.agreement()])  # the applicant's own agreement, signed by ICBC
    _night(settings, NIGHTS[1])
    assert states(database_url)["APP-000001"] == ("ACCEPTED", [])
    assert sorted(r for r, _ in _dead_letters(database_url)) == ["SENDER_MISMATCH", "SIGNATURE_INVALID"]


def test_a_forged_application_is_a_dead_letter_and_changes_nothing(
    settings: Settings, database_url: str
) -> None:
    load_reference_data(settings, database_url, f.reference())
    provision_partners(settings)
    record = application_to_record(f.application())
    _forge(settings, "application", record, branch(OTHER_BRANCH))  # another branch speaking for BR-110105-001
    _forge(
        settings,
        "application",
        record | {"application_id": "APP-SEAL"},
        branch(f.BRANCH),
        Forgery.SEALED_TO_SENDER,
    )
    publish_records(settings, agreements=[f.agreement()])
    _night(settings, NIGHTS[0])
    assert states(database_url) == {}
    # The dead letter of a forged application is not put down to the branch it impersonated.
    assert sorted(_dead_letters(database_url)) == [("SEAL_INVALID", f.BRANCH), ("SENDER_MISMATCH", None)]


def _topic_values(settings: Settings, topic: str) -> list[bytes | None]:
    """Every record of `topic` from its start: values and header values."""
    consumer = KafkaConsumer(
        **KafkaClientConfig.from_settings(settings).client_kwargs(), group_id=None, enable_auto_commit=False
    )
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        blobs: list[bytes | None] = []
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            for records in consumer.poll(timeout_ms=1000).values():
                for record in records:
                    blobs.append(record.value)
                    blobs.extend(value for _, value in record.headers or ())
        return blobs
    finally:
        consumer.close()


def test_a_generated_night_reaches_every_trust_reason_and_leaks_no_personal_data(
    settings: Settings, database_url: str, tmp_path: Path
) -> None:
    generated = make_generated(tmp_path / "data", 160, seed=23)
    load_reference_file(settings, database_url, generated)
    publish_night(settings, generated, 1)
    day = generated.business_date(1)
    _night(settings, day)

    expected = generated.expected()
    assert mismatches(states(database_url), expected_after(expected, day)) == []
    wanted = Counter(
        reason for line in expected if line["kind"] == "raw_message" for reason in line["reasons"]
    )
    assert Counter(r for r, _ in _dead_letters(database_url)) == wanted
    assert {"SIGNATURE_MISSING", "SIGNATURE_INVALID", "SENDER_MISMATCH", "SEAL_INVALID"} <= set(wanted)

    blobs = _topic_values(settings, Topics(settings).applications)
    assert len(blobs) > 160 and scan(blobs, generated_secrets(generated.directory)) == []
