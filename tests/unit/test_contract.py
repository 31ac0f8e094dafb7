"""The input-record contract: valid records parse, every break is reported by field name, never by value."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from issuance.application_wire import open_application, seal_application
from issuance.codec.avro import decode, encode
from issuance.domain.contract import (
    agreement_to_record,
    application_to_record,
    decode_agreement,
    decode_application,
    parse_agreement,
    parse_application,
)
from issuance.domain.model import DeadLetterReason
from issuance.errors import MalformedMessage, SchemaViolation
from issuance.trust.errors import TrustFailure
from issuance.trust.parties import BUREAU
from issuance.trust.sealing import Sealer
from tests import factories
from tests.wire_parties import WireParties

PARTIES = WireParties([])


def _application_record(**changes: Any) -> dict[str, Any]:
    record = application_to_record(factories.application())
    record.update(changes)
    return record


def _problems(record: Any, parse: Any = parse_application) -> dict[str, str]:
    with pytest.raises(SchemaViolation) as caught:
        parse(record)
    assert caught.value.reason == "SCHEMA_VIOLATION"
    return dict(caught.value.problems)


def test_application_round_trips_through_its_record_and_the_wire() -> None:
    application = factories.application(card_number="A1B2C3D4E", guardian_id_number=factories.GUARDIAN_ID)
    record = application_to_record(application)
    assert parse_application(record) == application
    sealed = seal_application(record, Sealer.to(PARTIES.directory, BUREAU))
    opened = open_application(
        decode(encode("ApplicationSubmitted", sealed)).record, PARTIES.trust().unsealer()
    )
    assert parse_application(opened) == application


def test_agreement_round_trips_through_its_record_and_the_wire() -> None:
    agreement = factories.agreement()
    assert parse_agreement(agreement_to_record(agreement)) == agreement
    assert decode_agreement(encode("AgreementSigned", agreement_to_record(agreement))) == agreement


@pytest.mark.parametrize("version", [1, 2])
def test_an_older_message_with_the_personal_fields_in_clear_is_read_but_does_not_open(version: int) -> None:
    record = application_to_record(factories.application())
    decoded = decode(encode("ApplicationSubmitted", record, version=version)).record
    assert decoded["application_id"] == record["application_id"] and "applicant" not in decoded
    with pytest.raises(TrustFailure) as caught:
        open_application(decoded, PARTIES.trust().unsealer())
    assert caught.value.reason is DeadLetterReason.SEAL_INVALID


def test_extra_fields_are_ignored() -> None:
    record = _application_record(branch_operator="OP-7", submission_source="kiosk")
    record["applicant"] = {**record["applicant"], "email": "x@example.com"}
    assert parse_application(record) == factories.application()


def test_missing_optional_fields_are_none() -> None:
    record = _application_record()
    del record["card_number"], record["guardian_id_number"]
    assert parse_application(record).card_number is None


def test_all_problems_of_a_record_are_reported_together() -> None:
    record = _application_record(application_type="RENEWAL", channel=None, materials=["RESIDENT_ID_CARD", 7])
    del record["bank_code"]
    record["applicant"] = {"id_number": "12345", "name": "  ", "phone": 13800138000}
    assert _problems(record) == {
        "application_type": "must be one of NEW_CARD, FINANCIAL_ACTIVATION",
        "bank_code": "required",
        "channel": "required",
        "applicant.id_number": "does not match ^[0-9]{17}[0-9Xx]$",
        "applicant.name": "must be 1..64 characters, not blank",
        "applicant.phone": "must be a string",
        "materials[1]": "must be a string",
    }


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("application_id", "", "must be 1..64 characters, not blank"),
        ("application_id", "A" * 65, "must be 1..64 characters, not blank"),
        ("application_id", 17, "must be a string"),
        ("branch_code", None, "required"),
        ("card_number", "a1b2c3d4e", "does not match ^[0-9A-Z]{9}$"),
        ("card_number", "A1B2C3D4E5", "does not match ^[0-9A-Z]{9}$"),
        ("guardian_id_number", "44030419750520123Y", "does not match ^[0-9]{17}[0-9Xx]$"),
        ("materials", "RESIDENT_ID_CARD", "must be a list"),
        ("submitted_at", "2026-11-01T10:00:00", "must be an ISO-8601 date-time with an explicit offset"),
        ("submitted_at", "2026-11-01", "must be an ISO-8601 date-time with an explicit offset"),
        ("submitted_at", "01/11/2026 10:00 +08:00", "must be an ISO-8601 date-time with an explicit offset"),
        ("submitted_at", 1764000000, "must be a string"),
        ("applicant", "someone", "must be an object"),
    ],
)
def test_each_application_contract_break(field: str, value: Any, problem: str) -> None:
    assert _problems(_application_record(**{field: value})) == {field: problem}


def test_lowercase_x_check_character_is_written_upper_case() -> None:
    record = _application_record(guardian_id_number="44030420121130005x")
    record["applicant"] = {**record["applicant"], "id_number": "11010519491231002x"}
    application = parse_application(record)
    assert application.applicant.id_number == "11010519491231002X"
    assert application.guardian_id_number == "44030420121130005X"


def test_id_number_checksum_is_not_a_contract_break() -> None:
    # A wrong check character is the business rejection ID_NUMBER_INVALID, decided by verification.
    record = _application_record()
    record["applicant"] = {**record["applicant"], "id_number": "110105198001011230"}
    assert parse_application(record).applicant.id_number == "110105198001011230"


@pytest.mark.parametrize(
    "value", ["2026-11-01T10:00:00Z", "2026-11-01T10:00:00.123456+08:00", "2026-11-01T02:00:00+00:00"]
)
def test_timestamps_with_an_offset_are_accepted(value: str) -> None:
    submitted_at = parse_application(_application_record(submitted_at=value)).submitted_at
    assert submitted_at.utcoffset() is not None


def test_offset_is_kept() -> None:
    submitted_at = parse_application(
        _application_record(submitted_at="2026-11-01T23:30:00+08:00")
    ).submitted_at
    assert submitted_at == datetime(2026, 11, 1, 23, 30, tzinfo=timezone(timedelta(hours=8)))
    assert submitted_at.date().day == 1


def test_a_record_that_is_not_an_object() -> None:
    assert _problems(["not", "an", "object"]) == {"$": "must be an object"}


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("agreement_id", "", "must be 1..64 characters, not blank"),
        ("terms_version", "v" * 17, "must be 1..16 characters, not blank"),
        ("document_sha256", "A" * 64, "does not match ^[0-9a-f]{64}$"),
        ("document_sha256", "0" * 63, "does not match ^[0-9a-f]{64}$"),
        ("signed_at", "yesterday", "must be an ISO-8601 date-time with an explicit offset"),
        ("channel", "MAIL", "must be one of COUNTER, SELF_SERVICE_TERMINAL"),
        ("application_id", None, "required"),
    ],
)
def test_each_agreement_contract_break(field: str, value: Any, problem: str) -> None:
    record = {**agreement_to_record(factories.agreement()), field: value}
    assert _problems(record, parse_agreement) == {field: problem}


def test_problems_never_quote_values() -> None:
    secret_name = "王秘密" * 30  # too long
    record = copy.deepcopy(_application_record())
    record["applicant"]["name"] = secret_name
    record["applicant"]["id_number"] = "SECRET-ID"
    with pytest.raises(SchemaViolation) as caught:
        parse_application(record)
    assert "王秘密" not in str(caught.value)
    assert "SECRET-ID" not in str(caught.value)


def test_decoded_message_that_breaks_the_contract_is_a_schema_violation() -> None:
    sealed = seal_application(
        _application_record(submitted_at="not a time"), PARTIES.preparer().keys.to_bureau()
    )
    opened = open_application(
        decode(encode("ApplicationSubmitted", sealed)).record, PARTIES.trust().unsealer()
    )
    with pytest.raises(SchemaViolation) as caught:
        parse_application(opened)
    assert caught.value.field == "submitted_at"


def test_undecodable_bytes_stay_malformed() -> None:
    with pytest.raises(MalformedMessage):
        decode_application(b"\xc3\x01")
