"""Properties over any input: decoder and contract raise only the DecodeError family, the rules nothing.

These are what lets a night turn every bad record into a dead letter instead of stopping (the nightly decode
stage catches DecodeError per record; anything else would be a bug caught only by its safety net).
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from issuance.codec.avro import encode
from issuance.codec.registry import default_registry
from issuance.domain.agreement import check_agreements
from issuance.domain.contract import (
    AGREEMENT_RECORD,
    APPLICATION_RECORD,
    decode_record,
    parse_agreement,
    parse_application,
)
from issuance.domain.model import Agreement, Application, ApplicationType, Channel, Material
from issuance.domain.verification import verify
from issuance.errors import DecodeError, SchemaViolation
from tests import factories

# No deadline: a slow example is not a failure (no timed assertions in the tests).
PROPERTY = settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])
BUSINESS_DATE = date(2026, 11, 1)

_json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20)
json_values = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=20,
)
# Texts as a night may meet them: any character (control, zero-width, bidi, CJK), long and short.
any_text = st.text(max_size=80) | st.text(alphabet=st.characters(max_codepoint=0x3000), max_size=80)
timestamps = (
    st.datetimes(
        min_value=datetime(1, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-12))]),
    ).map(datetime.isoformat)
    | st.sampled_from(
        ["9999-12-31T00:00:00+08:00", "9999-12-31T23:00:00-12:00", "0001-01-01T00:00:00+08:00", "2026-11-01"]
    )
    | any_text
)
ids = st.from_regex(r"[0-9]{17}[0-9X]", fullmatch=True) | any_text


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


application_records = st.fixed_dictionaries(
    {
        "application_id": any_text,
        "application_type": st.sampled_from([t.value for t in ApplicationType]),
        "branch_code": any_text,
        "bank_code": any_text,
        "channel": st.sampled_from([c.value for c in Channel]),
        "applicant": st.fixed_dictionaries({"id_number": ids, "name": any_text, "phone": any_text}),
        "card_number": _maybe(st.from_regex(r"[0-9A-Z]{9}", fullmatch=True) | any_text),
        "guardian_id_number": _maybe(ids),
        "materials": st.lists(st.sampled_from([m.value for m in Material]), max_size=12),
        "submitted_at": timestamps,
    }
)
agreement_records = st.fixed_dictionaries(
    {
        "agreement_id": any_text,
        "application_id": any_text,
        "bank_code": any_text,
        "terms_version": any_text,
        "document_sha256": st.from_regex(r"[0-9a-f]{64}", fullmatch=True) | any_text,
        "signed_at": timestamps,
        "channel": st.sampled_from([c.value for c in Channel]),
    }
)

# Records the contract lets through (mostly), with the values the rules look at drawn widely.
plausible_times = st.datetimes(
    min_value=datetime(2000, 1, 2),
    max_value=datetime(2026, 11, 2),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-12))]),
).map(datetime.isoformat)
codes = st.sampled_from(
    [factories.BRANCH, factories.BANK, factories.OTHER_BANK, "BR-UNKNOWN"]
) | st.from_regex(r"[A-Z0-9-]{1,20}", fullmatch=True)
id_numbers = st.sampled_from([factories.ADULT_ID, factories.MINOR_ID, factories.GUARDIAN_ID]) | st.from_regex(
    r"[0-9]{17}[0-9X]", fullmatch=True
)
plausible_application_records = st.fixed_dictionaries(
    {
        "application_id": st.from_regex(r"[A-Z0-9-]{1,30}", fullmatch=True),
        "application_type": st.sampled_from([t.value for t in ApplicationType]),
        "branch_code": codes,
        "bank_code": codes,
        "channel": st.sampled_from([c.value for c in Channel]),
        "applicant": st.fixed_dictionaries(
            {
                "id_number": id_numbers,
                "name": st.text(
                    alphabet=st.characters(categories=["Lo", "Lu", "Ll"]), min_size=1, max_size=8
                ),
                "phone": st.from_regex(r"1[0-9]{10}", fullmatch=True),
            }
        ),
        "card_number": _maybe(st.just(factories.CARD) | st.from_regex(r"[0-9A-Z]{9}", fullmatch=True)),
        "guardian_id_number": _maybe(id_numbers),
        "materials": st.lists(st.sampled_from([m.value for m in Material]), max_size=8),
        "submitted_at": plausible_times,
    }
)
plausible_agreement_records = st.fixed_dictionaries(
    {
        "agreement_id": st.from_regex(r"[A-Z0-9-]{1,30}", fullmatch=True),
        "application_id": st.from_regex(r"[A-Z0-9-]{1,3}", fullmatch=True),
        "bank_code": codes,
        "terms_version": st.sampled_from([factories.TERMS, "2020.1"]),
        "document_sha256": st.from_regex(r"[0-9a-f]{64}", fullmatch=True),
        "signed_at": plausible_times,
        "channel": st.sampled_from([c.value for c in Channel]),
    }
)


def _header(record_name: str) -> bytes:
    return default_registry().versions[record_name][-1].header


def _only_decode_errors(data: bytes | None, record_name: str) -> None:
    with contextlib.suppress(DecodeError):
        decode_record(data, record_name, max_bytes=16_384, business_date=BUSINESS_DATE)


@PROPERTY
@given(st.none() | st.binary(max_size=300), st.sampled_from([APPLICATION_RECORD, AGREEMENT_RECORD]))
def test_any_bytes_decode_or_raise_a_decode_error(data: bytes | None, record_name: str) -> None:
    _only_decode_errors(data, record_name)


@PROPERTY
@given(st.binary(max_size=400), st.sampled_from([APPLICATION_RECORD, AGREEMENT_RECORD]))
def test_any_body_behind_a_known_header_decodes_or_raises_a_decode_error(
    body: bytes, record_name: str
) -> None:
    _only_decode_errors(_header(record_name) + body, record_name)


@PROPERTY
@given(application_records)
def test_any_encodable_application_decodes_or_raises_a_decode_error(record: dict[str, Any]) -> None:
    try:
        data = encode(APPLICATION_RECORD, record, version=2)  # an older client's, personal fields in clear
    except SchemaViolation:
        assume(False)  # not encodable (e.g. a lone surrogate): it cannot reach a topic as Avro
        return
    _only_decode_errors(data, APPLICATION_RECORD)
    _only_decode_errors(data[: len(data) // 2], APPLICATION_RECORD)


@PROPERTY
@given(agreement_records)
def test_any_encodable_agreement_decodes_or_raises_a_decode_error(record: dict[str, Any]) -> None:
    try:
        data = encode(AGREEMENT_RECORD, record)
    except SchemaViolation:
        assume(False)
        return
    _only_decode_errors(data, AGREEMENT_RECORD)


@PROPERTY
@given(json_values | application_records | st.dictionaries(st.text(max_size=20), json_values, max_size=12))
def test_any_json_value_is_an_application_or_a_schema_violation(record: Any) -> None:
    with contextlib.suppress(SchemaViolation):
        parse_application(record, BUSINESS_DATE)


@PROPERTY
@given(json_values | agreement_records)
def test_any_json_value_is_an_agreement_or_a_schema_violation(record: Any) -> None:
    with contextlib.suppress(SchemaViolation):
        parse_agreement(record, BUSINESS_DATE)


def _application(record: dict[str, Any]) -> Application:
    try:
        return parse_application(record, BUSINESS_DATE)
    except SchemaViolation:
        assume(False)
        raise


@PROPERTY
@given(plausible_application_records, st.booleans(), st.booleans(), st.booleans())
def test_the_rules_judge_every_application_the_contract_lets_through(
    record: dict[str, Any], registered: bool, holder: bool, known_person: bool
) -> None:
    application = _application(record)
    reference = factories.reference()
    person = factories.person(id_number=application.applicant.id_number) if known_person else None
    verify(application, person, reference, registered, holder)


@PROPERTY
@given(
    plausible_application_records,
    st.lists(plausible_agreement_records, max_size=3),
    st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)),
)
def test_the_agreement_rule_judges_every_pair_the_contract_lets_through(
    record: dict[str, Any], agreement_records_: list[dict[str, Any]], business_date: date
) -> None:
    application = _application(record)
    agreements: list[Agreement] = []
    for candidate in agreement_records_:
        try:
            parsed = parse_agreement(candidate, BUSINESS_DATE)
        except SchemaViolation:
            continue
        agreements.append(replace(parsed, application_id=application.application_id))  # they all match it
    bank = factories.reference().banks[factories.BANK]
    check_agreements(application, agreements, bank, business_date)
