"""`issuance branch simulate`: the branches and the card holders, simulated (for development and the demo)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer

from cli.common import command, console, load_settings, print_json
from consumers.loop import stop_on_sigterm
from issuance.errors import InputError
from issuance.services.endpoints import resolve
from producers.branch_simulator import BranchOptions, simulate

branch_app = typer.Typer(
    help="The branch-side simulator (receipts, collections, activations).", no_args_is_help=True
)


@branch_app.command("simulate")
@command
def simulate_command(
    ctx: typer.Context,
    collect_rate: Annotated[
        float,
        typer.Option(
            "--collect-rate",
            help="Share of the cards waiting at a branch collected now (0..1).",
            min=0,
            max=1,
        ),
    ] = 1.0,
    activate_rate: Annotated[
        float,
        typer.Option(
            "--activate-rate",
            help="Share of the cards collected now whose holder activates them (0..1).",
            min=0,
            max=1,
        ),
    ] = 1.0,
    until_idle: Annotated[
        float,
        typer.Option("--until-idle", help="Stop reading dispatches after this many idle seconds.", min=0),
    ] = 5.0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the collections and activations.")] = 0,
    day: Annotated[
        str | None,
        typer.Option(
            "--date",
            help="Business day the branches act on (YYYY-MM-DD; events and applications dated that day,"
            " 09:30 Asia/Shanghai). Default: now.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON document.")] = False,
) -> None:
    """Confirm the receipt of every dispatched card, collect a share of the cards waiting, and submit the
    holders' FINANCIAL_ACTIVATION applications with their agreements for a share of those collected now."""
    options = BranchOptions(collect_rate, activate_rate, until_idle, seed, day=_day(day))  # bad input first
    settings = load_settings(ctx)
    endpoints = resolve(settings)
    with stop_on_sigterm() as stop:
        if not as_json:
            console.print(f"reading card dispatches until idle for {until_idle:g}s")
        stats = simulate(settings, endpoints, options, stop)
    if as_json:
        print_json(stats)
        return
    typer.echo(
        f"run {stats['run_no']}: {stats['dispatches']} dispatches read, {stats['receipts']} receipts,"
        f" {stats['collections']} collections, {stats['activations']} activation applications sent"
        f" ({stats['resent']} re-sent from an earlier run, {stats['unreadable']} unreadable dispatches,"
        f" {stats['no_identity']} holders not found)"
    )


def _day(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InputError(f"--date {text[:40]!r} is not a date (YYYY-MM-DD)") from None


def register(app: typer.Typer) -> None:
    """Add the `branch` command group."""
    app.add_typer(branch_app, name="branch")
