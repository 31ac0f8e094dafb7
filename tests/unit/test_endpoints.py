"""Endpoint resolution and password masking."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from issuance.errors import ServicesNotRunning
from issuance.kafka.client_config import KafkaClientConfig
from issuance.services.endpoints import Endpoints, mask_url, resolve
from issuance.settings import Settings


def test_configured_servers_win(tmp_path: Path) -> None:
    settings = Settings(
        kafka_bootstrap="kafka:9092", database_url=SecretStr("postgresql://u:p@db/x"), state_dir=tmp_path
    )
    found = resolve(settings)
    assert found == Endpoints(KafkaClientConfig.from_settings(settings), "postgresql://u:p@db/x")
    assert found.kafka_bootstrap == "kafka:9092" and found.kafka.security_protocol == "PLAINTEXT"


def test_nothing_running_tells_how_to_start(tmp_path: Path) -> None:
    with pytest.raises(ServicesNotRunning, match=r"issuance dev up.*ISSUANCE_KAFKA_BOOTSTRAP"):
        resolve(Settings(state_dir=tmp_path))


def test_one_configured_server_still_needs_the_other(tmp_path: Path) -> None:
    with pytest.raises(ServicesNotRunning, match=r"^PostgreSQL not available"):
        resolve(Settings(kafka_bootstrap="kafka:9092", state_dir=tmp_path))


def test_a_corrupt_state_file_counts_as_not_running(tmp_path: Path) -> None:
    (tmp_path / "services.json").write_text("{not json")
    with pytest.raises(ServicesNotRunning):
        resolve(Settings(state_dir=tmp_path))


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://app:secret@db:5432/x", "postgresql://app:***@db:5432/x"),
        ("postgresql://app@db/x", "postgresql://app@db/x"),
        ("postgresql://postgres:@/x?host=/tmp/s", "postgresql://postgres:@/x?host=/tmp/s"),
        ("host=db user=app password=secret dbname=x", "host=db user=app password=*** dbname=x"),
        (
            "postgresql://db/x?password=secret&sslmode=require",
            "postgresql://db/x?password=***&sslmode=require",
        ),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked
