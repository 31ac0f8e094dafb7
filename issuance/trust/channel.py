"""Who sent a Kafka message: a channel signed once by the sender, then a MAC per message; and signatures of
whole files.

A channel header (the `ssc-channel` header of every message on it), version 1 (lengths in bytes):

    0x01 | len(sid) (1) | sid: the sender's sign key id | len(rid) (1) | rid: the recipient's seal key id
         | channel id (16, random) | created_at (8, unix seconds, big-endian)
         | ephemeral X25519 public key (32) | wrapped MAC key (32 + 16 tag)
         | Ed25519 signature (64) over "ssc-channel-v1\\0" and every byte before it

The MAC key is random per channel and wrapped to the recipient's seal key like a sealed value's data key
(X25519 with the ephemeral key, HKDF-SHA256, AES-256-GCM with the header up to the ephemeral key as
associated data). Only the sender and the recipient know it. Each message carries, in its `ssc-mac` header,

    0x01 | HMAC-SHA256(MAC key, key framing || value) (32)

where the key framing is 0x00 for a message without a key and 0x01 | len(key) (4, big-endian) | key otherwise,
so that neither key nor value can be shifted into the other. A sender opens a channel per recipient and
renews it after an hour or 2**20 messages; a recipient verifies a channel's signature once and caches it,
so a message costs one HMAC.
"""

from __future__ import annotations

import hmac
import os
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from issuance.domain.model import DeadLetterReason
from issuance.trust.errors import TrustFailure, signature_invalid, signature_missing
from issuance.trust.keys import KEY_BYTES, KEY_ID_MAX, Directory, PartyKeys, raw_public
from issuance.trust.parties import Party
from issuance.trust.sealing import TAG_BYTES, wrap_key

HEADER_CHANNEL = "ssc-channel"
HEADER_MAC = "ssc-mac"
CHANNEL_VERSION = 1
MAC_VERSION = 1
CHANNEL_ID_BYTES = 16
SIGNATURE_BYTES = 64
MAC_BYTES = 32
WRAPPED_KEY_BYTES = KEY_BYTES + TAG_BYTES
CHANNEL_LIFETIME_S = 3600.0
MAX_MESSAGES_PER_CHANNEL = 1 << 20
FILE_SIGNATURE_VERSION = 1

_SIGNED_DOMAIN = b"ssc-channel-v1\x00"
_WRAP_INFO = b"ssc-channel-v1\x00"
_FILE_DOMAIN = b"ssc-file-v1\x00"
_WRAP_NONCE = bytes(12)  # each wrap key is derived fresh and used once
_NO_KEY = b"\x00"
_FIXED = CHANNEL_ID_BYTES + 8 + KEY_BYTES + WRAPPED_KEY_BYTES + SIGNATURE_BYTES
_CACHED_CHANNELS = 4096
_DIGEST_BYTES = 32


def _framed(key: bytes | None, value: bytes) -> bytes:
    if key is None:
        return _NO_KEY + value
    return b"\x01" + struct.pack(">I", len(key)) + key + value


def _kid(text: str) -> bytes:
    kid = text.encode("ascii")
    if not 0 < len(kid) <= KEY_ID_MAX:
        raise ValueError(f"a key id is 1 to {KEY_ID_MAX} ASCII characters")
    return kid


@dataclass(slots=True)
class _Open:
    """A channel this process sends on."""

    header: bytes
    mac_key: bytes
    opened: float  # time.monotonic()
    sent: int = 0


class Signer:
    """The sending party's side: headers that make a message verifiable by its recipient."""

    def __init__(self, own: PartyKeys, directory: Directory) -> None:
        self._own = own
        self._sid = _kid(own.sign_key_id)
        self._directory = directory
        self._channels: dict[Party, _Open] = {}

    def __reduce__(self) -> tuple[Any, ...]:
        return (Signer, (self._own, self._directory))

    def headers(self, recipient: Party, key: bytes | None, value: bytes) -> list[tuple[str, bytes]]:
        """The `ssc-channel` and `ssc-mac` headers of one message to `recipient` (UnknownParty when the
        recipient has no registered seal key)."""
        channel = self._channels.get(recipient)
        if (
            channel is None
            or channel.sent >= MAX_MESSAGES_PER_CHANNEL
            or time.monotonic() - channel.opened >= CHANNEL_LIFETIME_S
        ):
            channel = self._channels[recipient] = self._open(recipient)
        channel.sent += 1
        mac = hmac.digest(channel.mac_key, _framed(key, value), "sha256")
        return [(HEADER_CHANNEL, channel.header), (HEADER_MAC, bytes([MAC_VERSION]) + mac)]

    def _open(self, recipient: Party) -> _Open:
        rid_text, recipient_public = self._directory.sealing_key(recipient)
        rid = _kid(rid_text)
        ephemeral = X25519PrivateKey.generate()
        ephemeral_raw = raw_public(ephemeral.public_key())
        mac_key = os.urandom(KEY_BYTES)
        aad = (
            bytes([CHANNEL_VERSION, len(self._sid)])
            + self._sid
            + bytes([len(rid)])
            + rid
            + os.urandom(CHANNEL_ID_BYTES)
            + struct.pack(">Q", int(time.time()))
            + ephemeral_raw
        )
        wrap = wrap_key(
            _WRAP_INFO, ephemeral.exchange(recipient_public), ephemeral_raw, raw_public(recipient_public)
        )
        body = aad + wrap.encrypt(_WRAP_NONCE, mac_key, aad)
        header = body + self._own.sign(_SIGNED_DOMAIN + body)
        return _Open(header, mac_key, time.monotonic())


@dataclass(frozen=True, slots=True)
class _Verified:
    sender: Party
    mac_key: bytes


class Verifier:
    """The receiving party's side: who sent a message, or TrustFailure.

    It trusts the directory it is given: a key revoked later is refused by a Verifier built after the
    revocation (each night and each consumer start loads the directory afresh)."""

    def __init__(self, own: PartyKeys | Sequence[PartyKeys], directory: Directory) -> None:
        keys = (own,) if isinstance(own, PartyKeys) else tuple(own)
        if not keys:
            raise ValueError("a Verifier needs at least one key pair")
        self._own = keys
        self._by_rid = {k.seal_key_id.encode("ascii"): k for k in keys}
        self._directory = directory
        self._channels: dict[bytes, _Verified] = {}

    def __reduce__(self) -> tuple[Any, ...]:
        return (Verifier, (self._own, self._directory))

    def sender(self, headers: Sequence[tuple[str, bytes]] | None, key: bytes | None, value: bytes) -> Party:
        """The party whose registered key opened the message's channel and whose MAC the message carries.

        SIGNATURE_MISSING: no channel or MAC header. SIGNATURE_INVALID: a header twice, a malformed header, a
        signature that does not verify, a key nobody registered (or revoked), a channel sealed to a key this
        party does not hold, or a MAC that does not match the key and value."""
        channel: bytes | None = None
        mac: bytes | None = None
        for name, data in headers or ():
            if name == HEADER_CHANNEL:
                if channel is not None:
                    raise signature_invalid(f"message carries the {HEADER_CHANNEL} header twice")
                channel = _header_bytes(data, HEADER_CHANNEL)
            elif name == HEADER_MAC:
                if mac is not None:
                    raise signature_invalid(f"message carries the {HEADER_MAC} header twice")
                mac = _header_bytes(data, HEADER_MAC)
        if channel is None or mac is None:
            missing = " and ".join(n for n, v in ((HEADER_CHANNEL, channel), (HEADER_MAC, mac)) if v is None)
            raise signature_missing(f"message has no {missing} header")
        verified = self._channels.get(channel)
        if verified is None:
            verified = self._verify_channel(channel)
        if len(mac) != 1 + MAC_BYTES or mac[0] != MAC_VERSION:
            raise signature_invalid(
                f"{HEADER_MAC} header is not version {MAC_VERSION} with {MAC_BYTES} bytes"
            )
        if not isinstance(value, bytes | bytearray | memoryview) or not (
            key is None or isinstance(key, bytes | bytearray | memoryview)
        ):
            raise signature_invalid("message key or value is not bytes")
        expected = hmac.digest(
            verified.mac_key, _framed(None if key is None else bytes(key), bytes(value)), "sha256"
        )
        if not hmac.compare_digest(expected, mac[1:]):
            raise signature_invalid("message MAC does not match its key and value under its channel")
        return verified.sender

    def _verify_channel(self, header: bytes) -> _Verified:
        size = len(header)
        if size < 3 or header[0] != CHANNEL_VERSION:
            raise signature_invalid(f"{HEADER_CHANNEL} header is not version {CHANNEL_VERSION}")
        sid_end = 2 + header[1]
        if header[1] == 0 or size < sid_end + 1:
            raise signature_invalid(f"{HEADER_CHANNEL} header is truncated")
        rid_end = sid_end + 1 + header[sid_end]
        if header[sid_end] == 0 or size != rid_end + _FIXED:
            raise signature_invalid(
                f"{HEADER_CHANNEL} header of {size} bytes does not have its format's length"
            )
        try:
            sid = header[2:sid_end].decode("ascii")
        except UnicodeDecodeError:
            raise signature_invalid(f"{HEADER_CHANNEL} header's sender key id is not ASCII") from None
        signer = self._directory.signer_of(sid)
        if signer is None:
            raise signature_invalid("channel is signed by a key that is not registered or was revoked")
        party, public = signer
        body, signature = header[:-SIGNATURE_BYTES], header[-SIGNATURE_BYTES:]
        try:
            public.verify(signature, _SIGNED_DOMAIN + body)
        except InvalidSignature:
            raise signature_invalid("channel signature does not verify") from None
        own = self._by_rid.get(header[sid_end + 1 : rid_end])
        if own is None:
            raise signature_invalid("channel is sealed to a key this party does not hold")
        ephemeral_at = rid_end + CHANNEL_ID_BYTES + 8
        aad_end = ephemeral_at + KEY_BYTES
        ephemeral = header[ephemeral_at:aad_end]
        try:
            shared = own.exchange(X25519PublicKey.from_public_bytes(ephemeral))
            wrap = wrap_key(_WRAP_INFO, shared, ephemeral, own.public().sealing)
            mac_key = wrap.decrypt(
                _WRAP_NONCE, header[aad_end : aad_end + WRAPPED_KEY_BYTES], header[:aad_end]
            )
        except (ValueError, InvalidTag):
            raise signature_invalid("channel's MAC key does not unwrap with this party's seal key") from None
        verified = _Verified(party, mac_key)
        if len(self._channels) >= _CACHED_CHANNELS:
            self._channels.clear()
        self._channels[header] = verified
        return verified


def _header_bytes(data: Any, name: str) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    if data is None:
        raise signature_missing(f"message's {name} header is empty")
    raise signature_invalid(f"message's {name} header is not bytes")


def sign_file(own: PartyKeys, digest: bytes) -> bytes:
    """The signature of a file given its SHA-256: 0x01 | len(sid) (1) | sid | Ed25519 signature (64) over
    "ssc-file-v1\\0" and the digest. Files are few (vendor files, return files): a signature each is cheap."""
    if len(digest) != _DIGEST_BYTES:
        raise ValueError(f"a file digest is SHA-256 ({_DIGEST_BYTES} bytes)")
    sid = _kid(own.sign_key_id)
    return bytes([FILE_SIGNATURE_VERSION, len(sid)]) + sid + own.sign(_FILE_DOMAIN + digest)


def verify_file(directory: Directory, party: Party, digest: bytes, signature: bytes) -> None:
    """Nothing when `party` signed the file with the SHA-256 `digest`; else TrustFailure: SIGNATURE_MISSING
    (no signature), SIGNATURE_INVALID (malformed, unknown or revoked key, does not verify), SENDER_MISMATCH (a
    valid signature of another party)."""
    if not signature:
        raise signature_missing("the file has no signature")
    if len(digest) != _DIGEST_BYTES:
        raise signature_invalid(f"a file digest is SHA-256 ({_DIGEST_BYTES} bytes)")
    if len(signature) < 3 or signature[0] != FILE_SIGNATURE_VERSION:
        raise signature_invalid(f"file signature is not version {FILE_SIGNATURE_VERSION}")
    sid_end = 2 + signature[1]
    if signature[1] == 0 or len(signature) != sid_end + SIGNATURE_BYTES:
        raise signature_invalid(f"file signature of {len(signature)} bytes does not have its format's length")
    try:
        sid = bytes(signature[2:sid_end]).decode("ascii")
    except UnicodeDecodeError:
        raise signature_invalid("file signature's key id is not ASCII") from None
    signer = directory.signer_of(sid)
    if signer is None:
        raise signature_invalid("file is signed by a key that is not registered or was revoked")
    signer_party, public = signer
    try:
        public.verify(bytes(signature[sid_end:]), _FILE_DOMAIN + bytes(digest))
    except InvalidSignature:
        raise signature_invalid("file signature does not verify") from None
    if signer_party != party:
        raise TrustFailure(DeadLetterReason.SENDER_MISMATCH, f"file is signed by {signer_party}, not {party}")
