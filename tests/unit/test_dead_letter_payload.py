"""A dead letter's bytes read as far as they go and masked; the re-drive's validation; one-line errors."""

from __future__ import annotations

import json
from typing import Any

import kafka.errors
import psycopg
import pydantic
import pytest

from cli import language
from cli.common import invocation, translate
from cli.dead_letters import export_bytes, handled_reason, prepare_redrive
from issuance.application_wire import open_application, seal_application
from issuance.codec.avro import decode, encode
from issuance.domain.contract import agreement_to_record, application_to_record
from issuance.domain.dead_letter_payload import (
    HEX_EXCERPT_BYTES,
    PayloadForm,
    RecordKind,
    inspect_payload,
    mask_record,
)
from issuance.errors import BrokerUnavailable, InputError
from issuance.kafka.topics import Topics
from issuance.settings import Settings
from issuance.store.db import DatabaseUnavailable
from issuance.trust.parties import bank, branch
from producers.client import Preparer
from tests import factories
from tests.wire_parties import WireParties

PHONE = "13800138000"
GUARDIAN = factories.GUARDIAN_ID


def _record(**overrides: Any) -> dict[str, Any]:
    record = application_to_record(factories.application())
    record.update(overrides)
    return record


def _personal(record: dict[str, Any]) -> list[str]:
    applicant = record["applicant"]
    return [applicant["id_number"], applicant["name"], applicant["phone"]]


def _screen(view_json: dict[str, Any]) -> str:
    return json.dumps(view_json, ensure_ascii=False)


PARTIES = WireParties([branch(factories.BRANCH), bank(factories.BANK)])
UNSEALER = PARTIES.trust().unsealer()


def _preparer() -> Preparer:
    return PARTIES.preparer(Topics(Settings(topic_prefix="t.")))


def _sealed(record: dict[str, Any]) -> bytes:
    """The application as a branch sends it: personal fields sealed to the bureau (contract not checked)."""
    return encode("ApplicationSubmitted", seal_application(record, PARTIES.sender_keys().to_bureau()))


def test_a_valid_application_is_shown_with_every_personal_field_masked() -> None:
    record = _record(guardian_id_number=GUARDIAN)
    view = inspect_payload(_sealed(record), RecordKind.APPLICATION, unsealer=UNSEALER)

    assert view.valid and view.form is PayloadForm.AVRO and view.record_name == "ApplicationSubmitted"
    shown = view.masked()
    screen = _screen(shown)
    for secret in [*_personal(record), GUARDIAN]:
        assert secret not in screen
    assert shown["record"]["application_id"] == record["application_id"]
    assert shown["record"]["applicant"]["id_number"] == "110*************38"
    assert shown["record"]["applicant"]["name"] == "张*"
    assert shown["record"]["applicant"]["phone"] == "138****8000"
    assert shown["hex_excerpt"] is None


def test_an_older_application_is_shown_as_written_and_masked() -> None:
    record = _record(guardian_id_number=GUARDIAN)
    view = inspect_payload(encode("ApplicationSubmitted", record, version=2), RecordKind.APPLICATION)
    assert view.valid and view.version == 2
    assert view.masked()["record"]["applicant"]["name"] == "张*"
    assert all(secret not in _screen(view.masked()) for secret in [*_personal(record), GUARDIAN])


def test_sealed_personal_fields_that_do_not_open_are_a_problem_never_shown() -> None:
    data = _sealed(_record())
    for unsealer in (None, WireParties([]).trust().unsealer()):  # no key, or another bureau's
        view = inspect_payload(data, RecordKind.APPLICATION, unsealer)
        assert not view.valid and [f for f, _ in view.problems] == ["personal"]
        assert "personal" not in (view.record or {})
        json.dumps(view.masked())  # no bytes left to show


def test_a_contract_break_names_the_field_never_the_value() -> None:
    record = _record()
    record["applicant"]["id_number"] = record["applicant"]["id_number"][:12]
    view = inspect_payload(_sealed(record), RecordKind.APPLICATION, unsealer=UNSEALER)

    assert not view.valid
    assert [field for field, _ in view.problems] == ["applicant.id_number"]
    assert record["applicant"]["id_number"] not in _screen(view.masked())


def test_a_record_of_the_other_kind_is_a_problem_of_the_record() -> None:
    data = encode("AgreementSigned", agreement_to_record(factories.agreement()))
    view = inspect_payload(data, RecordKind.APPLICATION)
    assert view.problems == (("$record", "expected ApplicationSubmitted, got AgreementSigned"),)


def test_truncated_bytes_show_their_schema_and_a_short_hex_excerpt() -> None:
    data = _sealed(_record())[:-5]
    view = inspect_payload(data, RecordKind.APPLICATION)

    assert view.form is PayloadForm.UNDECODABLE and view.record is None
    assert view.record_name == "ApplicationSubmitted" and view.version is not None
    assert view.hex_excerpt == data[:HEX_EXCERPT_BYTES].hex(" ")
    assert view.size == len(data) and view.error


def test_json_sent_as_text_is_read_and_masked_including_unknown_fields() -> None:
    record = _record(note="call 13912345678", extra={"account_number": "6222020200112233445"})
    view = inspect_payload(json.dumps(record, ensure_ascii=False).encode(), RecordKind.APPLICATION)

    assert view.form is PayloadForm.JSON_TEXT and not view.valid
    screen = _screen(view.masked())
    for secret in [*_personal(record), "13912345678", "6222020200112233445"]:
        assert secret not in screen
    assert view.masked()["record"]["note"] == "*" * len("call 13912345678")


def test_mask_record_keeps_codes_and_hides_numbers_of_unknown_fields() -> None:
    assert mask_record({"branch_code": "B1", "materials": ["BANK_CARD"], "score": 123456789, "ok": True}) == {
        "branch_code": "B1",
        "materials": ["BANK_CARD"],
        "score": "*********",
        "ok": True,
    }


def test_export_writes_json_when_it_decodes_and_bytes_otherwise() -> None:
    record = _record()
    data = _sealed(record)
    form, content = export_bytes(data, inspect_payload(data, RecordKind.APPLICATION, UNSEALER))
    assert form == "json" and json.loads(content)["applicant"] == record["applicant"]
    broken = data[:-3]
    assert export_bytes(broken, inspect_payload(broken, RecordKind.APPLICATION)) == ("raw", broken)


@pytest.mark.parametrize("version", [2, 3])
def test_redrive_of_the_original_publishes_the_same_record_sealed_and_signed_by_its_branch(
    version: int,
) -> None:
    preparer = _preparer()
    record = _record()
    data = _sealed(record) if version == 3 else encode("ApplicationSubmitted", record, version=2)
    redrive = prepare_redrive(preparer, RecordKind.APPLICATION, data, None, unsealer=UNSEALER)
    prepared = redrive.prepared
    assert not redrive.repaired and prepared.value is not None
    assert prepared.key == preparer.prepare_application(record).key
    assert prepared.topic == "t.branch.applications"
    assert all(secret.encode() not in prepared.value for secret in _personal(record))
    trust = PARTIES.trust()
    assert trust.verifier().sender(prepared.headers, prepared.key, prepared.value) == branch(factories.BRANCH)
    wire = decode(prepared.value, "ApplicationSubmitted").record
    assert open_application(wire, trust.unsealer())["applicant"] == record["applicant"]


def test_redrive_of_an_original_kept_with_its_headers_sends_exactly_those_bytes_and_headers() -> None:
    """The sender's MAC covers the original key and value: re-driven as they came, the record is still
    authenticated by its branch, and the bureau needs none of the branch's keys to re-drive it."""
    record = _record()
    sent = _preparer().prepare_application(record)  # as the branch sent it: sealed, signed, keyed
    assert sent.value is not None and sent.headers
    redrive = prepare_redrive(
        _preparer(), RecordKind.APPLICATION, sent.value, None, tuple(sent.headers), unsealer=UNSEALER
    )
    prepared = redrive.prepared
    assert (prepared.topic, prepared.key, prepared.value) == (sent.topic, sent.key, sent.value)
    assert prepared.headers == list(sent.headers)
    verifier = PARTIES.trust().verifier()
    assert verifier.sender(prepared.headers, prepared.key, prepared.value) == branch(factories.BRANCH)


def test_redrive_refuses_an_original_that_still_fails() -> None:
    data = _sealed(_record())[:-5]
    with pytest.raises(InputError, match="still fails"):
        prepare_redrive(_preparer(), RecordKind.APPLICATION, data, None, unsealer=UNSEALER)


def test_a_repaired_record_is_validated_like_a_submitted_line() -> None:
    record = _record(submitted_at="2026-11-01T10:00:00")  # no offset: the contract refuses it
    original = _sealed(record)
    still_broken = json.dumps(record).encode()
    with pytest.raises(InputError, match="submitted_at"):
        prepare_redrive(_preparer(), RecordKind.APPLICATION, original, still_broken, unsealer=UNSEALER)

    repaired = json.dumps(dict(record, submitted_at="2026-11-01T10:00:00+08:00"), indent=2).encode()
    redrive = prepare_redrive(_preparer(), RecordKind.APPLICATION, original, repaired, unsealer=UNSEALER)
    assert redrive.repaired and redrive.prepared.record_id == record["application_id"]


def test_a_repaired_record_keeps_the_business_key() -> None:
    record = _record(submitted_at="2026-11-01T10:00:00")
    original = _sealed(record)
    renamed = dict(record, application_id="APP-OTHER", submitted_at="2026-11-01T10:00:00+08:00")
    with pytest.raises(InputError, match="application_id differs"):
        prepare_redrive(
            _preparer(), RecordKind.APPLICATION, original, json.dumps(renamed).encode(), unsealer=UNSEALER
        )


@pytest.mark.parametrize("text", ["", "   ", "x" * 501, "person 110105198001011238 came back"])
def test_a_handled_reason_is_short_printable_and_holds_no_numbers(text: str) -> None:
    with pytest.raises(InputError):
        handled_reason(text)


def test_a_handled_reason_is_kept_on_one_line() -> None:
    assert handled_reason(" branch resent it\n under a new id ") == "branch resent it under a new id"


@pytest.fixture
def english(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hints of the errors checked below in English (`--lang en`)."""
    monkeypatch.setattr(language._Chosen, "lang", language.use("en"))


@pytest.mark.usefixtures("english")
def test_postgresql_going_away_is_one_line_that_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    # The embedded default, whatever an earlier in-process invocation configured.
    monkeypatch.setattr(invocation, "database_configured", False)
    for exc in (
        psycopg.OperationalError("server closed the connection unexpectedly"),
        psycopg.errors.AdminShutdown("terminating connection due to administrator command"),
        psycopg.InterfaceError("the connection is closed"),
    ):
        error = translate(exc, "issuance dead-letters list")
        assert isinstance(error, DatabaseUnavailable)
        assert str(error) == (
            "PostgreSQL closed the connection during issuance dead-letters list: start it again "
            "(issuance dev up) and re-run; nothing was committed by the interrupted step"
        )


@pytest.mark.usefixtures("english")
def test_library_text_is_never_quoted() -> None:
    error = translate(psycopg.errors.UniqueViolation("Key (id_number)=(110105198001011238)"), "issuance x")
    assert "110105198001011238" not in str(error) and "23505" in str(error)
    unexpected = translate(KeyError("110105198001011238"), "issuance x")
    assert (
        str(unexpected)
        == "issuance x failed unexpectedly (KeyError): run again with --debug for the traceback"
    )


@pytest.mark.usefixtures("english")
def test_an_unreachable_broker_is_one_line() -> None:
    error = translate(kafka.errors.KafkaConnectionError("no route"), "issuance dead-letters redrive")
    assert isinstance(error, BrokerUnavailable)
    assert "did not answer during issuance dead-letters redrive" in str(error)


def test_an_agreement_is_re_driven_through_the_agreement_contract() -> None:
    record = agreement_to_record(factories.agreement())
    original = encode("AgreementSigned", dict(record, document_sha256="AB" * 20))
    with pytest.raises(InputError, match="document_sha256"):
        prepare_redrive(_preparer(), RecordKind.AGREEMENT, original, None)
    redrive = prepare_redrive(_preparer(), RecordKind.AGREEMENT, original, json.dumps(record).encode())
    assert redrive.prepared.topic == "t.branch.agreements" and redrive.prepared.record_id == "AGR-000001"


def test_invalid_settings_are_bad_input_naming_the_variable_not_its_value() -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        Settings(application_partitions="secret-value")  # type: ignore[arg-type]
    error = translate(caught.value, "issuance setup")
    assert isinstance(error, InputError)
    assert "ISSUANCE_APPLICATION_PARTITIONS" in str(error) and "secret-value" not in str(error)


def test_an_empty_record_is_shown_as_empty() -> None:
    view = inspect_payload(b"", RecordKind.APPLICATION)
    assert view.form is PayloadForm.EMPTY and view.size == 0 and not view.valid
    assert view.masked()["form"] == "empty"
