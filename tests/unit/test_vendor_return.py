"""The return-file parser and checker: every refusal of a line, every refusal of a whole file."""

from __future__ import annotations

import json

import pytest

from issuance.domain.lifecycle import CardStatus
from issuance.domain.vendor_return import (
    CardInProduction,
    Header,
    Line,
    LineRefusal,
    Refused,
    Result,
    ReturnFileRefused,
    VendorFile,
    check_header,
    check_lines,
    digest,
    parse,
    parse_line,
)
from issuance.errors import InputError

SHA = "ab" * 32
HEADER = {"run_id": 7, "vendor_code": "V1", "manifest_sha256": SHA}


def file_of(*lines: object, header: object = HEADER) -> bytes:
    rows = [header, *lines]
    return "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows).encode() + b"\n"


def produced(card: str = "A00000011", chip: str = "0123456789ABCDEF") -> dict[str, str]:
    return {"card_number": card, "result": "PRODUCED", "chip_serial": chip}


def failed(card: str = "A00000011", reason: str = "CHIP_WRITE_ERROR") -> dict[str, str]:
    return {"card_number": card, "result": "FAILED", "failure_reason": reason}


def test_a_well_formed_file_parses_with_its_digest_and_line_numbers() -> None:
    data = file_of(produced("A00000011"), "", failed("B00000022"))
    parsed = parse(data)
    assert parsed.sha256 == digest(data)
    assert parsed.header == Header(7, "V1", SHA)
    assert parsed.lines == (
        Line(2, "A00000011", Result.PRODUCED, chip_serial="0123456789ABCDEF"),
        Line(4, "B00000022", Result.FAILED, failure_reason="CHIP_WRITE_ERROR"),
    )
    assert parsed.refused == ()


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("not json", LineRefusal.NOT_JSON),
        ("[1, 2]", LineRefusal.NOT_JSON),
        (json.dumps({**produced(), "pad": "x" * 5000}), LineRefusal.NOT_JSON),
        (json.dumps(produced(card="a0000001")), LineRefusal.CARD_NUMBER_INVALID),
        (
            json.dumps({"result": "PRODUCED", "chip_serial": "0123456789ABCDEF"}),
            LineRefusal.CARD_NUMBER_INVALID,
        ),
        (json.dumps({"card_number": "A00000011", "result": "MADE"}), LineRefusal.RESULT_INVALID),
        (json.dumps({"card_number": "A00000011"}), LineRefusal.RESULT_INVALID),
        (json.dumps(produced(chip="xyz")), LineRefusal.CHIP_SERIAL_INVALID),
        (json.dumps({"card_number": "A00000011", "result": "PRODUCED"}), LineRefusal.CHIP_SERIAL_INVALID),
        (json.dumps(failed(reason="the chip of 张伟 broke")), LineRefusal.FAILURE_REASON_INVALID),
        (json.dumps({"card_number": "A00000011", "result": "FAILED"}), LineRefusal.FAILURE_REASON_INVALID),
        ("\udcff{", LineRefusal.NOT_JSON),  # not UTF-8 (written below as the byte 0xff)
        (json.dumps(produced(card="A0000\u0000011")), LineRefusal.CARD_NUMBER_INVALID),  # a NUL
        (json.dumps(produced(chip="01234567\u202eABCDEF")), LineRefusal.CHIP_SERIAL_INVALID),  # bidi override
    ],
)
def test_each_malformed_line_is_refused_with_its_reason(raw: str, reason: LineRefusal) -> None:
    data = raw.encode("utf-8", "surrogateescape")
    assert parse_line(3, data) == Refused(3, reason)
    if raw.isprintable():
        assert parse(file_of(produced("B00000022"), raw)).refused == (Refused(3, reason),)


@pytest.mark.parametrize(
    "header",
    [
        "not json",
        "[]",
        {**HEADER, "run_id": "7"},
        {**HEADER, "run_id": 0},
        {**HEADER, "run_id": True},
        {**HEADER, "vendor_code": ""},
        {**HEADER, "vendor_code": "V 1"},
        {**HEADER, "manifest_sha256": "AB" * 32},
        {k: v for k, v in HEADER.items() if k != "manifest_sha256"},
    ],
)
def test_a_file_without_a_valid_header_is_refused_as_a_whole(header: object) -> None:
    with pytest.raises(ReturnFileRefused) as caught:
        parse(file_of(produced(), header=header))
    assert isinstance(caught.value, InputError)  # exit 2
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("data", [b"", b"\n\n", b"\n" + json.dumps(HEADER).encode()])
def test_an_empty_file_or_one_not_starting_with_its_header_is_refused(data: bytes) -> None:
    with pytest.raises(ReturnFileRefused):
        parse(data)


def test_the_header_must_name_a_vendor_file_written_with_that_digest() -> None:
    header = Header(7, "V1", SHA)
    check_header(header, VendorFile(7, "V1", SHA, 3))
    with pytest.raises(ReturnFileRefused, match="no vendor file was written for run 7, vendor V1"):
        check_header(header, None)
    with pytest.raises(ReturnFileRefused, match="manifest_sha256 differs"):
        check_header(header, VendorFile(7, "V1", "cd" * 32, 3))


def test_lines_are_checked_against_the_cards_of_the_file() -> None:
    header = Header(7, "V1", SHA)
    cards = {
        "A00000011": CardInProduction("A00000011", CardStatus.IN_PRODUCTION, 7, "V1"),
        "B00000022": CardInProduction("B00000022", CardStatus.PRODUCED, 7, "V1"),
        "C00000033": CardInProduction("C00000033", CardStatus.IN_PRODUCTION, 8, "V1"),
        "D00000044": CardInProduction("D00000044", CardStatus.IN_PRODUCTION, 7, "V2"),
        "E00000055": CardInProduction("E00000055", CardStatus.IN_PRODUCTION, 7, "V1"),
    }
    lines = (
        Line(2, "A00000011", Result.PRODUCED, chip_serial="01234567"),
        Line(3, "B00000022", Result.PRODUCED, chip_serial="01234567"),  # answered before
        Line(4, "C00000033", Result.FAILED, failure_reason="X"),  # in a later vendor file now
        Line(5, "D00000044", Result.FAILED, failure_reason="X"),  # another vendor's
        Line(6, "Z00000099", Result.FAILED, failure_reason="X"),  # unknown
        Line(7, "A00000011", Result.FAILED, failure_reason="X"),  # the same card again
        Line(8, "E00000055", Result.FAILED, failure_reason="X"),
    )
    accepted, refused = check_lines(header, lines, cards)
    assert [line.line for line in accepted] == [2, 8]
    assert refused == [
        Refused(3, LineRefusal.NOT_IN_PRODUCTION),
        Refused(4, LineRefusal.NOT_IN_THIS_FILE),
        Refused(5, LineRefusal.NOT_IN_THIS_FILE),
        Refused(6, LineRefusal.NOT_IN_THIS_FILE),
        Refused(7, LineRefusal.REPEATED_CARD),
    ]


def test_a_refusal_names_the_line_and_the_reason_never_the_content() -> None:
    secret = "110105198001011238"
    (refusal,) = parse(file_of(json.dumps({"card_number": secret, "result": "PRODUCED"}))).refused
    assert refusal.to_json() == {"line": 2, "reason": "CARD_NUMBER_INVALID"}
    assert secret not in json.dumps(refusal.to_json())
