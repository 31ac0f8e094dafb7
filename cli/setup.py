"""`issuance setup`: apply the database migrations and create every topic; safe to run again at any time."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.common import command, load_settings, print_json
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
    """Apply database migrations and create the topics (one activation-request topic per known bank)."""
    settings = load_settings(ctx)
    endpoints = resolve(settings)
    migrations = apply_migrations(endpoints.database_url)
    banks = bank_codes(endpoints.database_url)
    created = ensure_topics(endpoints.kafka, settings, banks)
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


def register(app: typer.Typer) -> None:
    """Add the `setup` command."""
    app.command("setup")(setup)
