"""The Vault's keys fail closed: never generated beside configured servers, never beside the data, read from
the environment, mounted secret files or the keys directory, and refused when other users can read them."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from issuance.crypto import Vault, generate_key_text
from issuance.errors import ConfigurationError
from issuance.settings import Settings
from issuance.vault_keys import previous_blind_index_key_text

ID = "110105198001011238"
SERVERS: dict[str, Any] = {
    "database_url": SecretStr("postgresql://db.example/issuance"),
    "kafka_bootstrap": "k:9092",
}


def settings(tmp_path: Path, *, servers: bool = True, **values: Any) -> Settings:
    return Settings(
        state_dir=tmp_path / "state", keys_dir=tmp_path / "keys", **(SERVERS if servers else {}), **values
    )


def key_file(path: Path, text: str, mode: int = 0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")
    path.chmod(mode)
    return path


def test_configured_servers_without_keys_fail_closed_and_generate_nothing(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as info:
        Vault.from_settings(settings(tmp_path))
    message = str(info.value)
    for name in ("ISSUANCE_DATA_KEYS", "ISSUANCE_DATA_KEYS_FILE", "ISSUANCE_BLIND_INDEX_KEY_FILE"):
        assert name in message
    assert str(tmp_path / "keys" / "data-keys") in message
    assert not (tmp_path / "state").exists() and not (tmp_path / "keys").exists()


def test_only_the_blind_index_key_missing_names_only_it(tmp_path: Path) -> None:
    data, _ = generate_key_text()
    with pytest.raises(ConfigurationError, match="ISSUANCE_BLIND_INDEX_KEY") as info:
        Vault.from_settings(settings(tmp_path, data_keys=SecretStr(data)))
    assert "ISSUANCE_DATA_KEYS " not in str(info.value)


def test_legacy_keys_beside_the_data_move_to_keys_dir_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data, blind = generate_key_text("dev1")
    legacy = key_file(
        tmp_path / "state" / "keys.json", json.dumps({"data_keys": data, "blind_index_key": blind})
    )
    sealed = Vault.from_settings(
        settings(tmp_path, data_keys=SecretStr(data), blind_index_key=SecretStr(blind))
    )
    envelope = sealed.encrypt(ID)
    # Configured servers, no variables: the moved keys are read from keys_dir (nothing lost or generated).
    vault = Vault.from_settings(settings(tmp_path))
    assert vault.decrypt(envelope) == ID and vault.blind_index(ID) == sealed.blind_index(ID)
    assert not legacy.exists()
    for name in ("data-keys", "blind-index-key"):
        assert stat.S_IMODE((tmp_path / "keys" / name).stat().st_mode) == 0o600
    assert "moved the encryption keys" in caplog.text and blind not in caplog.text
    assert Vault.from_settings(settings(tmp_path)).decrypt(envelope) == ID


def test_legacy_keys_are_kept_whole_when_keys_dir_holds_others(tmp_path: Path) -> None:
    data, blind = generate_key_text("dev1")
    other_data, other_blind = generate_key_text("k2")
    key_file(tmp_path / "keys" / "data-keys", other_data)
    key_file(tmp_path / "keys" / "blind-index-key", other_blind)
    legacy = key_file(
        tmp_path / "state" / "keys.json", json.dumps({"data_keys": data, "blind_index_key": blind})
    )
    assert Vault.from_settings(settings(tmp_path)).primary_key_id == "k2"
    assert not legacy.exists()
    assert json.loads((tmp_path / "keys" / "keys-from-state-dir.json").read_text())["data_keys"] == data


def test_keys_from_secret_files(tmp_path: Path) -> None:
    data, blind = generate_key_text("k9")
    vault = Vault.from_settings(
        settings(
            tmp_path,
            data_keys_file=key_file(tmp_path / "secrets" / "data", data, 0o400),
            blind_index_key_file=key_file(tmp_path / "secrets" / "blind", blind, 0o400),
        )
    )
    assert vault.primary_key_id == "k9"
    assert vault.blind_index(ID) == Vault.from_settings(
        settings(tmp_path, data_keys=SecretStr(data), blind_index_key=SecretStr(blind))
    ).blind_index(ID)


def test_keys_from_the_keys_directory(tmp_path: Path) -> None:
    data, blind = generate_key_text("k7")
    key_file(tmp_path / "keys" / "data-keys", data)
    key_file(tmp_path / "keys" / "blind-index-key", blind)
    assert Vault.from_settings(settings(tmp_path)).primary_key_id == "k7"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_key_files_readable_by_others_are_refused_with_servers(tmp_path: Path, mode: int) -> None:
    data, blind = generate_key_text()
    key_file(tmp_path / "keys" / "data-keys", data, mode)
    key_file(tmp_path / "keys" / "blind-index-key", blind)
    with pytest.raises(ConfigurationError, match="chmod 600") as info:
        Vault.from_settings(settings(tmp_path))
    assert data.split(":")[1] not in str(info.value)


def test_key_files_readable_by_others_only_warn_in_development(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data, blind = generate_key_text("k3")
    key_file(tmp_path / "keys" / "data-keys", data, 0o644)
    key_file(tmp_path / "keys" / "blind-index-key", blind)
    assert Vault.from_settings(settings(tmp_path, servers=False)).primary_key_id == "k3"
    assert "readable by other users" in caplog.text


def test_a_variable_and_its_file_together_are_refused(tmp_path: Path) -> None:
    data, blind = generate_key_text()
    with pytest.raises(ConfigurationError, match="not both"):
        Vault.from_settings(
            settings(
                tmp_path,
                data_keys=SecretStr(data),
                data_keys_file=key_file(tmp_path / "d", data),
                blind_index_key=SecretStr(blind),
            )
        )


def test_a_named_key_file_that_is_missing_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read"):
        Vault.from_settings(
            settings(tmp_path, data_keys_file=tmp_path / "absent", blind_index_key_file=tmp_path / "b")
        )


def test_previous_blind_index_key_from_keys_dir(tmp_path: Path) -> None:
    assert previous_blind_index_key_text(settings(tmp_path)) is None
    old = base64.b64encode(bytes(32)).decode()
    key_file(tmp_path / "keys" / "previous-blind-index-key", old)
    assert previous_blind_index_key_text(settings(tmp_path)) == old
