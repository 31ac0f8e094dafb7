"""The contract's bounds: harmful texts, implausible dates, unbounded lists and sizes, fields beyond it."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from issuance.codec.avro import encode
from issuance.domain.contract import (
    AGREEMENT_RECORD,
    APPLICATION_RECORD,
    CLEAR_APPLICATION_VERSION,
    MAX_MATERIALS,
    application_to_record,
    decode_record,
    latest_timestamp,
    parse_agreement,
    parse_application,
    record_bytes,
    text_problem,
    unknown_fields,
)
from issuance.errors import EmptyMessage, OversizedMessage, SchemaViolation
from tests import factories

BUSINESS_DATE = date(2026, 11, 1)
CONTROL = "must not contain control characters"
BIDI = "must not contain bidirectional control characters"
BLANK = "must be 1..64 characters, not blank"
WINDOW = (
    "must be from 2000-01-01 and before 2026-11-03T00:00Z"
    " (not implausibly old, at most a day after the business date)"
)


def _record(**changes: Any) -> dict[str, Any]:
    record = application_to_record(factories.application())
    record.update(changes)
    return record


def _with_name(name: str) -> dict[str, Any]:
    record = _record()
    record["applicant"] = {**record["applicant"], "name": name}
    return record


def _problems(record: Any, business_date: date | None = BUSINESS_DATE) -> dict[str, str]:
    with pytest.raises(SchemaViolation) as caught:
        parse_application(record, business_date)
    return dict(caught.value.problems)


@pytest.mark.parametrize("field", ["application_id", "branch_code", "bank_code"])
@pytest.mark.parametrize("char", ["\x00", "\x07", "\n", "\t", "\x7f", "\x85", "\u2028"])
def test_control_characters_are_refused_in_every_text_field(field: str, char: str) -> None:
    assert _problems(_record(**{field: f"BR{char}001"})) == {field: CONTROL}


@pytest.mark.parametrize("char", ["\u202e", "\u202d", "\u2066", "\u2067", "\u200f", "\u061c"])
def test_bidirectional_controls_are_refused(char: str) -> None:
    assert _problems(_with_name(f"张{char}伟")) == {"applicant.name": BIDI}


@pytest.mark.parametrize("name", ["\u200b", "\u200b\u200c\u200d", "\ufeff", " \u3000 ", "\u3164", "\u034f"])
def test_names_with_nothing_visible_are_refused(name: str) -> None:
    assert _problems(_with_name(name)) == {"applicant.name": BLANK}


@pytest.mark.parametrize("name", ["张伟", "买买提·艾力", "Zhang Wei", "\ue000明", "阿\u200d依"])
def test_real_names_pass(name: str) -> None:
    # A private-use character (rare characters of legacy systems) and a joiner inside a name are allowed.
    assert parse_application(_with_name(name), BUSINESS_DATE).applicant.name == name


def test_free_text_is_bounded() -> None:
    assert _problems(_with_name("张" * 65)) == {"applicant.name": BLANK}
    assert _problems(_with_name("x" * 900_000)) == {"applicant.name": BLANK}
    assert text_problem("张" * 64) is None


def test_lists_are_bounded() -> None:
    assert parse_application(_record(materials=["RESIDENT_ID_CARD", "HOUSEHOLD_REGISTER"] * 4), BUSINESS_DATE)
    assert _problems(_record(materials=["RESIDENT_ID_CARD"] * (MAX_MATERIALS + 1))) == {
        "materials": f"must have at most {MAX_MATERIALS} entries"
    }
    assert _problems(_record(materials=["RESIDENT_ID_CARD"] * 100_000)) == {
        "materials": f"must have at most {MAX_MATERIALS} entries"
    }


@pytest.mark.parametrize(
    "value",
    [
        "9999-12-31T00:00:00+08:00",
        "9999-12-31T23:00:00-12:00",
        "0001-01-01T00:00:00+08:00",
        "1999-12-31T23:59:59+00:00",
        "2026-11-03T00:00:00+00:00",  # two days after the business date, UTC
        "2026-11-03T08:00:00+08:00",
    ],
)
def test_dates_outside_the_plausible_window_are_refused(value: str) -> None:
    assert _problems(_record(submitted_at=value)) == {"submitted_at": WINDOW}


@pytest.mark.parametrize(
    "value", ["2000-01-01T00:00:00+00:00", "2026-11-02T23:59:59+00:00", "2026-11-03T07:59:59+08:00"]
)
def test_dates_inside_the_window_pass(value: str) -> None:
    assert parse_application(_record(submitted_at=value), BUSINESS_DATE)


def test_the_window_follows_the_business_date_only() -> None:
    """A re-run of a night judges the same record the same way: the bound is the run's date, not the clock."""
    assert latest_timestamp(BUSINESS_DATE).isoformat() == "2026-11-03T00:00:00+00:00"
    record = _record(submitted_at="2030-01-01T10:00:00+08:00")
    assert parse_application(record, date(2029, 12, 31))
    assert "submitted_at" in _problems(record, date(2029, 12, 30))
    assert "submitted_at" in _problems(_record(submitted_at="2100-01-01T00:00:00+00:00"), None)


def test_offsets_are_bounded() -> None:
    assert _problems(_record(submitted_at="2026-11-01T10:00:00+15:00")) == {
        "submitted_at": "must have an offset within -12:00..+14:00"
    }


def test_the_agreement_has_the_same_bounds() -> None:
    record = {
        "agreement_id": "AGR\x00",
        "application_id": "APP",
        "bank_code": "ICBC",
        "terms_version": "2026.1",
        "document_sha256": "0" * 64,
        "signed_at": "9999-12-31T00:00:00+08:00",
        "channel": "COUNTER",
    }
    with pytest.raises(SchemaViolation) as caught:
        parse_agreement(record, BUSINESS_DATE)
    assert dict(caught.value.problems) == {"agreement_id": CONTROL, "signed_at": WINDOW}


def test_problems_never_quote_the_value() -> None:
    secret = "张\x00秘密"
    with pytest.raises(SchemaViolation) as caught:
        parse_application(_with_name(secret), BUSINESS_DATE)
    assert "秘密" not in str(caught.value)


def test_unknown_fields_are_named_not_valued() -> None:
    record = _record(note="x", **{"bad\x00name": 1})
    record["applicant"] = {**record["applicant"], "nickname": "小张"}
    assert unknown_fields(record, APPLICATION_RECORD) == ["(unprintable name)", "applicant.nickname", "note"]
    assert unknown_fields(_record(), APPLICATION_RECORD) == []


@pytest.mark.parametrize("value", [None, b""])
def test_an_empty_record_is_an_empty_message(value: bytes | None) -> None:
    with pytest.raises(EmptyMessage) as caught:
        decode_record(value, APPLICATION_RECORD)
    assert caught.value.reason == "EMPTY_MESSAGE"


def test_an_oversized_record_is_not_decoded() -> None:
    data = encode(APPLICATION_RECORD, _with_name("张" * 10_000), version=2)
    with pytest.raises(OversizedMessage) as caught:
        decode_record(data, APPLICATION_RECORD, max_bytes=16_384)
    assert caught.value.reason == "OVERSIZED_MESSAGE"
    assert "30" in str(caught.value) and "16384-byte limit" in str(caught.value)


def test_a_decoded_record_turns_back_into_its_message_with_the_personal_fields_in_it() -> None:
    application = factories.application()
    clear = encode(APPLICATION_RECORD, application_to_record(application), version=CLEAR_APPLICATION_VERSION)
    assert record_bytes(application) == clear
    agreement = factories.agreement()
    assert decode_record(record_bytes(agreement), AGREEMENT_RECORD) == agreement
