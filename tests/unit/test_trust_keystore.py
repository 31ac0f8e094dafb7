"""Key files: the bureau's from the environment or its file, generated only with the embedded services; the
partners' files written once with mode 0600; every missing key says what to provide."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from issuance.errors import ConfigurationError
from issuance.settings import Settings
from issuance.trust.keys import PartyKeys
from issuance.trust.keystore import bureau_keys, generate_partner_keys, key_file, partner_keys
from issuance.trust.parties import BUREAU, bank

ICBC = bank("ICBC")


def embedded(tmp_path: Path) -> Settings:
    return Settings(state_dir=tmp_path / "state", keys_dir=tmp_path / "keys")


def configured(tmp_path: Path, **extra: object) -> Settings:
    return Settings(
        kafka_bootstrap="127.0.0.1:1",
        database_url=SecretStr("postgresql://x@127.0.0.1:1/x"),
        keys_dir=tmp_path / "keys",
        **extra,  # type: ignore[arg-type]
    )


def test_development_generates_the_bureau_key_once(tmp_path: Path) -> None:
    settings = embedded(tmp_path)
    first = bureau_keys(settings)
    path = tmp_path / "keys" / "bureau.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert bureau_keys(settings).public() == first.public()
    assert not list(path.parent.glob(".*.tmp"))


def test_configured_servers_never_generate_a_bureau_key(tmp_path: Path) -> None:
    settings = configured(tmp_path)
    with pytest.raises(ConfigurationError) as caught:
        bureau_keys(settings)
    assert "ISSUANCE_BUREAU_KEY" in str(caught.value) and "bureau.key" in str(caught.value)
    assert "issuance keys generate --party bureau:bureau" in str(caught.value)
    assert not (tmp_path / "keys").exists()


def test_the_bureau_key_from_the_environment_or_its_file(tmp_path: Path) -> None:
    keys = PartyKeys.generate(BUREAU)
    assert bureau_keys(configured(tmp_path, bureau_key=SecretStr(keys.to_text()))).public() == keys.public()
    generated = generate_partner_keys(configured(tmp_path), BUREAU)
    assert key_file(configured(tmp_path), BUREAU) == tmp_path / "keys" / "bureau.key"
    assert bureau_keys(configured(tmp_path)).public() == generated.public()


def test_a_wrong_or_broken_bureau_key_is_refused_without_quoting_it(tmp_path: Path) -> None:
    partner = PartyKeys.generate(ICBC).to_text()
    with pytest.raises(ConfigurationError, match="ISSUANCE_BUREAU_KEY holds the keys of bank:ICBC"):
        bureau_keys(configured(tmp_path, bureau_key=SecretStr(partner)))
    with pytest.raises(ConfigurationError, match="ISSUANCE_BUREAU_KEY") as caught:
        bureau_keys(configured(tmp_path, bureau_key=SecretStr("secret-ish text")))
    assert "secret-ish" not in str(caught.value)


def test_partner_key_files(tmp_path: Path) -> None:
    settings = configured(tmp_path)
    with pytest.raises(ConfigurationError, match="issuance keys generate --party bank:ICBC"):
        partner_keys(settings, ICBC)
    keys = generate_partner_keys(settings, ICBC)
    path = tmp_path / "keys" / "parties" / "bank-ICBC.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert generate_partner_keys(settings, ICBC).public() == keys.public()  # kept, not replaced
    assert partner_keys(settings, ICBC).public() == keys.public()
    path.rename(tmp_path / "keys" / "parties" / "bank-ABC.key")
    with pytest.raises(ConfigurationError, match="holds the keys of bank:ICBC, not of bank:ABC"):
        partner_keys(settings, bank("ABC"))
