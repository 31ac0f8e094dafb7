"""Where the broker and the database are: configured servers first, else the embedded ones."""

from __future__ import annotations

import re
from dataclasses import dataclass

from issuance.errors import ConfigurationError, ServicesNotRunning
from issuance.kafka.client_config import PLAINTEXT, KafkaClientConfig
from issuance.services.embedded import running
from issuance.settings import Settings

_URI_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@?#]*:)(?P<secret>[^@/?#]*)(?P<tail>@)", re.I)
_PARAM_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?P<secret>'(?:[^'\\]|\\.)*'|[^\s&]+)", re.I)


@dataclass(frozen=True)
class Endpoints:
    """The addresses every client connects to (for Kafka, with how to connect)."""

    kafka: KafkaClientConfig
    database_url: str

    @property
    def kafka_bootstrap(self) -> str:
        """The broker's address, for messages and output."""
        return self.kafka.bootstrap


def mask_url(url: str) -> str:
    """The URL or conninfo with any password replaced by ***, safe for logs and output."""
    masked = _URI_PASSWORD.sub(lambda m: f"{m['head']}***{m['tail']}" if m["secret"] else m[0], url)
    return _PARAM_PASSWORD.sub(lambda m: f"{m['head']}***", masked)


def resolve(settings: Settings) -> Endpoints:
    """Configured servers (ISSUANCE_KAFKA_BOOTSTRAP, ISSUANCE_DATABASE_URL), else the embedded ones."""
    bootstrap = settings.kafka_bootstrap
    database_url = settings.database_url.get_secret_value() if settings.database_url is not None else None
    if bootstrap is None or database_url is None:
        embedded = running(settings.state_dir)
        bootstrap = bootstrap or embedded.kafka_bootstrap
        database_url = database_url or embedded.database_url
    if bootstrap is None or database_url is None:
        missing = " and ".join(
            name for name, value in (("Kafka", bootstrap), ("PostgreSQL", database_url)) if value is None
        )
        raise ServicesNotRunning(
            f"{missing} not available: run `issuance dev up` (state in {settings.state_dir}), "
            "or set ISSUANCE_KAFKA_BOOTSTRAP and ISSUANCE_DATABASE_URL"
        )
    return Endpoints(kafka_config(settings, bootstrap), database_url)


def resolve_kafka(settings: Settings) -> KafkaClientConfig:
    """The Kafka half of `resolve`, for clients that need no database (a branch submitting records)."""
    bootstrap = settings.kafka_bootstrap or running(settings.state_dir).kafka_bootstrap
    if bootstrap is None:
        raise ServicesNotRunning(
            f"Kafka not available: run `issuance dev up` (state in {settings.state_dir}), "
            "or set ISSUANCE_KAFKA_BOOTSTRAP"
        )
    return kafka_config(settings, bootstrap)


def kafka_config(settings: Settings, bootstrap: str) -> KafkaClientConfig:
    """The configured broker with the configured security options; the embedded one in PLAINTEXT."""
    if settings.kafka_bootstrap is not None:
        return KafkaClientConfig.from_settings(settings)
    if settings.kafka_security_protocol != PLAINTEXT:
        raise ConfigurationError(
            f"ISSUANCE_KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol} needs"
            " ISSUANCE_KAFKA_BOOTSTRAP: the embedded broker speaks PLAINTEXT on loopback only"
        )
    return KafkaClientConfig.plaintext(bootstrap)
