"""Authenticated messages: a channel signed by the sender's registered key, then a MAC per message binding
key and value; every missing, forged, moved or altered part is refused with its reason. File signatures."""

from __future__ import annotations

import hashlib
import pickle

import pytest

from issuance.domain.model import DeadLetterReason
from issuance.trust import (
    BUREAU,
    HEADER_CHANNEL,
    Directory,
    PartyKeys,
    Signer,
    TrustFailure,
    Verifier,
    sign_file,
    verify_file,
)
from issuance.trust.channel import CHANNEL_LIFETIME_S, MAX_MESSAGES_PER_CHANNEL
from issuance.trust.parties import bank, vendor

ICBC, ABC = bank("ICBC"), bank("ABC")
KEY, VALUE = b"APP-1", b"\xc3\x01" + bytes(range(200))


@pytest.fixture(scope="module")
def keys() -> dict[str, PartyKeys]:
    return {
        name: PartyKeys.generate(party) for name, party in (("bureau", BUREAU), ("icbc", ICBC), ("abc", ABC))
    }


@pytest.fixture(scope="module")
def directory(keys: dict[str, PartyKeys]) -> Directory:
    return Directory(k.public() for k in keys.values())


def failure(
    verifier: Verifier, headers: list[tuple[str, bytes]] | None, key: bytes | None, value: bytes
) -> TrustFailure:
    with pytest.raises(TrustFailure) as caught:
        verifier.sender(headers, key, value)
    return caught.value


def test_the_recipient_learns_the_sender(keys: dict[str, PartyKeys], directory: Directory) -> None:
    signer, verifier = Signer(keys["icbc"], directory), Verifier(keys["bureau"], directory)
    for i in range(5):
        value = VALUE + bytes([i])
        assert verifier.sender(signer.headers(BUREAU, KEY, value), KEY, value) == ICBC
    assert verifier.sender(signer.headers(BUREAU, None, VALUE), None, VALUE) == ICBC
    assert verifier.sender(signer.headers(BUREAU, b"", b""), b"", b"") == ICBC
    first, again = signer.headers(BUREAU, KEY, VALUE), signer.headers(BUREAU, KEY, VALUE)
    assert first[0] == again[0]  # one channel, signed once
    assert dict(first)[HEADER_CHANNEL] != Signer(keys["icbc"], directory).headers(BUREAU, KEY, VALUE)[0][1]


def test_missing_headers_are_signature_missing(keys: dict[str, PartyKeys], directory: Directory) -> None:
    headers = Signer(keys["icbc"], directory).headers(BUREAU, KEY, VALUE)
    verifier = Verifier(keys["bureau"], directory)
    for partial in (
        None,
        [],
        [headers[0]],
        [headers[1]],
        [("other", b"x")],
        [(HEADER_CHANNEL, None), headers[1]],
    ):
        reason = failure(verifier, partial, KEY, VALUE).reason  # type: ignore[arg-type]
        assert reason is DeadLetterReason.SIGNATURE_MISSING


def test_the_mac_binds_key_and_value(keys: dict[str, PartyKeys], directory: Directory) -> None:
    headers = Signer(keys["icbc"], directory).headers(BUREAU, KEY, VALUE)
    verifier = Verifier(keys["bureau"], directory)
    for key, value in (
        (b"APP-2", VALUE),
        (None, VALUE),
        (b"", VALUE),
        (KEY, VALUE + b"\x00"),
        (KEY, VALUE[:-1]),
    ):
        assert failure(verifier, headers, key, value).reason is DeadLetterReason.SIGNATURE_INVALID
    # key and value cannot trade bytes
    shifted = Signer(keys["icbc"], directory).headers(BUREAU, b"AB", b"C")
    assert failure(verifier, shifted, b"A", b"BC").reason is DeadLetterReason.SIGNATURE_INVALID
    assert verifier.sender(headers, KEY, VALUE) == ICBC


def test_a_mac_under_another_channel_fails(keys: dict[str, PartyKeys], directory: Directory) -> None:
    from_icbc = Signer(keys["icbc"], directory).headers(BUREAU, KEY, VALUE)
    from_abc = Signer(keys["abc"], directory).headers(BUREAU, KEY, VALUE)
    verifier = Verifier(keys["bureau"], directory)
    mixed = [from_icbc[0], from_abc[1]]
    assert failure(verifier, mixed, KEY, VALUE).reason is DeadLetterReason.SIGNATURE_INVALID


def test_every_changed_byte_of_the_headers_is_refused(
    keys: dict[str, PartyKeys], directory: Directory
) -> None:
    channel, mac = Signer(keys["icbc"], directory).headers(BUREAU, KEY, VALUE)
    for name, data in (channel, mac):
        for at in range(len(data)):
            tampered = bytearray(data)
            tampered[at] ^= 0x01
            headers = [(name, bytes(tampered)), mac if name == HEADER_CHANNEL else channel]
            # a fresh verifier each time: nothing cached from an earlier good header
            reason = failure(Verifier(keys["bureau"], directory), headers, KEY, VALUE).reason
            assert reason is DeadLetterReason.SIGNATURE_INVALID, (name, at)
        for cut in (1, len(data) // 2, len(data) - 1):
            headers = [(name, data[:cut]), mac if name == HEADER_CHANNEL else channel]
            assert failure(Verifier(keys["bureau"], directory), headers, KEY, VALUE).reason is (
                DeadLetterReason.SIGNATURE_INVALID
            )


def test_a_header_twice_is_refused(keys: dict[str, PartyKeys], directory: Directory) -> None:
    headers = Signer(keys["icbc"], directory).headers(BUREAU, KEY, VALUE)
    verifier = Verifier(keys["bureau"], directory)
    assert failure(verifier, [*headers, headers[0]], KEY, VALUE).reason is DeadLetterReason.SIGNATURE_INVALID
    assert failure(verifier, [*headers, headers[1]], KEY, VALUE).reason is DeadLetterReason.SIGNATURE_INVALID


def test_an_unregistered_or_revoked_key_is_signature_invalid(
    keys: dict[str, PartyKeys], directory: Directory
) -> None:
    intruder = PartyKeys.generate(ICBC)  # claims to be ICBC, never registered
    forged = Signer(intruder, directory).headers(BUREAU, KEY, VALUE)
    verifier = Verifier(keys["bureau"], directory)
    caught = failure(verifier, forged, KEY, VALUE)
    assert caught.reason is DeadLetterReason.SIGNATURE_INVALID and "not registered" in caught.detail
    headers = Signer(keys["icbc"], directory).headers(BUREAU, KEY, VALUE)
    assert verifier.sender(headers, KEY, VALUE) == ICBC
    revoked = Directory([keys["bureau"].public(), keys["abc"].public()])  # ICBC's key no longer listed
    assert failure(Verifier(keys["bureau"], revoked), headers, KEY, VALUE).reason is (
        DeadLetterReason.SIGNATURE_INVALID
    )


def test_a_channel_to_another_party_is_refused(keys: dict[str, PartyKeys], directory: Directory) -> None:
    to_abc = Signer(keys["icbc"], directory).headers(ABC, KEY, VALUE)
    caught = failure(Verifier(keys["bureau"], directory), to_abc, KEY, VALUE)
    assert caught.reason is DeadLetterReason.SIGNATURE_INVALID and "does not hold" in caught.detail
    assert Verifier(keys["abc"], directory).sender(to_abc, KEY, VALUE) == ICBC


def test_a_forged_recipient_id_does_not_unwrap(keys: dict[str, PartyKeys]) -> None:
    """A channel sealed to another key but naming ours is signed by a registered key, yet does not open."""
    impostor_bureau = PartyKeys.generate(BUREAU)
    lying = Directory([keys["icbc"].public(), impostor_bureau.public()])
    headers = Signer(keys["icbc"], lying).headers(BUREAU, KEY, VALUE)
    real = Directory([keys["icbc"].public(), keys["bureau"].public()])
    caught = failure(Verifier(keys["bureau"], real), headers, KEY, VALUE)
    assert "does not hold" in caught.detail


def test_signer_and_verifier_pickle(keys: dict[str, PartyKeys], directory: Directory) -> None:
    signer = pickle.loads(pickle.dumps(Signer(keys["icbc"], directory)))
    verifier = pickle.loads(pickle.dumps(Verifier([keys["bureau"]], directory)))
    assert verifier.sender(signer.headers(BUREAU, KEY, VALUE), KEY, VALUE) == ICBC


def test_a_channel_is_renewed_after_its_lifetime(keys: dict[str, PartyKeys], directory: Directory) -> None:
    signer = Signer(keys["icbc"], directory)
    first = signer.headers(BUREAU, KEY, VALUE)[0]
    signer._channels[BUREAU].opened -= CHANNEL_LIFETIME_S
    second = signer.headers(BUREAU, KEY, VALUE)
    assert second[0] != first
    assert Verifier(keys["bureau"], directory).sender(second, KEY, VALUE) == ICBC
    signer._channels[BUREAU].sent = MAX_MESSAGES_PER_CHANNEL
    assert signer.headers(BUREAU, KEY, VALUE)[0] != second[0]


def test_file_signatures(keys: dict[str, PartyKeys], directory: Directory) -> None:
    digest = hashlib.sha256(b"vendor file").digest()
    signature = sign_file(keys["bureau"], digest)
    verify_file(directory, BUREAU, digest, signature)
    cases = {
        b"": DeadLetterReason.SIGNATURE_MISSING,
        signature[:-1]: DeadLetterReason.SIGNATURE_INVALID,
        signature[:-1] + bytes([signature[-1] ^ 1]): DeadLetterReason.SIGNATURE_INVALID,
        sign_file(PartyKeys.generate(BUREAU), digest): DeadLetterReason.SIGNATURE_INVALID,
        sign_file(keys["icbc"], digest): DeadLetterReason.SENDER_MISMATCH,
    }
    for bad, reason in cases.items():
        with pytest.raises(TrustFailure) as caught:
            verify_file(directory, BUREAU, digest, bad)
        assert caught.value.reason is reason
    with pytest.raises(TrustFailure):
        verify_file(directory, BUREAU, hashlib.sha256(b"other file").digest(), signature)
    with pytest.raises(TrustFailure):
        verify_file(directory, vendor("V1"), digest, signature)
