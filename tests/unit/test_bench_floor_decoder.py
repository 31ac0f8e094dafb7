"""The honest floor's hand-written decode agrees with the project's codec on what is decodable."""

from __future__ import annotations

from datetime import datetime

import pytest

from benchmarks.floors import decoder, kind_of
from issuance.codec.avro import decode, encode
from issuance.errors import DecodeError
from tests.avro_samples import SAMPLES

APPLICATION_V3 = encode("ApplicationSubmitted", SAMPLES[("ApplicationSubmitted", 3)])
APPLICATION_V2 = encode("ApplicationSubmitted", SAMPLES[("ApplicationSubmitted", 2)], version=2)
APPLICATION_V1 = encode("ApplicationSubmitted", SAMPLES[("ApplicationSubmitted", 1)], version=1)
AGREEMENT = encode("AgreementSigned", SAMPLES[("AgreementSigned", 1)])
DECISION = encode("DecisionIssued", SAMPLES[("DecisionIssued", 1)])
NAIVE_TIME = encode(
    "ApplicationSubmitted", {**SAMPLES[("ApplicationSubmitted", 3)], "submitted_at": "2026-11-01T10:00:00"}
)

CASES = {
    "application v3": ("x.branch.applications", APPLICATION_V3),
    "application v2": ("x.branch.applications", APPLICATION_V2),
    "application v1 writer": ("x.branch.applications", APPLICATION_V1),
    "agreement": ("x.branch.agreements", AGREEMENT),
    "agreement on the applications topic": ("x.branch.applications", AGREEMENT),
    "another record": ("x.branch.agreements", DECISION),
    "time without offset": ("x.branch.applications", NAIVE_TIME),
    "trailing byte": ("x.branch.applications", APPLICATION_V2 + b"\x00"),
    "truncated body": ("x.branch.applications", APPLICATION_V2[:-5]),
    "header only": ("x.branch.agreements", AGREEMENT[:10]),
    "unknown fingerprint": ("x.branch.agreements", AGREEMENT[:2] + bytes(8) + AGREEMENT[10:]),
    "no marker": ("x.branch.agreements", b"\x00\x01" + AGREEMENT[2:]),
    "empty": ("x.branch.applications", b""),
}


def _project(topic: str, value: bytes) -> bool:
    expected = "ApplicationSubmitted" if kind_of(topic) == "application" else "AgreementSigned"
    try:
        decode(value, expected)
    except DecodeError:
        return False
    return True


@pytest.mark.parametrize("case", sorted(CASES))
def test_floor_decodes_what_the_codec_decodes(case: str) -> None:
    topic, value = CASES[case]
    assert (decoder(kind_of(topic))(value) is not None) is _project(topic, value)


def test_floor_keeps_id_branch_bank_and_time() -> None:
    fields = decoder("application")(APPLICATION_V1)
    sample = SAMPLES[("ApplicationSubmitted", 1)]
    assert fields == (
        sample["application_id"],
        sample["branch_code"],
        sample["bank_code"],
        datetime.fromisoformat(sample["submitted_at"]),
    )
    assert decoder("agreement")(AGREEMENT) == (
        "AGR-000001",
        None,
        "ICBC",
        datetime.fromisoformat("2026-11-01T11:00:00+08:00"),
    )
    assert decoder("application")(NAIVE_TIME) == (
        SAMPLES[("ApplicationSubmitted", 3)]["application_id"],
        sample["branch_code"],
        sample["bank_code"],
        None,
    )
    assert decoder("application")(None) is None
