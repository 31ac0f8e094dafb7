"""How every Kafka client of the project connects: the broker address and the security options, in one place.

Every KafkaProducer, KafkaConsumer and KafkaAdminClient is built with `**config.client_kwargs()` so that a
deployment's TLS and SASL settings reach all of them; tests/unit/test_kafka_clients_configured.py fails when a
client is constructed any other way. The options are validated here, before any connection is tried, so that
a half-configured deployment stops with a message naming the variable to set instead of talking in clear.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from issuance.errors import ConfigurationError
from issuance.settings import Settings

PLAINTEXT = "PLAINTEXT"
SSL_PROTOCOLS = frozenset({"SSL", "SASL_SSL"})
SASL_PROTOCOLS = frozenset({"SASL_PLAINTEXT", "SASL_SSL"})


@dataclass(frozen=True)
class KafkaClientConfig:
    """The bootstrap address and the validated kafka-python security keyword arguments.

    Frozen and picklable: Beam ships it to its workers and the outbox relay to its processes. Its repr names
    the address and the protocol only; the options may hold a password.
    """

    bootstrap: str
    options: tuple[tuple[str, Any], ...] = field(default=(), repr=False)

    @classmethod
    def plaintext(cls, bootstrap: str) -> KafkaClientConfig:
        """The embedded broker (tansu on loopback): no TLS, no SASL (see RUNBOOK.md, embedded broker)."""
        return cls(bootstrap, (("security_protocol", PLAINTEXT),))

    @classmethod
    def from_settings(cls, settings: Settings, bootstrap: str | None = None) -> KafkaClientConfig:
        """The configured broker (settings.kafka_bootstrap unless `bootstrap` is given) with the settings'
        security options."""
        address = bootstrap or settings.kafka_bootstrap
        if address is None:
            raise ConfigurationError("no Kafka broker configured: set ISSUANCE_KAFKA_BOOTSTRAP")
        return cls(address, tuple(sorted(client_options(settings).items())))

    @property
    def security_protocol(self) -> str:
        """PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."""
        return str(dict(self.options).get("security_protocol", PLAINTEXT))

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for KafkaProducer, KafkaConsumer and KafkaAdminClient."""
        return {"bootstrap_servers": self.bootstrap, **dict(self.options)}


def client_options(settings: Settings) -> dict[str, Any]:
    """The kafka-python security keyword arguments for the settings, or ConfigurationError when they are
    incomplete or contradict each other (fail closed: never fall back to a weaker connection)."""
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {"security_protocol": protocol}
    options.update(_ssl_options(settings) if protocol in SSL_PROTOCOLS else _no_ssl(settings))
    options.update(_sasl_options(settings) if protocol in SASL_PROTOCOLS else _no_sasl(settings))
    return options


def _ssl_options(settings: Settings) -> dict[str, Any]:
    protocol = settings.kafka_security_protocol
    if settings.kafka_ssl_cafile is None:
        raise ConfigurationError(
            f"ISSUANCE_KAFKA_SECURITY_PROTOCOL={protocol} needs ISSUANCE_KAFKA_SSL_CAFILE: the PEM file of"
            " the CA that signed the broker's certificate (the client trusts no other)"
        )
    if settings.kafka_ssl_keyfile is not None and settings.kafka_ssl_certfile is None:
        raise ConfigurationError(
            "ISSUANCE_KAFKA_SSL_KEYFILE is set without ISSUANCE_KAFKA_SSL_CERTFILE: a client key needs its"
            " certificate"
        )
    options: dict[str, Any] = {
        "ssl_cafile": _readable(settings.kafka_ssl_cafile, "ISSUANCE_KAFKA_SSL_CAFILE"),
        "ssl_check_hostname": settings.kafka_ssl_check_hostname,
    }
    if settings.kafka_ssl_certfile is not None:
        options["ssl_certfile"] = _readable(settings.kafka_ssl_certfile, "ISSUANCE_KAFKA_SSL_CERTFILE")
    if settings.kafka_ssl_keyfile is not None:
        options["ssl_keyfile"] = _readable(settings.kafka_ssl_keyfile, "ISSUANCE_KAFKA_SSL_KEYFILE")
    if settings.kafka_ssl_password is not None:
        options["ssl_password"] = settings.kafka_ssl_password.get_secret_value()
    return options


def _sasl_options(settings: Settings) -> dict[str, Any]:
    protocol = settings.kafka_security_protocol
    password = settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else ""
    missing = [
        name
        for name, value in (
            ("ISSUANCE_KAFKA_SASL_USERNAME", (settings.kafka_sasl_username or "").strip()),
            ("ISSUANCE_KAFKA_SASL_PASSWORD", password),
        )
        if not value
    ]
    if missing:
        raise ConfigurationError(
            f"ISSUANCE_KAFKA_SECURITY_PROTOCOL={protocol} needs {' and '.join(missing)}:"
            " the credentials of this service's Kafka principal"
        )
    if protocol == "SASL_PLAINTEXT" and settings.kafka_sasl_mechanism == "PLAIN":
        raise ConfigurationError(
            "ISSUANCE_KAFKA_SASL_MECHANISM=PLAIN over SASL_PLAINTEXT would send the password in clear: use"
            " SASL_SSL, or a SCRAM mechanism"
        )
    return {
        "sasl_mechanism": settings.kafka_sasl_mechanism,
        "sasl_plain_username": settings.kafka_sasl_username,
        "sasl_plain_password": password,
    }


def _no_ssl(settings: Settings) -> dict[str, Any]:
    """TLS files given with a protocol that does not use them: a deployment that meant TLS would otherwise
    talk in clear without noticing."""
    given = [
        name
        for name, value in (
            ("ISSUANCE_KAFKA_SSL_CAFILE", settings.kafka_ssl_cafile),
            ("ISSUANCE_KAFKA_SSL_CERTFILE", settings.kafka_ssl_certfile),
            ("ISSUANCE_KAFKA_SSL_KEYFILE", settings.kafka_ssl_keyfile),
        )
        if value is not None
    ]
    if given:
        raise ConfigurationError(
            f"{', '.join(given)} set, but ISSUANCE_KAFKA_SECURITY_PROTOCOL="
            f"{settings.kafka_security_protocol} does not use TLS: choose SSL or SASL_SSL"
        )
    return {}


def _no_sasl(settings: Settings) -> dict[str, Any]:
    """Credentials given with a protocol that does not send them: the same mistake as in `_no_ssl`."""
    if settings.kafka_sasl_username is not None or settings.kafka_sasl_password is not None:
        raise ConfigurationError(
            "ISSUANCE_KAFKA_SASL_USERNAME/PASSWORD set, but ISSUANCE_KAFKA_SECURITY_PROTOCOL="
            f"{settings.kafka_security_protocol} does not authenticate: choose SASL_SSL"
        )
    return {}


def _readable(path: Path, variable: str) -> str:
    """The path as text when it names a readable file; else ConfigurationError naming the variable."""
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise ConfigurationError(f"{variable}={path} cannot be read: {exc.strerror}") from exc
    return str(path)
