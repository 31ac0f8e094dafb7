"""The scan for personal values in clear finds them however they are written, and only them."""

from __future__ import annotations

import json

from issuance.codec.avro import encode
from issuance.domain.contract import application_to_record
from tests import factories
from tests.pii_scan import Hit, scan


def test_finds_id_numbers_names_and_phones_in_avro_and_json_text() -> None:
    record = application_to_record(factories.application(guardian_id_number=factories.GUARDIAN_ID))
    applicant = record["applicant"]
    secrets = [applicant["id_number"], applicant["name"], applicant["phone"], factories.GUARDIAN_ID]
    blobs = [
        encode("ApplicationSubmitted", record, version=2),
        json.dumps(record).encode(),  # names escaped as \\uXXXX
        b"nothing here 2026-11-01T10:00:00+08:00 APP-000001",
        None,
    ]
    hits = scan(blobs, secrets)
    assert {h for h in hits if h.blob == 0} == {Hit(0, s) for s in secrets}
    assert {h for h in hits if h.blob == 1} == {Hit(1, s) for s in secrets}
    assert not [h for h in hits if h.blob > 1]


def test_a_lowercase_check_character_and_a_name_inside_other_text_are_found() -> None:
    assert scan([b"id 11010519800101123x;", "患者张伟先生".encode()], ["11010519800101123X", "张伟"]) == [
        Hit(0, "11010519800101123X"),
        Hit(1, "张伟"),
    ]
