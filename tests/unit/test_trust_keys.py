"""Party keys: ids name their key, the key file round-trips and fails closed, the directory and the private
keys pickle for Beam workers and never print."""

from __future__ import annotations

import json
import pickle

import pytest

from issuance.errors import ConfigurationError
from issuance.trust import BUREAU, Directory, PartyKeys, PublicKeys, Purpose, UnknownParty, key_id
from issuance.trust.parties import bank, branch

ICBC = bank("ICBC")


def test_key_ids_name_party_purpose_and_key() -> None:
    keys = PartyKeys.generate(ICBC)
    public = keys.public()
    assert keys.sign_key_id == key_id(ICBC, Purpose.SIGN, public.signing)
    assert keys.seal_key_id.startswith("bank:ICBC:seal:")
    assert len(keys.seal_key_id.rsplit(":", 1)[1]) == 12
    assert keys.sign_key_id != PartyKeys.generate(ICBC).sign_key_id


def test_key_file_round_trip_and_private_keys_never_print() -> None:
    keys = PartyKeys.generate(branch("B001"))
    text = keys.to_text()
    again = PartyKeys.from_text(text)
    assert again.public() == keys.public()
    secret = json.loads(text)["signing"]
    assert secret not in repr(keys) and secret not in str(keys)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        "[]",
        '{"format": "other"}',
        '{"format": "ssc-party-keys", "version": 2}',
        '{"format": "ssc-party-keys", "version": 1, "party": "bank:ICBC", "signing": "AAAA", "sealing": ""}',
        '{"format": "ssc-party-keys", "version": 1, "party": "nobody:X", "signing": "", "sealing": ""}',
    ],
)
def test_a_broken_key_file_is_a_configuration_error(text: str) -> None:
    with pytest.raises(ConfigurationError):
        PartyKeys.from_text(text)


def test_a_truncated_key_file_never_quotes_its_text() -> None:
    text = PartyKeys.generate(ICBC).to_text()
    secret = json.loads(text)["sealing"]
    with pytest.raises(ConfigurationError) as caught:
        PartyKeys.from_text(text.replace(secret, secret[:-8]))
    assert secret[:20] not in str(caught.value)


def test_public_keys_export_round_trip_and_ids_are_checked() -> None:
    public = PartyKeys.generate(ICBC).public()
    assert PublicKeys.from_json(public.to_json()) == public
    other = PartyKeys.generate(bank("ABC")).public()
    forged = {**public.to_json(), "signing": other.to_json()["signing"]}
    with pytest.raises(ConfigurationError, match="does not name"):
        PublicKeys.from_json(forged)
    claimed = {**other.to_json(), "party": "bank:ICBC"}
    with pytest.raises(ConfigurationError, match="does not name"):
        PublicKeys.from_json(claimed)


def test_directory_seals_to_the_newest_key_and_knows_every_signer() -> None:
    old, new = PartyKeys.generate(ICBC), PartyKeys.generate(ICBC)
    directory = Directory([old.public(), *(row for row in new.public().entries())])
    assert directory.sealing_key(ICBC)[0] == new.seal_key_id
    assert directory.signer_of(old.sign_key_id) is not None
    assert directory.signer_of(new.sign_key_id) is not None
    signer = directory.signer_of(new.sign_key_id)
    assert signer is not None and signer[0] == ICBC
    assert directory.signer_of("bank:ICBC:sign:000000000000") is None
    with pytest.raises(UnknownParty, match="issuance keys register"):
        directory.sealing_key(BUREAU)


def test_directory_rows_from_the_database_are_checked() -> None:
    public = PartyKeys.generate(ICBC).public()
    rows = [(kid, str(party), purpose.value, raw) for kid, party, purpose, raw in public.entries()]
    assert Directory(rows).sealing_key(ICBC)[0] == public.seal_key_id
    with pytest.raises(ConfigurationError):
        Directory([(public.seal_key_id, "bank:ABC", "seal", public.sealing)])
    with pytest.raises(ConfigurationError):
        Directory([(public.seal_key_id, "bank:ICBC", "seal", public.sealing[:31])])


def test_party_keys_and_directory_pickle() -> None:
    keys = PartyKeys.generate(ICBC)
    again = pickle.loads(pickle.dumps(keys))
    assert again.public() == keys.public()
    assert again.sign(b"m") == keys.sign(b"m")  # Ed25519 is deterministic: the same private key
    directory = pickle.loads(pickle.dumps(Directory([keys.public()])))
    assert directory.sealing_key(ICBC)[0] == keys.seal_key_id
