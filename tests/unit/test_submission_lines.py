"""Line handling of `issuance submit` without a broker: validation, rejections, the per-line ledger."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest

from issuance.codec.avro import decode
from issuance.crypto import Vault
from issuance.errors import BrokerUnavailable
from issuance.kafka.topics import Topics
from issuance.settings import Settings
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


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lines")
    generate(out, GenerateOptions(applications=30, seed=2))
    return out


@pytest.fixture
def preparer() -> Preparer:
    return Preparer(Topics(Settings(topic_prefix="u.")), Vault([("k1", bytes(32))], bytes(range(32))))


def _first(path: Path) -> bytes:
    return path.read_bytes().splitlines()[0]


def test_valid_application_is_encoded_and_keyed_by_blind_index(preparer: Preparer, data: Path) -> None:
    raw = _first(data / "applications.jsonl")
    prepared = prepare_line(preparer, Kind.APPLICATIONS, raw)
    record = json.loads(raw)
    assert prepared.topic == "u.branch.applications"
    assert prepared.key == Vault([("k1", bytes(32))], bytes(range(32))).blind_index(
        record["applicant"]["id_number"]
    )
    assert decode(prepared.value, "ApplicationSubmitted").record["application_id"] == record["application_id"]


def test_agreement_is_keyed_by_application_id(preparer: Preparer, data: Path) -> None:
    raw = _first(data / "agreements.jsonl")
    prepared = prepare_line(preparer, Kind.AGREEMENTS, raw)
    assert prepared.key == json.loads(raw)["application_id"].encode()


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
    bad = {"topic": "elsewhere", "key": 3, "value_b64": "***"}
    with pytest.raises(LineRejected) as caught:
        prepare_line(preparer, Kind.RAW, json.dumps(bad).encode())
    assert [f for f, _ in caught.value.problems] == ["topic", "key", "value_b64"]


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
