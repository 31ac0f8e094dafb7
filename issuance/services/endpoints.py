"""Where the broker and the database are: configured servers first, else the embedded ones."""

from __future__ import annotations

import re
from dataclasses import dataclass

from issuance.errors import ServicesNotRunning
from issuance.services.embedded import running
from issuance.settings import Settings

_URI_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@?#]*:)(?P<secret>[^@/?#]*)(?P<tail>@)", re.I)
_PARAM_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?P<secret>'(?:[^'\\]|\\.)*'|[^\s&]+)", re.I)


@dataclass(frozen=True)
class Endpoints:
    """The addresses every client connects to."""

    kafka_bootstrap: str
    database_url: str


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
    return Endpoints(kafka_bootstrap=bootstrap, database_url=database_url)
