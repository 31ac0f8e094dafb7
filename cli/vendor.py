"""`issuance vendor receive FILE` applies a card vendor's return file; `issuance vendor simulate` writes the
return files a vendor would (for development and the demo)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import OperatorOption, command, console, load_settings, operator_identity, print_json
from issuance.domain.vendor_return import (
    MAX_RETURN_FILE_BYTES,
    MAX_SIGNATURE_BYTES,
    parse_signature,
    signature_path,
)
from issuance.errors import InputError
from issuance.services.endpoints import resolve
from issuance.store import card_repo, party_keys_repo
from issuance.store.db import connect
from issuance.store.roles import OPERATOR, in_role
from issuance.trust.keystore import partner_keys
from issuance.trust.parties import vendor
from issuance.vendor_returns import ReceiveReport, receive_and_publish
from producers.vendor_simulator import simulate_files

vendor_app = typer.Typer(help="The card vendors' return files (制卡回盘).", no_args_is_help=True)
MAX_REFUSED_SHOWN = 50


@vendor_app.command("receive")
@command
def receive_command(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The vendor's return file (<VENDOR>.return.jsonl).")],
    operator: OperatorOption = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON document.")] = False,
) -> None:
    """Apply a return file once: produced cards dispatched, failed ones made again or failed (exit 2: not
    signed by its vendor (<file>.sig), too large, or its header does not match the vendor file; nothing
    applied)."""
    who = operator_identity(operator)
    data = read_bounded(file, MAX_RETURN_FILE_BYTES, "return file")
    sig = signature_path(file)
    signature = parse_signature(read_bounded(sig, MAX_SIGNATURE_BYTES, "signature")) if sig.exists() else None
    settings = load_settings(ctx)
    report, published = receive_and_publish(
        settings, in_role(resolve(settings), OPERATOR), data, who, signature
    )
    if as_json:
        print_json({**report.to_json(), "file": str(file), "published": published})
        return
    _print_receipt(file, report, published)


def read_bounded(path: Path, limit: int, what: str) -> bytes:
    """The file's bytes, refused before reading more than `limit` (InputError, exit 2)."""
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise InputError(f"cannot read {path} ({type(exc).__name__}): check the path") from exc
    if len(data) > limit:
        raise InputError(f"{path}: a {what} is at most {limit:,} bytes; this one is larger: nothing applied")
    return data


def _print_receipt(file: Path, report: ReceiveReport, published: int | None) -> None:
    where = f"run {report.run_id}, vendor {report.vendor_code}"
    if report.already_received:
        typer.echo(
            f"{file}: already received on {report.received_at:%Y-%m-%d %H:%M} by {report.received_by}"
            f" ({where}); nothing changed"
        )
        return
    typer.echo(
        f"{file} ({where}): {report.produced} produced and dispatched, {report.remade} failed and to be made"
        f" again, {report.failed_final} failed finally, {len(report.refused)} lines refused"
    )
    for refused in sorted(report.refused, key=lambda r: r.line)[:MAX_REFUSED_SHOWN]:
        typer.echo(f"  line {refused.line}: {refused.reason.value}")
    if len(report.refused) > MAX_REFUSED_SHOWN:
        typer.echo(f"  ... {len(report.refused) - MAX_REFUSED_SHOWN} more (see --json)")
    if report.waiting:
        typer.echo(f"{report.waiting} cards of this vendor file still wait for the vendor's answer")
    if published is None:
        console.print(
            "the broker did not answer: the dispatches and decisions stay queued; `issuance consume`"
            " or the next `issuance batch run` publishes them"
        )


@vendor_app.command("simulate")
@command
def simulate_command(
    ctx: typer.Context,
    run: Annotated[
        int | None,
        typer.Option(
            "--run", help="Answer this run's vendor files (default: every one not answered).", min=1
        ),
    ] = None,
    fail_rate: Annotated[
        float,
        typer.Option("--fail-rate", help="Share of cards the vendor fails to make (0..1).", min=0, max=1),
    ] = 0.0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the failures and chip serials.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON document.")] = False,
) -> None:
    """Write the return file a vendor would, next to each vendor file (<VENDOR>.return.jsonl)."""
    settings = load_settings(ctx)
    endpoints = in_role(resolve(settings), OPERATOR)
    root = Path(settings.personalization_dir)
    with connect(endpoints.database_url, autocommit=True, application_name="issuance-vendor") as conn:
        files = card_repo.vendor_files(conn, run)
        directory = party_keys_repo.load_directory(conn)  # the bureau's public keys, as the vendors hold them
    if run is not None and not files:
        raise InputError(f"run {run} wrote no vendor file: check --run (`issuance report` lists the runs)")
    written = simulate_files(
        root,
        files,
        fail_rate,
        seed,
        skip_written=run is None,
        directory=directory,
        keys_of=lambda code: partner_keys(settings, vendor(code)),
    )
    if as_json:
        print_json({"return_files": [w.to_json() for w in written]})
        return
    if not written:
        typer.echo("no vendor file waits for a return file")
    for w in written:
        typer.echo(f"{w.path}  ({w.produced} produced, {w.failed} failed)")


def register(app: typer.Typer) -> None:
    """Add the `vendor` command group."""
    app.add_typer(vendor_app, name="vendor")
