"""`issuance bank serve`: the simulated cooperating banks answering account openings and activations."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.common import command, console, load_settings, print_json
from consumers.bank_simulator import FailurePolicy
from consumers.loop import stop_on_sigterm
from consumers.serve import serve_banks
from issuance.errors import InputError
from issuance.services.endpoints import resolve

bank_app = typer.Typer(
    help="The bank-side simulator (reference for real bank integrations).", no_args_is_help=True
)


@bank_app.command("serve")
@command
def serve(
    ctx: typer.Context,
    bank: Annotated[list[str] | None, typer.Option("--bank", help="Serve this bank (repeatable).")] = None,
    all_banks: Annotated[bool, typer.Option("--all", help="Serve every bank of the reference data.")] = False,
    until_idle: Annotated[
        float | None,
        typer.Option("--until-idle", help="Stop after this many seconds without a request.", min=0),
    ] = None,
    fail_rate: Annotated[
        float,
        typer.Option("--fail-rate", help="Share of requests answered with a failure (0..1).", min=0, max=1),
    ] = 0.0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the injected failures.")] = 0,
    batch_size: Annotated[
        int, typer.Option("--batch-size", help="Most records per batch (one commit each).", min=1)
    ] = 1_000,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON document.")] = False,
) -> None:
    """Answer the banks' requests until idle or SIGTERM: open accounts numbered by the bank, activate them."""
    if all_banks == bool(bank):
        raise InputError("give either --bank CODE or --all")
    settings = load_settings(ctx)
    endpoints = resolve(settings)
    with stop_on_sigterm() as stop:
        if not as_json:
            console.print(
                f"serving {'every bank' if all_banks else ', '.join(bank or [])}"
                + (f" until idle for {until_idle:g}s" if until_idle is not None else " (Ctrl-C stops)")
            )
        stats = serve_banks(
            settings,
            endpoints,
            None if all_banks else bank,
            FailurePolicy(fail_rate, seed),
            until_idle,
            stop,
            batch_size,
        )
    if as_json:
        print_json(stats)
        return
    for code, s in sorted(stats.items()):
        typer.echo(
            f"bank {code}: {s['requests']} requests; accounts {s['opened']} opened, {s['refused']} refused;"
            f" activations {s['activated']} completed, {s['failed']} failed; {s['repeated']} repeated,"
            f" {s['unreadable']} unreadable"
        )


def register(app: typer.Typer) -> None:
    """Add the `bank` command group."""
    app.add_typer(bank_app, name="bank")
