"""`issuance setup`: apply the database migrations and create every topic; safe to run again at any time."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.common import command, load_settings, print_json
from cli.keys import provision_embedded, system_actor
from issuance.kafka.topics import ensure_topics, planned_topics
from issuance.services.endpoints import mask_url, resolve
from issuance.store.db import connect
from issuance.store.migrate import apply_migrations


def bank_codes(conninfo: str) -> list[str]:
    """The codes of every bank in the reference data (each gets its activation-request topic)."""
    with connect(conninfo, autocommit=True, application_name="issuance-setup") as conn:
        rows = conn.execute("SELECT bank_code FROM banks ORDER BY bank_code").fetchall()
    return [str(code) for (code,) in rows]


@command
def setup(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON document.")] = False,
) -> None:
    """Apply database migrations and create the topics (one activation-request topic per known bank); with
    the embedded services, also key files for the bureau and the simulated partners, registered."""
    settings = load_settings(ctx)
    endpoints = resolve(settings)
    migrations = apply_migrations(endpoints.database_url)
    banks = bank_codes(endpoints.database_url)
    with connect(endpoints.database_url, application_name="issuance-setup") as conn:
        provisioned = provision_embedded(settings, conn, actor=system_actor())
    created = ensure_topics(endpoints.kafka_bootstrap, settings, banks)
    topics = sorted(planned_topics(settings, banks))
    if as_json:
        print_json(
            {
                "database": mask_url(endpoints.database_url),
                "kafka": endpoints.kafka_bootstrap,
                "migrations_applied": migrations,
                "topics_created": created,
                "topics_existing": [t for t in topics if t not in created],
                "banks": banks,
                "simulated_parties_with_keys": provisioned,
            }
        )
        return
    typer.echo(
        f"database {mask_url(endpoints.database_url)}: "
        + (f"applied {', '.join(migrations)}" if migrations else "schema up to date")
    )
    typer.echo(
        f"kafka {endpoints.kafka_bootstrap}: created {len(created)} topics, "
        f"{len(topics) - len(created)} already existed ({len(banks)} banks)"
    )
    for name in created:
        typer.echo(f"  + {name}")
    if provisioned is not None:
        typer.echo(f"keys {settings.keys_dir}: {provisioned} simulated parties (bureau included) registered")


def register(app: typer.Typer) -> None:
    """Add the `setup` command."""
    app.command("setup")(setup)
