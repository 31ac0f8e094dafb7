"""`issuance consume`: the bureau-side consumer of the banks' activation results."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.common import command, console, load_settings, print_json
from consumers.loop import stop_on_sigterm
from consumers.serve import consume_results
from issuance.services.endpoints import resolve


@command
def consume(
    ctx: typer.Context,
    until_idle: Annotated[
        float | None,
        typer.Option("--until-idle", help="Stop after this many seconds without a result.", min=0),
    ] = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", help="Most records per batch (one commit each).", min=1)
    ] = 1_000,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON document.")] = False,
) -> None:
    """Apply the banks' answers and the branches' card events until idle or SIGTERM; publish the decisions."""
    settings = load_settings(ctx)
    endpoints = resolve(settings)
    with stop_on_sigterm() as stop:
        if not as_json:
            console.print(
                "applying activation results"
                + (f" until idle for {until_idle:g}s" if until_idle is not None else " (Ctrl-C stops)")
            )
        stats = consume_results(settings, endpoints, until_idle, stop, batch_size)
    if as_json:
        print_json(stats)
        return
    typer.echo(
        f"{stats['results']} results: {stats['active']} active, {stats['failed']} failed "
        f"({stats['final_failures']} final), {stats['duplicates']} duplicates, {stats['stale']} stale, "
        f"{stats['dead_lettered']} dead-lettered; {stats['published']} events published"
    )
    cards = stats["card_events"]
    typer.echo(
        f"{cards['events']} card events: {cards['received']} received, {cards['collected']} collected, "
        f"{cards['duplicates']} duplicates, {cards['not_allowed']} not allowed (dead-lettered)"
    )


def register(app: typer.Typer) -> None:
    """Add the `consume` command."""
    app.command("consume")(consume)
