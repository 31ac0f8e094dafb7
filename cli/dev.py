"""`issuance dev up|down|status|certs|partners`: the embedded broker and PostgreSQL for development, demos and
tests, development certificates for the compose broker, and keys for simulated partners."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated

import psycopg
import typer

from cli.common import EXIT_FAILURE, OperatorOption, command, load_settings, print_json
from issuance.errors import BrokerUnavailable, ConfigurationError
from issuance.kafka.client_config import KafkaClientConfig
from issuance.kafka.dev_certs import DEFAULT_BROKER_HOSTS, write_development_tls
from issuance.kafka.dev_passwords import write_passwords
from issuance.services import embedded
from issuance.services.broker import probe_kafka
from issuance.services.embedded import ServiceChange
from issuance.services.endpoints import mask_url, resolve
from issuance.services.postgres import probe_database
from issuance.settings import Settings
from issuance.store.db import connect
from issuance.store.party_keys_repo import provision_simulated_partners, reference_parties
from producers.catalog import BANK_CODES

StateDirOption = Annotated[
    Path | None,
    typer.Option(
        "--state-dir", help="Where the services keep data, logs and services.json [default: .issuance]."
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print a JSON document.")]

dev_app = typer.Typer(
    help="Start, stop and inspect the embedded broker and PostgreSQL.", no_args_is_help=True
)


@dataclass(frozen=True)
class ServiceHealth:
    """One service as `dev status` reports it."""

    name: str
    source: str
    address: str | None
    healthy: bool
    detail: str


def _settings(ctx: typer.Context, state_dir: Path | None) -> Settings:
    """The settings, with --state-dir taking precedence over ISSUANCE_STATE_DIR."""
    settings = load_settings(ctx)
    return settings if state_dir is None else settings.model_copy(update={"state_dir": state_dir})


def _report(changes: list[ServiceChange], as_json: bool) -> None:
    """Print what up/down did."""
    if as_json:
        print_json(
            {change.name: {"outcome": change.outcome, "address": change.address} for change in changes}
        )
        return
    for change in changes:
        where = f" at {mask_url(change.address)}" if change.address else ""
        typer.echo(f"{change.name}: {change.outcome}{where}")


@dev_app.command("up")
@command
def up(ctx: typer.Context, state_dir: StateDirOption = None, as_json: JsonOption = False) -> None:
    """Start the embedded broker and PostgreSQL in the background (already running ones are kept)."""
    settings = _settings(ctx, state_dir)
    changes = embedded.up(settings.state_dir)
    _report(changes, as_json)
    if not as_json and any(c.name == "kafka" and c.outcome == embedded.STARTED for c in changes):
        # The embedded broker keeps topics in memory only: a fresh broker has none.
        typer.echo(f"logs in {settings.state_dir}; now run `issuance setup` to create the topics")


@dev_app.command("down")
@command
def down(ctx: typer.Context, state_dir: StateDirOption = None, as_json: JsonOption = False) -> None:
    """Stop the embedded services and wait until none of their processes is left; data stays."""
    settings = _settings(ctx, state_dir)
    _report(embedded.down(settings.state_dir), as_json)


def _kafka_health(settings: Settings, running: embedded.Embedded) -> ServiceHealth:
    """Probe Kafka with a metadata request."""
    source = "configured" if settings.kafka_bootstrap else "embedded"
    address = settings.kafka_bootstrap or running.kafka_bootstrap
    if address is None:
        return ServiceHealth("kafka", source, None, False, "not running: run `issuance dev up`")
    try:
        kafka = (
            KafkaClientConfig.from_settings(settings)
            if settings.kafka_bootstrap
            else KafkaClientConfig.plaintext(address)
        )
        topics = probe_kafka(kafka, timeout_ms=5000)
    except (BrokerUnavailable, ConfigurationError) as exc:
        return ServiceHealth("kafka", source, address, False, str(exc))
    detail = f"metadata ok over {kafka.security_protocol}, {len(topics)} topics"
    return ServiceHealth("kafka", source, address, True, detail)


def _postgres_health(settings: Settings, running: embedded.Embedded) -> ServiceHealth:
    """Probe PostgreSQL with SELECT 1."""
    configured = settings.database_url.get_secret_value() if settings.database_url is not None else None
    source = "configured" if configured else "embedded"
    url = configured or running.database_url
    if url is None:
        return ServiceHealth("postgres", source, None, False, "not running: run `issuance dev up`")
    try:
        probe_database(url)
    except psycopg.Error as exc:
        # libpq messages can echo the conninfo; mask before showing.
        return ServiceHealth("postgres", source, mask_url(url), False, mask_url(str(exc).strip()))
    return ServiceHealth("postgres", source, mask_url(url), True, "SELECT 1 ok")


@dev_app.command("status")
@command
def status(ctx: typer.Context, state_dir: StateDirOption = None, as_json: JsonOption = False) -> None:
    """Show each service's address and probe it (Kafka metadata, SELECT 1); exit 1 unless all are healthy."""
    settings = _settings(ctx, state_dir)
    running = embedded.running(settings.state_dir)
    services = [_kafka_health(settings, running), _postgres_health(settings, running)]
    if as_json:
        print_json({s.name: {k: v for k, v in asdict(s).items() if k != "name"} for s in services})
    else:
        for s in services:
            mark = "healthy" if s.healthy else "UNHEALTHY"
            typer.echo(f"{s.name} ({s.source}): {s.address or '-'}  {mark}  {s.detail}")
    if not all(s.healthy for s in services):
        raise typer.Exit(EXIT_FAILURE)


# The Kafka principals of docker-compose.yml (deploy/kafka/acls.sh grants each its topics): the broker
# itself, the administrator (topics, ACLs), the bureau's night, publisher and consumer, the branch gateway,
# and one per cooperating bank of the catalog.
COMPOSE_PRINCIPALS = (
    "broker",
    "admin",
    "nightly",
    "relay",
    "consumer",
    "branch-gateway",
    *(f"bank-{code.lower()}" for code in BANK_CODES),
)


@dev_app.command("certs")
@command
def certs(
    out: Annotated[
        Path, typer.Option("--out", help="Directory for the CA, the broker's certificate and key, kafka.env.")
    ],
    host: Annotated[
        list[str] | None,
        typer.Option("--host", help="A broker host name (repeatable) [default: kafka, localhost, 127.0.0.1]"),
    ] = None,
) -> None:
    """A development CA and broker certificate for docker-compose.yml, and passwords for its principals.

    An existing CA and existing passwords are kept; the broker certificate is issued again. Not for
    production: a deployment brings its own CA and keeps its passwords in its secret store."""
    tls = write_development_tls(out, tuple(host or DEFAULT_BROKER_HOSTS))
    added = write_passwords(out / "kafka.env", COMPOSE_PRINCIPALS)
    typer.echo(f"CA {'created' if tls.ca_created else 'kept'}: {tls.ca_cert}")
    typer.echo(f"broker certificate for {', '.join(tls.broker_hosts)}: {tls.broker_keystore} (key mode 0600)")
    typer.echo(f"{len(added)} Kafka passwords added to {out / 'kafka.env'} (existing ones kept)")


@dev_app.command("partners")
@command
def partners(ctx: typer.Context, operator: OperatorOption, as_json: JsonOption = False) -> None:
    """Keys for the simulated partners of the loaded reference data: every branch, bank and vendor gets a key
    file in ISSUANCE_KEYS_DIR/parties (an existing one kept) and its public keys registered (audited).

    For simulations only (the demo, a test bed): a real partner generates its own keys on its own machine and
    hands over only its public keys (`issuance keys export-public` there, `issuance keys register` here). With
    the embedded services `issuance setup` and `reference load` do this already."""
    settings = load_settings(ctx)
    with connect(resolve(settings).database_url, application_name="issuance-dev-partners") as conn:
        parties = reference_parties(conn)
        provision_simulated_partners(settings, conn, parties, actor=operator)
    if as_json:
        print_json({"simulated_parties_with_keys": sorted(str(p) for p in parties)})
    else:
        typer.echo(f"{len(parties)} simulated partners have keys in {settings.keys_dir / 'parties'}")


def register(app: typer.Typer) -> None:
    """Add the `dev` command group."""
    app.add_typer(dev_app, name="dev")
