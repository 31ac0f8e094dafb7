"""Sealed personal data: only the recipient opens it, only for the record it was sealed for, and a changed
byte anywhere is SEAL_INVALID."""

from __future__ import annotations

import pickle

import pytest

from issuance.domain.model import DeadLetterReason
from issuance.errors import DecodeError
from issuance.trust import (
    BUREAU,
    Directory,
    PartyKeys,
    Sealer,
    TrustFailure,
    Unsealer,
    open_personal,
    seal_personal,
)
from issuance.trust.parties import bank
from issuance.trust.sealing import MAX_VALUES_PER_DATA_KEY

ID = b"110105198001011238"


@pytest.fixture(scope="module")
def bureau() -> PartyKeys:
    return PartyKeys.generate(BUREAU)


@pytest.fixture(scope="module")
def directory(bureau: PartyKeys) -> Directory:
    return Directory([bureau.public()])


def test_round_trip_many_values_share_one_data_key(bureau: PartyKeys, directory: Directory) -> None:
    sealer = Sealer.to(directory, BUREAU)
    unsealer = Unsealer(bureau)
    blobs = [sealer.seal(ID + bytes([i]), f"app-{i}".encode()) for i in range(50)]
    per_value = 12 + len(ID) + 1 + 16  # nonce, ciphertext, tag
    assert len({blob[:-per_value] for blob in blobs}) == 1  # one wrapped data key
    assert len({blob[-per_value:] for blob in blobs}) == 50
    assert [unsealer.open(b, f"app-{i}".encode()) for i, b in enumerate(blobs)] == [
        ID + bytes([i]) for i in range(50)
    ]
    assert unsealer.open(sealer.seal(b"", b""), b"") == b""


def test_the_sealed_value_holds_no_clear_text(directory: Directory) -> None:
    assert ID not in Sealer.to(directory, BUREAU).seal(ID, b"app-1")


def test_another_record_or_another_recipient_cannot_open(bureau: PartyKeys, directory: Directory) -> None:
    blob = Sealer.to(directory, BUREAU).seal(ID, b"app-1")
    with pytest.raises(TrustFailure) as moved:
        Unsealer(bureau).open(blob, b"app-2")
    assert moved.value.reason is DeadLetterReason.SEAL_INVALID
    with pytest.raises(TrustFailure, match="does not hold"):
        Unsealer(PartyKeys.generate(BUREAU)).open(blob, b"app-1")


def test_a_forged_key_id_does_not_open(bureau: PartyKeys) -> None:
    """A blob sealed to another key but relabelled with the recipient's key id fails at the unwrap."""
    other = PartyKeys.generate(BUREAU)
    blob = Sealer(bureau.seal_key_id, Directory([other.public()]).sealing_key(BUREAU)[1]).seal(ID, b"a")
    with pytest.raises(TrustFailure, match="does not unwrap"):
        Unsealer(bureau).open(blob, b"a")


def test_every_changed_byte_is_refused(bureau: PartyKeys, directory: Directory) -> None:
    blob = Sealer.to(directory, BUREAU).seal(ID, b"app-1")
    unsealer = Unsealer(bureau)
    for at in range(len(blob)):
        tampered = bytearray(blob)
        tampered[at] ^= 0x01
        with pytest.raises(TrustFailure) as caught:
            unsealer.open(bytes(tampered), b"app-1")
        assert caught.value.reason is DeadLetterReason.SEAL_INVALID
    for cut in (0, 1, 10, len(blob) - 1):
        with pytest.raises(TrustFailure):
            unsealer.open(blob[:cut], b"app-1")
    with pytest.raises(TrustFailure):
        unsealer.open(blob + b"\x00", b"app-1")
    assert unsealer.open(blob, b"app-1") == ID


def test_the_detail_never_quotes_the_value(bureau: PartyKeys, directory: Directory) -> None:
    blob = Sealer.to(directory, BUREAU).seal(ID, b"app-1")
    with pytest.raises(TrustFailure) as caught:
        Unsealer(bureau).open(blob[:-1] + bytes([blob[-1] ^ 1]), b"app-1")
    assert "1101" not in str(caught.value) and blob.hex()[:16] not in str(caught.value)


def test_earlier_key_pairs_still_open(bureau: PartyKeys) -> None:
    newer = PartyKeys.generate(BUREAU)
    old_blob = Sealer.to(Directory([bureau.public()]), BUREAU).seal(ID, b"a")
    new_blob = Sealer.to(Directory([bureau.public(), newer.public()]), BUREAU).seal(ID, b"a")
    both = Unsealer([newer, bureau])
    assert both.open(old_blob, b"a") == ID and both.open(new_blob, b"a") == ID
    with pytest.raises(TrustFailure):
        Unsealer(bureau).open(new_blob, b"a")


def test_a_sealer_rekeys_after_its_limit(directory: Directory, bureau: PartyKeys) -> None:
    sealer = Sealer.to(directory, BUREAU)
    first = sealer.seal(ID, b"a")
    sealer._sealed = MAX_VALUES_PER_DATA_KEY
    second = sealer.seal(ID, b"a")
    assert first[:100] != second[:100]
    assert Unsealer(bureau).open(second, b"a") == ID


def test_personal_fields_round_trip_through_the_schema(bureau: PartyKeys, directory: Directory) -> None:
    fields = {
        "agreement_id": "AG-1",
        "application_id": "APP-1",
        "bank_code": "ICBC",
        "terms_version": "v1",
        "document_sha256": "0" * 64,
        "signed_at": "2024-01-01T00:00:00+08:00",
        "channel": "COUNTER",
    }
    blob = seal_personal("AgreementSigned", fields, Sealer.to(directory, BUREAU), "APP-1")
    assert open_personal("AgreementSigned", blob, Unsealer(bureau), "APP-1") == fields
    with pytest.raises(TrustFailure):
        open_personal("AgreementSigned", blob, Unsealer(bureau), "APP-2")
    with pytest.raises(DecodeError):
        open_personal("CardCollected", blob, Unsealer(bureau), "APP-1")
    inside_is_not_avro = Sealer.to(directory, BUREAU).seal(b"plain", b"APP-1")
    with pytest.raises(DecodeError):
        open_personal("AgreementSigned", inside_is_not_avro, Unsealer(bureau), "APP-1")


def test_unsealer_and_failure_pickle(bureau: PartyKeys, directory: Directory) -> None:
    blob = Sealer.to(directory, BUREAU).seal(ID, b"a")
    assert pickle.loads(pickle.dumps(Unsealer(bureau))).open(blob, b"a") == ID
    failure = pickle.loads(pickle.dumps(TrustFailure(DeadLetterReason.SEAL_INVALID, "x")))
    assert failure.reason is DeadLetterReason.SEAL_INVALID and failure.detail == "x"


def test_sealing_to_a_party_without_a_key_is_a_configuration_error(directory: Directory) -> None:
    from issuance.trust import UnknownParty

    with pytest.raises(UnknownParty):
        Sealer.to(directory, bank("ICBC"))
