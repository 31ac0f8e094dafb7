"""Encryption of sensitive fields at rest (AES-GCM envelopes) and keyed lookups (HMAC blind indexes).

Envelope, version 1 (all lengths in bytes):

    0x01 | len(key_id) (1) | key_id (ASCII) | wrap_nonce (12) | wrapped data key (32 + 16 tag)
         | data_nonce (12) | ciphertext + tag (16)

The data key is random and wrapped by the master key named by key_id; the header (version and key id) is
authenticated as associated data of both encryptions. `encrypt` uses a fresh data key per value;
`encrypt_many` shares one data key across a batch with a fresh nonce per value, which keeps the nightly batch
cheap (one key wrap per batch) and is still envelope encryption: every value carries its wrapped data key.

Where the master keys come from (environment, files, the keys directory) is issuance/vault_keys.py. The one
place a master key is used is a `KeyWrap`: it wraps and unwraps the data keys. The local one below keeps the
master key in this process (AES-256-GCM); a KMS or HSM replaces exactly this seam (see `KeyWrap`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from issuance.errors import ConfigurationError, IssuanceError

if TYPE_CHECKING:
    from issuance.settings import Settings

ENVELOPE_VERSION = 1
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
WRAPPED_KEY_BYTES = KEY_BYTES + TAG_BYTES
# One batch data key protects at most this many values: far below the 2**32 random-nonce limit of AES-GCM.
MAX_VALUES_PER_DATA_KEY = 1 << 20

_KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_DIGEST_DOMAIN = b"issuance.digest\x00"


class DecryptionFailed(IssuanceError):
    """An envelope is malformed, was tampered with, or names a key this process does not have."""


class KeyWrap(Protocol):
    """Wraps and unwraps data keys under one master key (one key id): the seam for a KMS or an HSM.

    `LocalKeyWrap` holds the master key in this process and uses AES-256-GCM. With a KMS (or a PKCS#11 HSM)
    the master key never leaves it: `wrap` becomes the service's Encrypt (or C_WrapKey) of the 32-byte data
    key and `unwrap` its Decrypt (C_UnwrapKey), with `header` (envelope version and key id) passed as the
    encryption context / associated data, so a wrapped key moved to another envelope does not open. The
    Vault already calls it once per batch of values (encrypt_many) and caches unwrapped keys, which keeps the
    calls to such a service few. What is left to do for one: its wrapped keys are longer than the fixed
    WRAPPED_KEY_BYTES of envelope version 1, so it needs an envelope version 2 with a length prefix, and a
    Vault built from wrappers rather than raw keys (it is built from raw keys so that Beam can pickle it)."""

    def wrap(self, data_key: bytes, header: bytes) -> bytes:
        """The data key wrapped (nonce and ciphertext), bound to `header`."""
        ...

    def unwrap(self, wrapped: bytes, header: bytes) -> bytes:
        """The data key of `wrapped`; DecryptionFailed when it was not wrapped by this key for `header`."""
        ...


class LocalKeyWrap:
    """A master key held in memory: AES-256-GCM with a random nonce per wrap."""

    __slots__ = ("_aead",)

    def __init__(self, master_key: bytes) -> None:
        self._aead = AESGCM(master_key)

    def wrap(self, data_key: bytes, header: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, data_key, header)

    def unwrap(self, wrapped: bytes, header: bytes) -> bytes:
        try:
            return self._aead.decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], header)
        except InvalidTag as exc:
            raise DecryptionFailed("envelope is not authentic (tampered or wrong key)") from exc


class Vault:
    """Encrypts, decrypts and blind-indexes values; the first data key encrypts, every data key decrypts."""

    def __init__(self, data_keys: Sequence[tuple[str, bytes]], blind_index_key: bytes) -> None:
        if not data_keys:
            raise ConfigurationError("at least one data key is required")
        wrappers: dict[bytes, KeyWrap] = {}
        for key_id, key in data_keys:
            if not _KEY_ID.match(key_id):
                raise ConfigurationError(f"data key id {key_id!r} must match {_KEY_ID.pattern}")
            if len(key) != KEY_BYTES:
                raise ConfigurationError(f"data key {key_id!r} must be {KEY_BYTES} bytes, not {len(key)}")
            if key_id.encode() in wrappers:
                raise ConfigurationError(f"data key id {key_id!r} is configured twice")
            wrappers[key_id.encode()] = LocalKeyWrap(key)
        if len(blind_index_key) < KEY_BYTES:
            raise ConfigurationError(f"the blind-index key must be at least {KEY_BYTES} bytes")
        self._data_keys = tuple((kid, bytes(key)) for kid, key in data_keys)
        self._blind_index_key = bytes(blind_index_key)
        self._wrappers = wrappers
        self.primary_key_id = data_keys[0][0]
        self._primary_kid = self.primary_key_id.encode()
        self._header = bytes([ENVELOPE_VERSION, len(self._primary_kid)]) + self._primary_kid
        # Unwrapped data keys of recent envelopes: values of one batch share a data key.
        self._unwrapped: OrderedDict[bytes, AESGCM] = OrderedDict()

    @classmethod
    def from_settings(cls, settings: Settings) -> Vault:
        """The configured keys (environment, files or the keys directory: issuance/vault_keys.py); generated
        development keys with the embedded services only; otherwise a ConfigurationError (fail closed)."""
        from issuance.vault_keys import vault_key_texts

        data_keys, blind_key = vault_key_texts(settings)
        return cls(parse_data_keys(data_keys), parse_blind_index_key(blind_key))

    def with_blind_index_key(self, blind_index_key: bytes) -> Vault:
        """The same data keys with another blind-index key (the old one, during its rotation)."""
        return Vault(self._data_keys, blind_index_key)

    def __reduce__(self) -> tuple[Any, ...]:
        # Picklable for runners that ship DoFns to workers; caches are rebuilt there.
        return (Vault, (self._data_keys, self._blind_index_key))

    # Encryption -------------------------------------------------------------------------------------------

    def encrypt(self, value: str) -> bytes:
        """An envelope of `value` under a fresh data key."""
        return self.encrypt_bytes(value.encode())

    def encrypt_bytes(self, value: bytes) -> bytes:
        """An envelope of raw bytes (e.g. a dead letter's payload) under a fresh data key."""
        return _Batch(self).seal(value)

    def encrypt_many(self, values: Iterable[str | None]) -> list[bytes | None]:
        """Envelopes of a batch sharing one data key, a fresh nonce each; None stays None."""
        out: list[bytes | None] = []
        batch = _Batch(self)
        for value in values:
            if value is None:
                out.append(None)
                continue
            if batch.count >= MAX_VALUES_PER_DATA_KEY:
                batch = _Batch(self)
            out.append(batch.seal(value.encode()))
        return out

    def decrypt(self, envelope: bytes) -> str:
        """The text sealed in `envelope`; DecryptionFailed when it is not authentic."""
        return self.decrypt_bytes(envelope).decode()

    def decrypt_bytes(self, envelope: bytes) -> bytes:
        """The bytes sealed in `envelope`; DecryptionFailed when it is not authentic."""
        envelope = bytes(envelope)
        header, kid, wrapped, rest = _split(envelope)
        cipher = self._data_cipher(header, kid, wrapped)
        try:
            return cipher.decrypt(rest[:NONCE_BYTES], rest[NONCE_BYTES:], header)
        except InvalidTag as exc:
            raise DecryptionFailed("envelope is not authentic (tampered or wrong key)") from exc

    def key_id_of(self, envelope: bytes) -> str:
        """The id of the master key that wrapped this envelope's data key."""
        return _split(bytes(envelope))[1].decode()

    def needs_rotation(self, envelope: bytes) -> bool:
        """Whether the envelope was sealed under a key other than the current (first) one."""
        return _split(bytes(envelope))[1] != self._primary_kid

    @property
    def current_prefix(self) -> bytes:
        """The first bytes of every envelope sealed now (version and current key id), for queries."""
        return self._header

    def reencrypt(self, envelope: bytes) -> bytes:
        """The same plaintext sealed under the current key (rotation)."""
        return self.encrypt_bytes(self.decrypt_bytes(envelope))

    # Keyed hashes -----------------------------------------------------------------------------------------

    def blind_index(self, value: str) -> bytes:
        """HMAC-SHA256 of the normalized value (stripped, upper-cased): equal ID numbers, equal index."""
        return hmac.digest(self._blind_index_key, normalize(value).encode(), "sha256")

    def digest(self, *parts: str) -> bytes:
        """A keyed fingerprint of several values, to detect a change without decrypting."""
        message = _DIGEST_DOMAIN + "\x1f".join(parts).encode()
        return hmac.digest(self._blind_index_key, message, "sha256")

    # Internals --------------------------------------------------------------------------------------------

    @property
    def blind_index_key_id(self) -> str:
        """A short public name of the blind-index key (12 hex digits of a keyed hash): tells two keys apart in
        the rotation's progress and the audit log without revealing anything about the key."""
        return hmac.digest(self._blind_index_key, b"issuance.blind-index-key-id", hashlib.sha256)[:6].hex()

    def _data_cipher(self, header: bytes, kid: bytes, wrapped: bytes) -> AESGCM:
        cache_key = kid + wrapped
        cipher = self._unwrapped.get(cache_key)
        if cipher is not None:
            return cipher
        wrapper = self._wrappers.get(kid)
        if wrapper is None:
            raise DecryptionFailed(f"envelope names unknown data key {kid.decode(errors='replace')!r}")
        cipher = AESGCM(wrapper.unwrap(wrapped, header))
        self._unwrapped[cache_key] = cipher
        if len(self._unwrapped) > 64:
            self._unwrapped.popitem(last=False)
        return cipher


class _Batch:
    """One data key, wrapped once, sealing values with a fresh nonce each."""

    __slots__ = ("_cipher", "_prefix", "count")

    def __init__(self, vault: Vault) -> None:
        data_key = AESGCM.generate_key(bit_length=KEY_BYTES * 8)
        header = vault._header
        wrapped = vault._wrappers[vault._primary_kid].wrap(data_key, header)
        self._cipher = AESGCM(data_key)
        self._prefix = header + wrapped
        self.count = 0

    def seal(self, value: bytes) -> bytes:
        self.count += 1
        nonce = os.urandom(NONCE_BYTES)
        # The header is the first bytes of the prefix; authenticate it with the value.
        header_len = 2 + self._prefix[1]
        return self._prefix + nonce + self._cipher.encrypt(nonce, value, self._prefix[:header_len])


def _split(envelope: bytes) -> tuple[bytes, bytes, bytes, bytes]:
    """(header, key id, wrap nonce + wrapped key, data nonce + ciphertext) of an envelope."""
    if len(envelope) < 2 or envelope[0] != ENVELOPE_VERSION:
        raise DecryptionFailed("not an envelope of a known version")
    header_len = 2 + envelope[1]
    body = header_len + NONCE_BYTES + WRAPPED_KEY_BYTES
    if len(envelope) < body + NONCE_BYTES + TAG_BYTES:
        raise DecryptionFailed("envelope is truncated")
    return (
        envelope[:header_len],
        envelope[2:header_len],
        envelope[header_len:body],
        envelope[body:],
    )


def normalize(value: str) -> str:
    """The form a value is blind-indexed in: surrounding whitespace removed, upper case (ID number 'x')."""
    return value.strip().upper()


def parse_data_keys(text: str) -> list[tuple[str, bytes]]:
    """Parse "kid:base64[,kid:base64...]" (the first key encrypts)."""
    keys: list[tuple[str, bytes]] = []
    for item in text.split(","):
        kid, sep, encoded = item.strip().partition(":")
        if not sep:
            raise ConfigurationError("ISSUANCE_DATA_KEYS must look like 'kid:base64key[,kid:base64key...]'")
        keys.append((kid.strip(), _b64(f"ISSUANCE_DATA_KEYS ({kid.strip()})", encoded.strip())))
    return keys


def parse_blind_index_key(text: str, what: str = "ISSUANCE_BLIND_INDEX_KEY") -> bytes:
    """The blind-index key from its base64 text."""
    return _b64(what, text.strip())


def generate_key_text(key_id: str = "k1") -> tuple[str, str]:
    """Fresh ("kid:base64", "base64") values for ISSUANCE_DATA_KEYS and ISSUANCE_BLIND_INDEX_KEY."""
    data = base64.b64encode(os.urandom(KEY_BYTES)).decode()
    blind = base64.b64encode(os.urandom(KEY_BYTES)).decode()
    return f"{key_id}:{data}", blind


def _b64(what: str, text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigurationError(f"{what} is not valid base64") from exc
