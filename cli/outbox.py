"""`issuance outbox republish`: send published events again with their original event ids, audited."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from cli.common import OperatorOption, command, load_settings, operator_identity, print_json
from issuance.crypto import Vault
from issuance.errors import InputError
from issuance.kafka.republish import Republished, republish
from issuance.kafka.topics import Topics
from issuance.services.endpoints import resolve
from issuance.store.db import connect
from issuance.store.migrate import ensure_current
from issuance.store.outbox_repo import Selection
from issuance.store.roles import OPERATOR, in_role

outbox_app = typer.Typer(help="The outbox of events for the banks, the branches and the operators.")


def _instant(option: str, value: str | None) -> datetime | None:
    """An ISO-8601 instant with its offset, or InputError naming the option."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InputError(
            f"{option} {value!r} is not an ISO-8601 time (e.g. 2026-11-29T22:00:00+08:00)"
        ) from exc
    if parsed.tzinfo is None:
        raise InputError(f"{option} {value!r} needs a UTC offset (e.g. +08:00)")
    return parsed


def _topic_names(ctx: typer.Context, topics: list[str]) -> tuple[str, ...]:
    """Topic names as given, or with the configured prefix when given without it."""
    prefix = Topics(load_settings(ctx)).prefix
    return tuple(t if not prefix or t.startswith(prefix) else prefix + t for t in topics)


def _print(done: Republished) -> None:
    for topic, events in sorted(done.as_dict()["by_topic"].items()):
        typer.echo(f"  {topic}: {events:,}")
    if not done.applied:
        typer.echo(
            f"{done.chosen.events:,} published events chosen; nothing sent: run again with --yes to send"
        )
    else:
        typer.echo(
            f"{done.chosen.events:,} events re-opened and recorded in the audit log;"
            f" the relay sent {done.sent:,}"
        )


@outbox_app.command("republish")
@command
def republish_command(
    ctx: typer.Context,
    operator: OperatorOption,
    run: Annotated[int | None, typer.Option("--run", help="Events written by this nightly run.")] = None,
    topic: Annotated[
        list[str] | None, typer.Option("--topic", help="Events of this topic (repeatable; prefix optional).")
    ] = None,
    published_since: Annotated[
        str | None, typer.Option("--published-since", help="Events published at or after this ISO-8601 time.")
    ] = None,
    published_until: Annotated[
        str | None, typer.Option("--published-until", help="Events published before this ISO-8601 time.")
    ] = None,
    unanswered_after_hours: Annotated[
        float | None,
        typer.Option(
            "--unanswered-after-hours",
            min=0,
            help="Activation requests whose application still waits for the bank's answer this many hours"
            " after they were published.",
        ),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Send them (without it: count only).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Send published events again with their original event ids (every criterion given must hold).

    Without --yes it counts the chosen events per topic and sends nothing. The consumers apply each event id
    once, so a repeat changes nothing they already applied."""
    actor = operator_identity(operator)
    settings = load_settings(ctx)
    selection = Selection(
        run_id=run,
        topics=_topic_names(ctx, topic or []),
        published_since=_instant("--published-since", published_since),
        published_until=_instant("--published-until", published_until),
        unanswered_after_hours=unanswered_after_hours,
    )
    endpoints = in_role(resolve(settings), OPERATOR)
    with connect(endpoints.database_url, application_name="issuance-outbox") as conn:
        ensure_current(conn)
        conn.commit()
        done = republish(
            conn, settings, endpoints, Vault.from_settings(settings), selection, actor=actor, apply=yes
        )
    if as_json:
        print_json(done.as_dict())
    else:
        _print(done)


def register(app: typer.Typer) -> None:
    """Add the `outbox` command group."""
    app.add_typer(outbox_app, name="outbox", no_args_is_help=True)
