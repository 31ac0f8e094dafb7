"""`issuance consume`: the bureau's consumers (the banks' answers, ...), one process and one group."""

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
    """Apply the banks' answers to applications and cards until idle or SIGTERM; publish branch decisions."""
    settings = load_settings(ctx)
    endpoints = resolve(settings)
    with stop_on_sigterm() as stop:
        if not as_json:
            console.print(
                "applying the banks' answers"
                + (f" until idle for {until_idle:g}s" if until_idle is not None else " (Ctrl-C stops)")
            )
        stats = consume_results(settings, endpoints, until_idle, stop, batch_size)
    if as_json:
        print_json(stats)
        return
    for name, s in stats.items():
        if isinstance(s, dict):
            typer.echo(
                f"{name}: " + ", ".join(f"{value} {key.replace('_', ' ')}" for key, value in s.items())
            )
    typer.echo(f"{stats['published']} events published")


def register(app: typer.Typer) -> None:
    """Add the `consume` command."""
    app.command("consume")(consume)
