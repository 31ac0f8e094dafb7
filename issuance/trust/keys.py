"""Each party's two key pairs (Ed25519 to sign, X25519 to seal to it), their key ids, the key file format,
and the directory of every registered public key.

A key id names one public key: "<kind>:<code>:<sign|seal>:<first 12 hex of SHA-256(raw public key)>", so
anyone holding the public key can check the id, and an id never changes once a key exists.

The private operations of a party are `PartyKeys.sign` and `PartyKeys.exchange`; nothing else touches the
private keys. A KMS or HSM plugs in there (see issuance/trust/README.md).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from issuance.errors import ConfigurationError
from issuance.trust.errors import UnknownParty
from issuance.trust.parties import Party

KEY_BYTES = 32
KEY_FILE_FORMAT = "ssc-party-keys"
KEY_FILE_VERSION = 1
KEY_ID = re.compile(r"^(bureau|branch|bank|vendor):[A-Za-z0-9][A-Za-z0-9_.-]{0,63}:(sign|seal):[0-9a-f]{12}$")
KEY_ID_MAX = 96  # fits the one-byte length prefix of every binary format


class Purpose(StrEnum):
    """What a public key is for."""

    SIGN = "sign"
    SEAL = "seal"


def key_id(party: Party, purpose: Purpose, public_raw: bytes) -> str:
    """The id of one public key (see the module docstring)."""
    return f"{party}:{purpose.value}:{hashlib.sha256(public_raw).hexdigest()[:12]}"


def raw_public(key: Ed25519PublicKey | X25519PublicKey) -> bytes:
    """The 32 raw bytes of a public key (what key ids hash and formats carry)."""
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _raw_private(key: Ed25519PrivateKey | X25519PrivateKey) -> bytes:
    return key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


@dataclass(frozen=True, slots=True)
class PublicKeys:
    """A party's two public keys with their ids: what the bureau registers and every sender seals to."""

    party: Party
    sign_key_id: str
    signing: bytes
    seal_key_id: str
    sealing: bytes

    def entries(self) -> tuple[tuple[str, Party, Purpose, bytes], ...]:
        """The two rows of `party_keys` (key id, party, purpose, raw public key)."""
        return (
            (self.sign_key_id, self.party, Purpose.SIGN, self.signing),
            (self.seal_key_id, self.party, Purpose.SEAL, self.sealing),
        )

    def to_json(self) -> dict[str, str]:
        """The exported form a partner hands to the bureau (`issuance keys export-public`)."""
        return {
            "party": str(self.party),
            "sign_key_id": self.sign_key_id,
            "signing": base64.b64encode(self.signing).decode(),
            "seal_key_id": self.seal_key_id,
            "sealing": base64.b64encode(self.sealing).decode(),
        }

    @classmethod
    def from_json(cls, doc: Any) -> PublicKeys:
        """Read the exported form back; ConfigurationError when a field is missing, malformed, or an id does
        not name its key."""
        if not isinstance(doc, dict):
            raise ConfigurationError("public keys must be a JSON object")
        party = Party.parse(_text(doc, "party"))
        signing = _b64_key(doc, "signing")
        sealing = _b64_key(doc, "sealing")
        keys = cls(party, _text(doc, "sign_key_id"), signing, _text(doc, "seal_key_id"), sealing)
        for kid, owner, purpose, raw in keys.entries():
            check_entry(kid, owner, purpose, raw)
        return keys


def check_entry(kid: str, party: Party, purpose: Purpose, raw: bytes) -> None:
    """A public key row is consistent: 32 bytes, and its id names this party, purpose and key."""
    if len(raw) != KEY_BYTES:
        raise ConfigurationError(f"public key {kid} must be {KEY_BYTES} bytes, not {len(raw)}")
    if kid != key_id(party, purpose, raw):
        raise ConfigurationError(
            f"key id {kid} does not name the {purpose.value} key of {party} it is given with"
        )


def _text(doc: dict[str, Any], name: str) -> str:
    value = doc.get(name)
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"field {name!r} must be a non-empty string")
    return value


def _b64_key(doc: dict[str, Any], name: str) -> bytes:
    try:
        raw = base64.b64decode(_text(doc, name), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError(f"field {name!r} is not base64") from None
    if len(raw) != KEY_BYTES:
        raise ConfigurationError(f"field {name!r} must hold {KEY_BYTES} bytes, not {len(raw)}")
    return raw


@dataclass(frozen=True, eq=False)
class PartyKeys:
    """One party's private keys. Picklable (Beam ships it to workers): it pickles as its raw key bytes.

    Never printed: the repr shows the party and key ids only."""

    party: Party
    _signing: Ed25519PrivateKey = field(repr=False)
    _sealing: X25519PrivateKey = field(repr=False)
    sign_key_id: str = field(init=False)
    seal_key_id: str = field(init=False)
    _public: PublicKeys = field(init=False, repr=False)

    def __post_init__(self) -> None:
        signing = raw_public(self._signing.public_key())
        sealing = raw_public(self._sealing.public_key())
        public = PublicKeys(
            self.party,
            key_id(self.party, Purpose.SIGN, signing),
            signing,
            key_id(self.party, Purpose.SEAL, sealing),
            sealing,
        )
        object.__setattr__(self, "sign_key_id", public.sign_key_id)
        object.__setattr__(self, "seal_key_id", public.seal_key_id)
        object.__setattr__(self, "_public", public)

    @classmethod
    def generate(cls, party: Party) -> PartyKeys:
        return cls(party, Ed25519PrivateKey.generate(), X25519PrivateKey.generate())

    @classmethod
    def from_raw(cls, party: Party, signing: bytes, sealing: bytes) -> PartyKeys:
        if len(signing) != KEY_BYTES or len(sealing) != KEY_BYTES:
            raise ConfigurationError(f"private keys of {party} must be {KEY_BYTES} bytes each")
        return cls(
            party, Ed25519PrivateKey.from_private_bytes(signing), X25519PrivateKey.from_private_bytes(sealing)
        )

    def public(self) -> PublicKeys:
        return self._public

    # The private operations: the only uses of the private keys.
    def sign(self, message: bytes) -> bytes:
        """Ed25519 signature of `message` by this party's signing key."""
        return self._signing.sign(message)

    def exchange(self, peer: X25519PublicKey) -> bytes:
        """The X25519 shared secret of this party's sealing key with `peer` (ValueError: low-order point)."""
        return self._sealing.exchange(peer)

    def to_text(self) -> str:
        """The key file: JSON with the party and both private keys in base64."""
        return (
            json.dumps(
                {
                    "format": KEY_FILE_FORMAT,
                    "version": KEY_FILE_VERSION,
                    "party": str(self.party),
                    "signing": base64.b64encode(_raw_private(self._signing)).decode(),
                    "sealing": base64.b64encode(_raw_private(self._sealing)).decode(),
                },
                indent=2,
            )
            + "\n"
        )

    @classmethod
    def from_text(cls, text: str) -> PartyKeys:
        """Read a key file; ConfigurationError (never quoting the text) when it is not one."""
        try:
            doc = json.loads(text)
        except ValueError:
            raise ConfigurationError("not a party key file (not JSON)") from None
        if not isinstance(doc, dict) or doc.get("format") != KEY_FILE_FORMAT:
            raise ConfigurationError(f"not a party key file (format is not {KEY_FILE_FORMAT!r})")
        if doc.get("version") != KEY_FILE_VERSION:
            raise ConfigurationError(f"party key file version must be {KEY_FILE_VERSION}")
        party = Party.parse(_text(doc, "party"))
        return cls.from_raw(party, _b64_key(doc, "signing"), _b64_key(doc, "sealing"))

    def __reduce__(self) -> tuple[Any, ...]:
        return (PartyKeys.from_raw, (self.party, _raw_private(self._signing), _raw_private(self._sealing)))


DirectoryEntry = PublicKeys | tuple[str, Party | str, Purpose | str, bytes]


class Directory:
    """The public keys of every registered party (unrevoked rows of `party_keys`, oldest first).

    Every sign key verifies; the last seal key of a party is the one others seal to. Picklable: it pickles
    as its rows and rebuilds the key objects."""

    def __init__(self, entries: Iterable[DirectoryEntry]) -> None:
        rows: list[tuple[str, Party, Purpose, bytes]] = []
        for entry in entries:
            if isinstance(entry, PublicKeys):
                rows.extend(entry.entries())
                continue
            kid, party, purpose, raw = entry
            party = party if isinstance(party, Party) else Party.parse(party)
            rows.append((kid, party, Purpose(purpose), bytes(raw)))
        self._rows = tuple(rows)
        self._signers: dict[str, tuple[Party, Ed25519PublicKey]] = {}
        self._sealing: dict[Party, tuple[str, X25519PublicKey]] = {}
        for kid, party, purpose, raw in rows:
            check_entry(kid, party, purpose, raw)
            if purpose is Purpose.SIGN:
                self._signers[kid] = (party, Ed25519PublicKey.from_public_bytes(raw))
            else:
                self._sealing[party] = (kid, X25519PublicKey.from_public_bytes(raw))

    def sealing_key(self, party: Party) -> tuple[str, X25519PublicKey]:
        """The key id and public key to seal to `party`; UnknownParty when none is registered."""
        try:
            return self._sealing[party]
        except KeyError:
            raise UnknownParty(
                f"no seal key of {party} is registered: register its public keys "
                f"(issuance keys register) or, with the embedded services, run issuance setup"
            ) from None

    def signer_of(self, sign_key_id: str) -> tuple[Party, Ed25519PublicKey] | None:
        """Who a sign key belongs to and its public key; None for a key nobody registered (or revoked)."""
        return self._signers.get(sign_key_id)

    @property
    def parties(self) -> frozenset[Party]:
        return frozenset(party for _, party, _, _ in self._rows)

    def rows(self) -> tuple[tuple[str, Party, Purpose, bytes], ...]:
        return self._rows

    def __reduce__(self) -> tuple[Any, ...]:
        return (Directory, (self._rows,))

    def __len__(self) -> int:
        return len(self._rows)
