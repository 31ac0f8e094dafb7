"""A raw message of `issuance submit raw`, as the line describes it: bytes verbatim or a record encoded here,
signed by the named sender or not at all, and forged the way the line says.

The night must set every such message aside with its reason; raw messages are test and replay data, never a
branch's normal traffic. Forgeries (what an attacker with write access to a topic can do):

- `ALTERED`: signed by the sender, then one byte of the value changed (SIGNATURE_INVALID);
- `UNREGISTERED_KEY`: signed with a key pair of the sender the bureau never registered (SIGNATURE_INVALID);
- `SEALED_TO_SENDER`: an application whose personal fields are sealed to the sender's own key instead of the
  bureau's (SEAL_INVALID).

An unsigned message (`sender` null) is SIGNATURE_MISSING; a record signed by another party than the one it
speaks for is SENDER_MISMATCH. A record is encoded without the contract check, so a line can break it on
purpose; an application's personal fields are sealed as a branch seals them, so no raw message carries an ID
number, name or phone number in clear.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from issuance.application_wire import seal_application
from issuance.codec.avro import encode
from issuance.domain.contract import AGREEMENT_RECORD, APPLICATION_RECORD
from issuance.trust.channel import Signer
from issuance.trust.keys import PartyKeys
from issuance.trust.parties import BUREAU, Party
from issuance.trust.sealing import Sealer
from producers.client import Prepared, Preparer


class Forgery(StrEnum):
    """How a raw message is forged after it was built."""

    ALTERED = "ALTERED"
    UNREGISTERED_KEY = "UNREGISTERED_KEY"
    SEALED_TO_SENDER = "SEALED_TO_SENDER"


def encode_record(
    preparer: Preparer, topic: str, record: Mapping[str, Any], sender: Party | None, forgery: Forgery | None
) -> bytes:
    """The message of a raw line's record: an application sealed to the bureau (to the sender for
    SEALED_TO_SENDER), an agreement as it is; not checked against the contract."""
    if topic != preparer.topics.applications:
        return encode(AGREEMENT_RECORD, record)
    keys = preparer.keys
    if forgery is Forgery.SEALED_TO_SENDER:
        if sender is None:
            raise ValueError("SEALED_TO_SENDER needs a sender")
        sealer = Sealer.to(keys.directory, sender)
    else:
        sealer = keys.to_bureau()
    return encode(APPLICATION_RECORD, seal_application(record, sealer))


def sign_raw(
    preparer: Preparer, prepared: Prepared, sender: Party | None, forgery: Forgery | None
) -> Prepared:
    """`prepared` signed by `sender` (unsigned without one), forged as `forgery` says."""
    if sender is None or prepared.value is None:
        return prepared
    if forgery is Forgery.UNREGISTERED_KEY:
        stranger = Signer(PartyKeys.generate(sender), preparer.keys.directory)
        headers = stranger.headers(BUREAU, prepared.key, prepared.value)
        return Prepared(prepared.topic, prepared.key, prepared.value, prepared.record_id, headers=headers)
    signed = preparer.signed(sender, prepared)
    if forgery is Forgery.ALTERED and signed.value:
        altered = signed.value[:-1] + bytes([signed.value[-1] ^ 0x01])
        return Prepared(signed.topic, signed.key, altered, signed.record_id, headers=signed.headers)
    return signed
