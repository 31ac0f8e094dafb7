"""The night trusts a record only from the party it speaks for: the decode stage verifies the channel headers
before decoding, checks the sender against the record, opens the personal fields, then checks the contract.
A genuine record decodes to the very application the branch submitted."""

from __future__ import annotations

from typing import Any

import pytest

from issuance.application_wire import seal_application
from issuance.codec.avro import encode
from issuance.crypto import Vault
from issuance.domain.contract import agreement_to_record, application_to_record
from issuance.trust.parties import bank, branch
from pipelines.records import Chunk, RawRecord, RecordBatch
from pipelines.transforms.decode import DecodeBatch, DecodedBatch
from producers.client import Prepared, Preparer
from producers.raw_prepare import Forgery, encode_record, sign_raw
from tests import factories
from tests.wire_parties import WireParties

VAULT = Vault([("test1", bytes(range(32)))], bytes(range(32, 64)))
OWN_BRANCH, OTHER_BRANCH = branch(factories.BRANCH), branch("BR-110105-002")
OWN_BANK, OTHER_BANK = bank(factories.BANK), bank("ABC")


@pytest.fixture(scope="module")
def parties() -> WireParties:
    return WireParties([OWN_BRANCH, OTHER_BRANCH, OWN_BANK, OTHER_BANK])


@pytest.fixture(scope="module")
def preparer(parties: WireParties) -> Preparer:
    return parties.preparer()


def _decode(parties: WireParties, kind: str, prepared: list[Prepared]) -> DecodedBatch:
    chunk = Chunk(run_id=1, kind=kind, topic=f"u.branch.{kind}s", partition=0, start=0, end=len(prepared))
    records = [RawRecord(i, p.key, p.value, tuple(p.headers or ())) for i, p in enumerate(prepared)]
    stage = DecodeBatch(VAULT, parties.trust())
    stage.setup()
    return next(iter(stage.process(RecordBatch(chunk, records))))


def _reasons(batch: DecodedBatch) -> list[tuple[int, str, Any]]:
    """(offset, reason, branch code) of each dead letter."""
    return [(int(row[3]), str(row[5]), row[8]) for row in batch.dead_letters]  # type: ignore[call-overload]


def _application_record(**overrides: Any) -> dict[str, Any]:
    return {**application_to_record(factories.application()), **overrides}


def _raw(
    preparer: Preparer, kind: str, record: dict[str, Any], sender: Any, forgery: Forgery | None = None
) -> Prepared:
    topic = preparer.topics.applications if kind == "application" else preparer.topics.agreements
    value = encode_record(preparer, topic, record, sender, forgery)
    key = str(record["application_id"]).encode()
    return sign_raw(preparer, Prepared(topic, key, value, "raw"), sender, forgery)


def test_a_genuine_application_decodes_to_what_the_branch_submitted(
    parties: WireParties, preparer: Preparer
) -> None:
    application = factories.application(guardian_id_number="440304197505201234")
    prepared = preparer.prepare_application(application_to_record(application))
    batch = _decode(parties, "application", [prepared])
    assert batch.dead_letters == [] and [app for _, app in batch.applications] == [application]


def test_the_wire_carries_no_personal_field_in_clear(preparer: Preparer) -> None:
    record = _application_record(guardian_id_number="440304197505201234")
    prepared = preparer.prepare_application(record)
    assert prepared.value is not None and prepared.key == record["application_id"].encode()
    for secret in (*record["applicant"].values(), record["guardian_id_number"]):
        assert secret.encode() not in prepared.value
        assert all(secret.encode() not in value for _, value in prepared.headers or ())


def test_a_genuine_agreement_decodes(parties: WireParties, preparer: Preparer) -> None:
    prepared = preparer.prepare_agreement(agreement_to_record(factories.agreement()))
    batch = _decode(parties, "agreement", [prepared])
    assert batch.dead_letters == [] and [a for _, a in batch.agreements] == [factories.agreement()]


def test_forged_applications_are_dead_letters_with_their_trust_reason(
    parties: WireParties, preparer: Preparer
) -> None:
    record = _application_record()
    forged = [
        _raw(preparer, "application", record, None),  # unsigned
        _raw(preparer, "application", record, OWN_BRANCH, Forgery.ALTERED),
        _raw(preparer, "application", record, OWN_BRANCH, Forgery.UNREGISTERED_KEY),
        _raw(preparer, "application", record, OTHER_BRANCH),  # another branch speaks for this one
        _raw(preparer, "application", record, OWN_BRANCH, Forgery.SEALED_TO_SENDER),
        _raw(preparer, "application", record, OWN_BRANCH),  # the genuine one still passes
    ]
    batch = _decode(parties, "application", forged)
    assert _reasons(batch) == [
        (0, "SIGNATURE_MISSING", None),
        (1, "SIGNATURE_INVALID", None),
        (2, "SIGNATURE_INVALID", None),
        (3, "SENDER_MISMATCH", None),  # not attributed to the branch it impersonated
        (4, "SEAL_INVALID", factories.BRANCH),
    ]
    assert [offset for offset, _ in batch.applications] == [5]


def test_personal_fields_moved_from_another_application_do_not_open(
    parties: WireParties, preparer: Preparer
) -> None:
    sealer = preparer.keys.to_bureau()
    donor = seal_application(_application_record(application_id="APP-DONOR"), sealer)
    wire = seal_application(_application_record(), sealer) | {"personal": donor["personal"]}
    value = encode("ApplicationSubmitted", wire)
    prepared = preparer.signed(OWN_BRANCH, Prepared("t", b"k", value, "moved"))
    assert _reasons(_decode(parties, "application", [prepared])) == [(0, "SEAL_INVALID", factories.BRANCH)]


def test_an_older_application_with_personal_data_in_clear_is_not_accepted(
    parties: WireParties, preparer: Preparer
) -> None:
    value = encode("ApplicationSubmitted", _application_record(), version=2)
    prepared = preparer.signed(OWN_BRANCH, Prepared("t", b"k", value, "v2"))
    assert _reasons(_decode(parties, "application", [prepared])) == [(0, "SEAL_INVALID", factories.BRANCH)]


def test_an_agreement_speaks_for_its_bank_only(parties: WireParties, preparer: Preparer) -> None:
    record = agreement_to_record(factories.agreement())
    forged = [
        _raw(preparer, "agreement", record, None),
        _raw(preparer, "agreement", record, OTHER_BANK),
        _raw(preparer, "agreement", record, OWN_BRANCH),  # a branch cannot sign the bank's consent either
    ]
    batch = _decode(parties, "agreement", forged)
    assert [(o, r) for o, r, _ in _reasons(batch)] == [
        (0, "SIGNATURE_MISSING"),
        (1, "SENDER_MISMATCH"),
        (2, "SENDER_MISMATCH"),
    ]
    assert batch.agreements == []


def test_empty_and_oversized_values_keep_their_reasons_signed_or_not(
    parties: WireParties, preparer: Preparer
) -> None:
    oversized = _application_record()
    oversized["applicant"] = {**oversized["applicant"], "name": "张" * 20_000}
    messages = [
        Prepared("t", b"k", None, "null"),
        Prepared("t", b"k", b"", "empty"),
        _raw(preparer, "application", oversized, OWN_BRANCH),
        preparer.signed(OWN_BRANCH, Prepared("t", b"k", b"not avro at all", "junk")),
    ]
    assert [(o, r) for o, r, _ in _reasons(_decode(parties, "application", messages))] == [
        (0, "EMPTY_MESSAGE"),
        (1, "EMPTY_MESSAGE"),
        (2, "OVERSIZED_MESSAGE"),
        (3, "MALFORMED_MESSAGE"),
    ]


def test_trust_details_quote_no_personal_value(parties: WireParties, preparer: Preparer) -> None:
    record = _application_record()
    forged = [
        _raw(preparer, "application", record, OTHER_BRANCH),
        _raw(preparer, "application", record, OWN_BRANCH, Forgery.SEALED_TO_SENDER),
    ]
    details = " ".join(str(row[6]) for row in _decode(parties, "application", forged).dead_letters)
    for secret in record["applicant"].values():
        assert secret not in details
    assert record["application_id"] not in details


def test_a_party_without_a_key_in_the_keystore_is_refused_before_sending(parties: WireParties) -> None:
    preparer = WireParties([OWN_BANK]).preparer()
    with pytest.raises(Exception, match="no key file for branch:"):
        preparer.prepare_application(_application_record())
