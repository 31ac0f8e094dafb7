"""The nightly stages with TestPipeline and plain values: decode routing, chunking, coders, reconciliation."""

from __future__ import annotations

from datetime import date

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from issuance.codec.avro import encode
from issuance.crypto import Vault
from issuance.domain.contract import agreement_to_record, application_to_record
from issuance.domain.personalization import valid_until
from issuance.trust.parties import branch
from pipelines.coders import BatchCoder, register_batch_coders
from pipelines.plan import split_chunks
from pipelines.reconcile import balance
from pipelines.records import Chunk, PartitionRange, RawRecord, RecordBatch
from pipelines.transforms.decode import DecodedBatch, DecodeRecords
from tests import factories
from tests.wire_parties import WireParties

VAULT = Vault([("test1", bytes(range(32)))], bytes(range(32, 64)))
BRANCH = branch(factories.BRANCH)
PARTIES = WireParties([BRANCH])


def _chunk(kind: str = "application") -> Chunk:
    return Chunk(run_id=7, kind=kind, topic=f"t.branch.{kind}s", partition=1, start=10, end=14)


def _summary(batch: DecodedBatch) -> tuple[int, int, list[tuple[int, str]]]:
    """(applications, agreements, [(offset, dead-letter reason)])."""
    return (
        len(batch.applications),
        len(batch.agreements),
        sorted((int(row[3]), str(row[5])) for row in batch.dead_letters),  # type: ignore[call-overload]
    )


def test_decode_routes_bad_records_to_dead_letters_and_goes_on() -> None:
    preparer = PARTIES.preparer()
    good = preparer.prepare_application(application_to_record(factories.application()))
    wrong_record = encode("AgreementSigned", agreement_to_record(factories.agreement()))

    def signed(offset: int, value: bytes) -> RawRecord:
        return RawRecord(offset, None, value, tuple(PARTIES.sender_keys().headers(BRANCH, None, value)))

    assert good.value is not None and good.headers is not None
    records = [
        RawRecord(10, good.key, good.value, tuple(good.headers)),
        signed(11, b"not avro at all"),
        signed(12, b"\xc3\x01" + bytes(8) + b"body"),
        signed(13, wrong_record),
    ]
    with BeamTestPipeline() as p:
        decoded = (
            p
            | "OneBatch" >> beam.Create([RecordBatch(_chunk(), records)])  # RecordBatch
            | "Decode" >> DecodeRecords(VAULT, PARTIES.trust())  # DecodedBatch
            | "Summarize" >> beam.Map(_summary)  # (apps, agreements, dead letters)
        )
        assert_that(
            decoded,
            equal_to([(1, 0, [(11, "MALFORMED_MESSAGE"), (12, "UNKNOWN_SCHEMA"), (13, "SCHEMA_VIOLATION")])]),
        )


def test_dead_letters_keep_the_source_position_and_an_encrypted_payload() -> None:
    with BeamTestPipeline() as p:
        rows = (
            p
            | beam.Create([RecordBatch(_chunk("agreement"), [RawRecord(12, None, b"\x00garbage")])])
            | DecodeRecords(VAULT, PARTIES.trust())
            | beam.FlatMap(lambda b: b.dead_letters)
            | beam.Map(lambda r: (r[0], r[1], r[2], r[3], r[4], VAULT.decrypt_bytes(r[7])))
        )
        assert_that(rows, equal_to([(7, "t.branch.agreements", 1, 12, "decode", b"\x00garbage")]))


def test_the_plan_is_cut_into_chunks_covering_every_offset_once() -> None:
    plan = [PartitionRange("apps", 0, 5, 30), PartitionRange("apps", 1, 0, 0), PartitionRange("agr", 0, 3, 7)]
    chunks = split_chunks(1, plan, {"apps": "application", "agr": "agreement"}, 10)
    assert [(c.topic, c.partition, c.start, c.end, c.kind) for c in chunks] == [
        ("apps", 0, 5, 15, "application"),
        ("apps", 0, 15, 25, "application"),
        ("apps", 0, 25, 30, "application"),
        ("agr", 0, 3, 7, "agreement"),
    ]


def test_batch_coder_round_trips_and_sizes_without_pickling() -> None:
    register_batch_coders()
    batch = RecordBatch(_chunk(), [RawRecord(i, None, b"x") for i in range(5)])
    coder = BatchCoder()
    assert coder.decode(coder.encode(batch)) == batch
    assert coder.estimate_size(batch) == 5 * 256


def test_reconciliation_balances_per_branch_and_in_total() -> None:
    report = balance(
        {"B1": 5, "B2": 2, "(unknown)": 1},
        {
            "B1": {"accepted": 2, "rejected": 2, "awaiting_agreement": 1},
            "B2": {"rejected": 2},
            "(unknown)": {"dead_lettered": 1},
        },
    )
    assert report["balanced"]
    assert report["total"]["read"] == 8


def test_reconciliation_fails_when_one_branch_is_off() -> None:
    report = balance({"B1": 3}, {"B1": {"rejected": 2}})
    assert not report["balanced"]
    assert not report["branches"]["B1"]["balanced"]


def test_cards_are_valid_ten_years() -> None:
    assert valid_until(date(2026, 3, 2)) == date(2036, 3, 1)
    assert valid_until(date(2028, 2, 29)) == date(2038, 2, 28)
