"""The Kafka client options: what each protocol needs, and the mistakes that must stop a service."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from issuance.errors import ConfigurationError
from issuance.kafka.client_config import KafkaClientConfig, client_options
from issuance.services.endpoints import kafka_config
from issuance.settings import Settings


def _settings(tmp_path: Path, **values: Any) -> Settings:
    return Settings(kafka_bootstrap="kafka:9093", state_dir=tmp_path, **values)


@pytest.fixture
def ca(tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\n")
    return path


def test_plaintext_by_default(tmp_path: Path) -> None:
    assert client_options(_settings(tmp_path)) == {"security_protocol": "PLAINTEXT"}


def test_sasl_ssl_with_scram(tmp_path: Path, ca: Path) -> None:
    settings = _settings(
        tmp_path,
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_username="nightly",
        kafka_sasl_password=SecretStr("s3cret"),
        kafka_ssl_cafile=ca,
    )
    assert client_options(settings) == {
        "security_protocol": "SASL_SSL",
        "ssl_cafile": str(ca),
        "ssl_check_hostname": True,
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "nightly",
        "sasl_plain_password": "s3cret",
    }


def test_the_config_is_picklable_and_its_repr_hides_the_password(tmp_path: Path, ca: Path) -> None:
    settings = _settings(
        tmp_path,
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_username="nightly",
        kafka_sasl_password=SecretStr("s3cret"),
        kafka_ssl_cafile=ca,
    )
    config = KafkaClientConfig.from_settings(settings)
    assert pickle.loads(pickle.dumps(config)) == config
    assert "s3cret" not in repr(config) and "kafka:9093" in repr(config)
    assert config.client_kwargs()["bootstrap_servers"] == "kafka:9093"
    assert config.security_protocol == "SASL_SSL"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"kafka_security_protocol": "SASL_SSL"}, "needs ISSUANCE_KAFKA_SSL_CAFILE"),
        (
            {"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_sasl_username": "x"},
            "needs ISSUANCE_KAFKA_SASL_PASSWORD",
        ),
        (
            {"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_sasl_password": SecretStr("p")},
            "needs ISSUANCE_KAFKA_SASL_USERNAME",
        ),
        (
            {
                "kafka_security_protocol": "SASL_PLAINTEXT",
                "kafka_sasl_mechanism": "PLAIN",
                "kafka_sasl_username": "x",
                "kafka_sasl_password": SecretStr("p"),
            },
            "password in clear",
        ),
        ({"kafka_sasl_username": "x", "kafka_sasl_password": SecretStr("p")}, "does not authenticate"),
        ({"kafka_ssl_cafile": Path("/ca.pem")}, "does not use TLS"),
        (
            {"kafka_security_protocol": "SSL", "kafka_ssl_cafile": Path("/nowhere/ca.pem")},
            "ISSUANCE_KAFKA_SSL_CAFILE=/nowhere/ca.pem cannot be read",
        ),
    ],
)
def test_incomplete_or_contradictory_settings_fail_closed(
    tmp_path: Path, values: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        client_options(_settings(tmp_path, **values))


def test_the_embedded_broker_cannot_be_asked_for_tls(tmp_path: Path) -> None:
    embedded = "127.0.0.1:9092"
    plain = Settings(state_dir=tmp_path)
    assert kafka_config(plain, embedded) == KafkaClientConfig.plaintext(embedded)
    with pytest.raises(ConfigurationError, match="embedded broker speaks PLAINTEXT"):
        kafka_config(Settings(state_dir=tmp_path, kafka_security_protocol="SASL_SSL"), embedded)
