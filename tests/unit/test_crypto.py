"""The vault: envelopes round-trip, tampering is detected, keys rotate, blind indexes are stable and keyed."""

from __future__ import annotations

import base64
import pickle
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from issuance.crypto import DecryptionFailed, Vault, parse_data_keys
from issuance.errors import ConfigurationError
from issuance.settings import Settings

OLD_KEY = bytes(range(32))
NEW_KEY = bytes(range(32, 64))
BLIND_KEY = bytes(range(64, 96))
ID = "110105198001011238"


def vault(*keys: tuple[str, bytes], blind: bytes = BLIND_KEY) -> Vault:
    return Vault(list(keys) or [("k1", OLD_KEY)], blind)


def test_round_trip_text_bytes_and_batches() -> None:
    v = vault()
    assert v.decrypt(v.encrypt(ID)) == ID
    assert v.decrypt(v.encrypt("张伟")) == "张伟"
    assert v.decrypt(v.encrypt("")) == ""
    assert v.decrypt_bytes(v.encrypt_bytes(b"\x00\xff raw")) == b"\x00\xff raw"
    batch = v.encrypt_many([ID, None, "欧阳娜娜"])
    assert batch[1] is None
    assert [v.decrypt(e) for e in batch if e is not None] == [ID, "欧阳娜娜"]


def test_envelopes_are_randomized_and_carry_the_key_id() -> None:
    v = vault()
    first, second = v.encrypt(ID), v.encrypt(ID)
    assert first != second
    assert ID.encode() not in first
    assert v.key_id_of(first) == "k1"
    a, b = v.encrypt_many([ID, ID])
    assert a is not None and b is not None and a != b


@pytest.mark.parametrize("position", [0, 1, 2, 5, 20, 70, -20, -1])
def test_any_flipped_byte_is_detected(position: int) -> None:
    v = vault()
    envelope = bytearray(v.encrypt(ID))
    envelope[position] ^= 0x01
    with pytest.raises(DecryptionFailed):
        v.decrypt(bytes(envelope))


def test_truncated_or_foreign_envelopes_are_refused() -> None:
    v = vault()
    envelope = v.encrypt(ID)
    for broken in (b"", b"\x01", envelope[:40], b"\x02" + envelope[1:]):
        with pytest.raises(DecryptionFailed):
            v.decrypt(broken)


def test_a_different_master_key_with_the_same_id_cannot_decrypt() -> None:
    with pytest.raises(DecryptionFailed, match="not authentic"):
        vault(("k1", NEW_KEY)).decrypt(vault(("k1", OLD_KEY)).encrypt(ID))


def test_rotation_new_key_encrypts_old_key_still_decrypts() -> None:
    before = vault(("old", OLD_KEY))
    sealed_before = before.encrypt(ID)
    after = vault(("new", NEW_KEY), ("old", OLD_KEY))
    assert after.decrypt(sealed_before) == ID
    assert after.key_id_of(after.encrypt(ID)) == "new"
    assert after.needs_rotation(sealed_before)
    rotated = after.reencrypt(sealed_before)
    assert after.key_id_of(rotated) == "new" and not after.needs_rotation(rotated)
    assert after.decrypt(rotated) == ID
    with pytest.raises(DecryptionFailed, match="unknown data key 'new'"):
        before.decrypt(rotated)


def test_blind_index_is_stable_normalized_and_keyed() -> None:
    v = vault()
    index = v.blind_index("11010519800101123X")
    assert len(index) == 32
    assert index == vault(("other", NEW_KEY)).blind_index("11010519800101123X")  # data keys do not matter
    assert v.blind_index(" 11010519800101123x ") == index
    assert v.blind_index("110105198001011238") != index
    assert vault(blind=bytes(32)).blind_index("11010519800101123X") != index
    assert v.digest(ID, "张伟") != v.digest(ID, "张伟 ")


def test_vault_survives_pickling() -> None:
    v = vault(("new", NEW_KEY), ("old", OLD_KEY))
    clone = pickle.loads(pickle.dumps(v))
    assert clone.decrypt(v.encrypt(ID)) == ID
    assert clone.blind_index(ID) == v.blind_index(ID)


def test_keys_from_settings(tmp_path: Path) -> None:
    data = f"new:{base64.b64encode(NEW_KEY).decode()}, old:{base64.b64encode(OLD_KEY).decode()}"
    settings = Settings(
        data_keys=SecretStr(data),
        blind_index_key=SecretStr(base64.b64encode(BLIND_KEY).decode()),
        state_dir=tmp_path / "state",
        keys_dir=tmp_path / "keys",
    )
    v = Vault.from_settings(settings)
    assert v.primary_key_id == "new"
    assert v.decrypt(vault(("old", OLD_KEY)).encrypt(ID)) == ID


@pytest.mark.parametrize(
    "text",
    ["nokey", "k1:not base64!", f"k1:{base64.b64encode(b'short').decode()}", "bad id:" + "A" * 44],
)
def test_malformed_data_keys_are_refused_without_echoing_them(text: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Vault(parse_data_keys(text), BLIND_KEY)
    assert "A" * 10 not in str(info.value)


def test_only_one_of_the_two_keys_configured_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="ISSUANCE_DATA_KEYS"):
        blind = SecretStr(base64.b64encode(BLIND_KEY).decode())
        Vault.from_settings(Settings(blind_index_key=blind, state_dir=tmp_path, keys_dir=tmp_path / "k"))


def test_development_keys_are_generated_once_with_mode_0600_in_keys_dir(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(state_dir=tmp_path / "state", keys_dir=tmp_path / "keys")
    first = Vault.from_settings(settings)
    files = sorted((tmp_path / "keys").iterdir())
    assert [f.name for f in files] == ["blind-index-key", "data-keys"]
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    assert "generated development encryption keys" in caplog.text
    assert all(f.read_text().strip().split(":")[-1] not in caplog.text for f in files)
    second = Vault.from_settings(settings)
    assert second.decrypt(first.encrypt(ID)) == ID
    assert second.blind_index(ID) == first.blind_index(ID)
    assert not (tmp_path / "state").exists()
