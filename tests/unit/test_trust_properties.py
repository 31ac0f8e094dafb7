"""Whatever bytes arrive, the trust code answers with TrustFailure and nothing else."""

from __future__ import annotations

import contextlib
import hashlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from issuance.trust import (
    BUREAU,
    HEADER_CHANNEL,
    HEADER_MAC,
    Directory,
    PartyKeys,
    Sealer,
    Signer,
    TrustFailure,
    Unsealer,
    Verifier,
    verify_file,
)
from issuance.trust.parties import bank

PROPERTY = settings(deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])
BUREAU_KEYS = PartyKeys.generate(BUREAU)
ICBC_KEYS = PartyKeys.generate(bank("ICBC"))
DIRECTORY = Directory([BUREAU_KEYS.public(), ICBC_KEYS.public()])
GOOD = Signer(ICBC_KEYS, DIRECTORY).headers(BUREAU, b"k", b"v")
BLOB = Sealer.to(DIRECTORY, BUREAU).seal(b"110105198001011238", b"a")


def mutated(data: bytes) -> st.SearchStrategy[bytes]:
    """Random bytes, and the good bytes with a few changed, cut or extended (nearer the parser's paths)."""
    edits = st.tuples(st.integers(0, max(len(data) - 1, 0)), st.integers(1, 255))
    return st.one_of(
        st.binary(max_size=400),
        st.lists(edits, min_size=1, max_size=3).map(lambda es: _apply(data, es)),
        st.integers(0, len(data)).map(lambda n: data[:n]),
        st.binary(min_size=1, max_size=8).map(lambda tail: data + tail),
    )


def _apply(data: bytes, edits: list[tuple[int, int]]) -> bytes:
    out = bytearray(data)
    for at, flip in edits:
        out[at] ^= flip
    return bytes(out)


@PROPERTY
@given(blob=mutated(BLOB), aad=st.one_of(st.just(b"a"), st.binary(max_size=20)))
def test_random_blobs_only_fail_to_open(blob: bytes, aad: bytes) -> None:
    with contextlib.suppress(TrustFailure):
        Unsealer(BUREAU_KEYS).open(blob, aad)


@PROPERTY
@given(
    channel=mutated(GOOD[0][1]),
    mac=mutated(GOOD[1][1]),
    key=st.one_of(st.none(), st.binary(max_size=20)),
    value=st.binary(max_size=50),
    names=st.sampled_from(
        [(HEADER_CHANNEL, HEADER_MAC), (HEADER_MAC, HEADER_CHANNEL), (HEADER_CHANNEL, "x")]
    ),
)
def test_random_headers_only_fail_to_verify(
    channel: bytes, mac: bytes, key: bytes | None, value: bytes, names: tuple[str, str]
) -> None:
    with contextlib.suppress(TrustFailure):
        Verifier(BUREAU_KEYS, DIRECTORY).sender([(names[0], channel), (names[1], mac)], key, value)


@PROPERTY
@given(signature=st.binary(max_size=200), digest=st.binary(min_size=32, max_size=32))
def test_random_file_signatures_only_fail(signature: bytes, digest: bytes) -> None:
    with contextlib.suppress(TrustFailure):
        verify_file(DIRECTORY, BUREAU, hashlib.sha256(digest).digest(), signature)
