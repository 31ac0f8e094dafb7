"""Personal data sealed to the one party that must read it (ECIES: X25519, HKDF-SHA256, AES-256-GCM).

A sealed blob, version 1 (lengths in bytes):

    0x01 | len(kid) (1) | kid: the recipient's seal key id (ASCII) | ephemeral X25519 public key (32)
         | wrapped data key (32 + 16 tag) | nonce (12) | ciphertext + tag (16)

The sender makes an ephemeral X25519 key pair per Sealer; HKDF-SHA256 over the shared secret with the
recipient's seal key (info binds both public keys) gives a one-time wrap key, which wraps a random data key
under the header (version, kid, ephemeral key) as associated data. Every value is AES-256-GCM under the data
key with a fresh random nonce and, as associated data, everything before the nonce plus the caller's `aad`
(the id of the record it belongs to), so a blob moved to another record does not open. One Sealer wraps one
data key for up to 2**20 values (far below the random-nonce limit), which keeps sealing a night's records
cheap: one X25519 exchange per Sealer, one AES-GCM per value.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from issuance.codec import avro
from issuance.trust.errors import seal_invalid
from issuance.trust.keys import KEY_BYTES, KEY_ID_MAX, Directory, PartyKeys, raw_public
from issuance.trust.parties import Party

SEAL_VERSION = 1
NONCE_BYTES = 12
TAG_BYTES = 16
WRAPPED_KEY_BYTES = KEY_BYTES + TAG_BYTES
MAX_VALUES_PER_DATA_KEY = 1 << 20
_WRAP_NONCE = bytes(NONCE_BYTES)  # each wrap key is derived fresh and used once
_WRAP_INFO = b"ssc-seal-v1\x00"
_UNWRAPPED_CACHE = 1024
# version, kid length, the shortest kid, ephemeral key, wrapped key, nonce, tag
MIN_BLOB_BYTES = 1 + 1 + 1 + KEY_BYTES + WRAPPED_KEY_BYTES + NONCE_BYTES + TAG_BYTES


def wrap_key(info: bytes, shared: bytes, ephemeral: bytes, recipient: bytes) -> AESGCM:
    """The one-time key that wraps a data key (or a channel's MAC key) from an X25519 shared secret; `info`
    names the format, and both public keys are bound into the derivation."""
    key = HKDF(hashes.SHA256(), KEY_BYTES, salt=None, info=info + ephemeral + recipient).derive(shared)
    return AESGCM(key)


class Sealer:
    """Seals values to one recipient; a new ephemeral key and data key every 2**20 values."""

    def __init__(self, recipient_key_id: str, recipient_public: X25519PublicKey) -> None:
        kid = recipient_key_id.encode("ascii")
        if not 0 < len(kid) <= KEY_ID_MAX:
            raise ValueError(f"a key id is 1 to {KEY_ID_MAX} ASCII characters")
        self.recipient_key_id = recipient_key_id
        self._kid = kid
        self._recipient = recipient_public
        self._recipient_raw = raw_public(recipient_public)
        self._rekey()

    @classmethod
    def to(cls, directory: Directory, party: Party) -> Sealer:
        """A Sealer to the party's current seal key (UnknownParty when none is registered)."""
        kid, public = directory.sealing_key(party)
        return cls(kid, public)

    def _rekey(self) -> None:
        ephemeral = X25519PrivateKey.generate()
        ephemeral_raw = raw_public(ephemeral.public_key())
        header = bytes([SEAL_VERSION, len(self._kid)]) + self._kid + ephemeral_raw
        data_key = AESGCM.generate_key(bit_length=KEY_BYTES * 8)
        wrap = wrap_key(_WRAP_INFO, ephemeral.exchange(self._recipient), ephemeral_raw, self._recipient_raw)
        self._prefix = header + wrap.encrypt(_WRAP_NONCE, data_key, header)
        self._aead = AESGCM(data_key)
        self._sealed = 0

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        """The blob that only the recipient opens, and only with the same `aad`."""
        if self._sealed >= MAX_VALUES_PER_DATA_KEY:
            self._rekey()
        self._sealed += 1
        nonce = os.urandom(NONCE_BYTES)
        return self._prefix + nonce + self._aead.encrypt(nonce, plaintext, self._prefix + aad)


class Unsealer:
    """Opens blobs sealed to any of the given key pairs (the current one and earlier ones, for rotation).

    Unwrapped data keys are cached: the values of one Sealer cost one AES-GCM each after the first."""

    def __init__(self, own: PartyKeys | Sequence[PartyKeys]) -> None:
        keys = (own,) if isinstance(own, PartyKeys) else tuple(own)
        if not keys:
            raise ValueError("an Unsealer needs at least one key pair")
        self._own = keys
        self._by_kid = {k.seal_key_id.encode("ascii"): k for k in keys}
        self._unwrapped: OrderedDict[bytes, AESGCM] = OrderedDict()

    def __reduce__(self) -> tuple[Any, ...]:
        return (Unsealer, (self._own,))

    def open(self, blob: bytes, aad: bytes) -> bytes:
        """The plaintext; TrustFailure(SEAL_INVALID) when the blob is malformed, altered, moved to another
        record (other aad) or sealed to a key this party does not hold."""
        blob = bytes(blob)
        if len(blob) < MIN_BLOB_BYTES:
            raise seal_invalid(f"sealed value of {len(blob)} bytes is shorter than {MIN_BLOB_BYTES}")
        if blob[0] != SEAL_VERSION:
            raise seal_invalid(f"sealed value version {blob[0]} is not {SEAL_VERSION}")
        kid_end = 2 + blob[1]
        prefix_end = kid_end + KEY_BYTES + WRAPPED_KEY_BYTES
        if blob[1] == 0 or len(blob) < prefix_end + NONCE_BYTES + TAG_BYTES:
            raise seal_invalid("sealed value is truncated or its key id length is out of range")
        prefix = blob[:prefix_end]
        aead = self._unwrapped.get(prefix)
        if aead is None:
            aead = self._unwrap(prefix, kid_end)
        else:
            self._unwrapped.move_to_end(prefix)
        nonce_end = prefix_end + NONCE_BYTES
        try:
            return aead.decrypt(blob[prefix_end:nonce_end], blob[nonce_end:], prefix + aad)
        except InvalidTag:
            raise seal_invalid(
                "sealed value does not authenticate (altered, or sealed for another record)"
            ) from None

    def _unwrap(self, prefix: bytes, kid_end: int) -> AESGCM:
        own = self._by_kid.get(prefix[2:kid_end])
        if own is None:
            raise seal_invalid("sealed to a key this party does not hold")
        ephemeral = prefix[kid_end : kid_end + KEY_BYTES]
        try:
            shared = own.exchange(X25519PublicKey.from_public_bytes(ephemeral))
        except ValueError:
            raise seal_invalid("sealed value's ephemeral key is not a usable X25519 key") from None
        wrap = wrap_key(_WRAP_INFO, shared, ephemeral, own.public().sealing)
        try:
            data_key = wrap.decrypt(_WRAP_NONCE, prefix[kid_end + KEY_BYTES :], prefix[: kid_end + KEY_BYTES])
        except InvalidTag:
            raise seal_invalid(
                "sealed value's data key does not unwrap (altered or not sealed to us)"
            ) from None
        aead = AESGCM(data_key)
        self._unwrapped[prefix] = aead
        if len(self._unwrapped) > _UNWRAPPED_CACHE:
            self._unwrapped.popitem(last=False)
        return aead


def seal_personal(record_name: str, fields: Mapping[str, Any], sealer: Sealer, aad: str) -> bytes:
    """Avro-encode `fields` as the newest version of schemas/<record_name>.v*.avsc, then seal it.

    SchemaViolation (naming fields, never values) when `fields` do not fit the schema."""
    return sealer.seal(avro.encode(record_name, fields), aad.encode())


def open_personal(record_name: str, blob: bytes, unsealer: Unsealer, aad: str) -> dict[str, Any]:
    """The personal fields sealed by seal_personal, resolved to the newest schema version.

    TrustFailure(SEAL_INVALID) when the blob does not open; a DecodeError subclass when what is inside is not
    a `record_name` record."""
    return avro.decode(unsealer.open(blob, aad.encode()), expected=record_name).record
