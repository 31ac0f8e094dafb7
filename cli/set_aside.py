"""`issuance set-aside`: the outgoing events the broker would not take, listed and sent again after a fix."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer

from cli.common import OperatorOption, command, load_settings, operator_identity, print_json
from issuance.crypto import Vault
from issuance.errors import InputError
from issuance.kafka.outbox_relay import publish_outbox
from issuance.kafka.outbox_signing import RelayTrust
from issuance.services.endpoints import resolve
from issuance.store.audit import record_action
from issuance.store.db import connect
from issuance.store.outbox_queries import release_set_aside, set_aside_count, set_aside_events
from issuance.store.roles import OPERATOR, in_role

set_aside_app = typer.Typer(
    help="Events set aside because the broker would not take them (too large, or refused).",
    no_args_is_help=True,
)


@set_aside_app.command("list")
@command
def list_events(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", help="Newest N events.", min=1)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON document.")] = False,
) -> None:
    """List the events set aside (never their payloads)."""
    endpoints = in_role(resolve(load_settings(ctx)), OPERATOR)
    with connect(endpoints.database_url, autocommit=True, application_name="issuance-set-aside") as conn:
        events = set_aside_events(conn, limit)
    if as_json:
        print_json([asdict(e) for e in events])
        return
    if not events:
        typer.echo("no events set aside")
    for e in events:
        typer.echo(f"{e.event_id}  {e.event_type} to {e.topic}  run {e.run_id}  {e.size:,} bytes  {e.reason}")


@set_aside_app.command("retry")
@command
def retry(
    ctx: typer.Context,
    event_ids: Annotated[list[str], typer.Argument(help="Event ids from `issuance set-aside list`.")],
    operator: OperatorOption,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON document.")] = False,
) -> None:
    """Send set-aside events again (after the broker's limit was raised); one still refused is set aside."""
    who = operator_identity(operator)
    settings = load_settings(ctx)
    endpoints = in_role(resolve(settings), OPERATOR)
    with connect(endpoints.database_url, application_name="issuance-set-aside") as conn:
        released = release_set_aside(conn, list(event_ids))
        unknown = sorted(set(event_ids) - set(released))
        if unknown:
            conn.rollback()
            raise InputError(f"not set aside (unknown, published, or already released): {', '.join(unknown)}")
        for event_id in released:
            record_action(
                conn, actor=who, action="outbox.retry_set_aside", entity="event", entity_id=event_id
            )
        conn.commit()
        sent = publish_outbox(
            conn,
            endpoints.kafka,
            Vault.from_settings(settings),
            endpoints.database_url,
            max_message_bytes=settings.max_message_bytes,
            trust=RelayTrust.load(conn, settings),
        )
        still = set_aside_count(conn)
    result = {"released": released, "published": sent, "set_aside": still}
    if as_json:
        print_json(result)
        return
    typer.echo(f"released {len(released)} events; published {sent}; {still} events set aside now")


def register(app: typer.Typer) -> None:
    """Add the `set-aside` command group."""
    app.add_typer(set_aside_app, name="set-aside")
