"""Line handling of `issuance submit` without a broker: validation, rejections, the per-line ledger."""

from __future__ import annotations

import base64
import io
import json
from datetime import date
from pathlib import Path

import pytest

from issuance.application_wire import open_application
from issuance.codec.avro import decode
from issuance.errors import BrokerUnavailable
from issuance.kafka.topics import Topics
from issuance.settings import Settings
from issuance.trust.parties import bank, branch
from producers.client import Acknowledged, Preparer
from producers.generator import GenerateOptions, generate
from producers.submission import (
    Kind,
    Ledger,
    LineRejected,
    SubmissionReport,
    _summarize,
    count_lines,
    prepare_line,
)
from tests.wire_parties import WireParties


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lines")
    generate(out, GenerateOptions(applications=30, seed=2))
    return out


@pytest.fixture(scope="module")
def parties(data: Path) -> WireParties:
    reference = json.loads((data / "reference.json").read_text(encoding="utf-8"))
    return WireParties(
        [branch(b["branch_code"]) for b in reference["branches"]]
        + [bank(b["bank_code"]) for b in reference["banks"]]
    )


@pytest.fixture
def preparer(parties: WireParties) -> Preparer:
    return parties.preparer(Topics(Settings(topic_prefix="u.")), today=date(2026, 3, 2))


def _first(path: Path) -> bytes:
    return path.read_bytes().splitlines()[0]


def test_valid_application_is_sealed_signed_and_keyed_by_application_id(
    preparer: Preparer, parties: WireParties, data: Path
) -> None:
    raw = _first(data / "applications.jsonl")
    prepared = prepare_line(preparer, Kind.APPLICATIONS, raw)
    record = json.loads(raw)
    assert prepared.topic == "u.branch.applications"
    assert prepared.key == record["application_id"].encode()
    assert prepared.value is not None and record["applicant"]["id_number"].encode() not in prepared.value
    sender = parties.trust().verifier().sender(prepared.headers, prepared.key, prepared.value)
    assert sender == branch(record["branch_code"])
    wire = decode(prepared.value, "ApplicationSubmitted").record
    assert open_application(wire, parties.trust().unsealer())["applicant"] == record["applicant"]


def test_agreement_is_signed_by_its_bank_and_keyed_by_application_id(
    preparer: Preparer, parties: WireParties, data: Path
) -> None:
    raw = _first(data / "agreements.jsonl")
    prepared = prepare_line(preparer, Kind.AGREEMENTS, raw)
    assert prepared.key == json.loads(raw)["application_id"].encode()
    assert prepared.value is not None
    sender = parties.trust().verifier().sender(prepared.headers, prepared.key, prepared.value)
    assert sender == bank(json.loads(raw)["bank_code"])


def test_a_record_of_a_party_this_keystore_lacks_is_rejected_by_its_line(data: Path) -> None:
    preparer = WireParties([]).preparer(Topics(Settings(topic_prefix="u.")), today=date(2026, 3, 2))
    for name, kind, field in (
        ("applications.jsonl", Kind.APPLICATIONS, "branch_code"),
        ("agreements.jsonl", Kind.AGREEMENTS, "bank_code"),
    ):
        with pytest.raises(LineRejected) as caught:
            prepare_line(preparer, kind, _first(data / name))
        assert caught.value.problems[0][0] == field and "no key file" in caught.value.problems[0][1]


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"{oops", "$"),
        (b"[1]", "$"),
        (b"\xff\xfe", "$"),
        (b'{"application_id": "A1"}', "application_type"),
    ],
)
def test_bad_lines_are_rejected_with_a_field(preparer: Preparer, raw: bytes, field: str) -> None:
    with pytest.raises(LineRejected) as caught:
        prepare_line(preparer, Kind.APPLICATIONS, raw)
    assert caught.value.problems[0][0] == field


def test_raw_lines_need_topic_and_base64(preparer: Preparer) -> None:
    good = {
        "message_id": "M1",
        "topic": "agreements",
        "key": "k",
        "value_b64": base64.b64encode(b"\x00x").decode(),
    }
    prepared = prepare_line(preparer, Kind.RAW, json.dumps(good).encode())
    assert (prepared.topic, prepared.key, prepared.value) == ("u.branch.agreements", b"k", b"\x00x")
    assert prepared.headers is None  # no sender: unsigned
    bad = {"topic": "elsewhere", "key": 3, "value_b64": "***", "sender": "nobody", "forgery": "MAGIC"}
    with pytest.raises(LineRejected) as caught:
        prepare_line(preparer, Kind.RAW, json.dumps(bad).encode())
    assert [f for f, _ in caught.value.problems] == ["topic", "key", "sender", "forgery", "value_b64"]


def test_ledger_accounts_for_every_line() -> None:
    ledger = Ledger()
    indexes = [ledger.add(n) for n in (1, 2, 3, 5, 6, 7, 8)]
    ledger.callback(indexes[0])(Acknowledged("t", 0, 10))
    ledger.reject(indexes[1], (("channel", "must be one of COUNTER, SELF_SERVICE_TERMINAL"),))
    ledger.callback(indexes[2])(BrokerUnavailable("gone"))
    ledger.unconfirmed(indexes[3])
    ledger.callback(indexes[5])(Acknowledged("t", 1, 4))
    ledger.finalize()  # indexes 4 (line 6) and 6 (line 8) never answered
    ledger.callback(indexes[6])(Acknowledged("t", 1, 5))  # too late: stays unconfirmed
    report = SubmissionReport("f", "applications", "t")
    _summarize(ledger, report)
    assert (report.lines, report.published, report.rejected, report.unconfirmed) == (7, 2, 1, 4)
    assert report.unconfirmed_ranges == [(3, 6), (8, 8)]
    assert report.exit_code == 1
    out = io.StringIO()
    ledger.write_report(out)
    statuses = [json.loads(line)["status"] for line in out.getvalue().splitlines()]
    assert statuses == [
        "published",
        "rejected",
        "unconfirmed",
        "unconfirmed",
        "unconfirmed",
        "published",
        "unconfirmed",
    ]


def test_exit_codes() -> None:
    assert SubmissionReport("f", "k", "t", lines=2, published=2).exit_code == 0
    assert SubmissionReport("f", "k", "t", lines=2, published=1, rejected=1).exit_code == 2
    assert SubmissionReport("f", "k", "t", lines=3, published=1, rejected=1, unconfirmed=1).exit_code == 1


def test_count_lines(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"x\ny\n")
    (tmp_path / "b").write_bytes(b"x\ny")
    (tmp_path / "c").write_bytes(b"")
    assert [count_lines(tmp_path / n) for n in "abc"] == [2, 2, 0]
