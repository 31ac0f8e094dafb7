"""`issuance checkpoints show|rebaseline`: where the night reads next; recovery after broker state loss."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli.common import OperatorOption, command, load_settings, operator_identity, print_json
from issuance.kafka.client_config import KafkaClientConfig
from issuance.kafka.topics import Topics
from issuance.services.endpoints import resolve
from issuance.store.db import connect
from issuance.store.migrate import ensure_current
from issuance.store.roles import OPERATOR, in_role
from pipelines import rebaseline as mend
from pipelines.rebaseline import Review

checkpoints_app = typer.Typer(help="The nightly run's read checkpoints.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]


def _topics(ctx: typer.Context) -> tuple[str, KafkaClientConfig, list[str]]:
    settings = load_settings(ctx)
    endpoints = in_role(resolve(settings), OPERATOR)
    topics = Topics(settings)
    return endpoints.database_url, endpoints.kafka, [topics.applications, topics.agreements]


def _print(found: Review) -> None:
    out = Console(stderr=False, width=max(Console(stderr=False).width, 140))
    table = Table(title=f"Checkpoints against the broker (cluster {found.cluster_id or '-'})")
    for column in ("topic", "partition", "checkpoint", "log start", "end", "status"):
        table.add_column(column, justify="left" if column in ("topic", "status") else "right")
    for p in found.partitions:
        table.add_row(
            p.topic,
            str(p.partition),
            "-" if p.checkpoint is None else f"{p.checkpoint:,}",
            "-" if p.log_start is None else f"{p.log_start:,}",
            "-" if p.end is None else f"{p.end:,}",
            p.status,
        )
    out.print(table)
    run = found.run_in_flight
    if run is not None:
        lost = "its planned ranges are gone from the broker" if found.run_breaks else "its ranges are intact"
        out.print(
            f"run {run.run_id} is in flight ({'staged' if run.staged else 'not staged'}); {lost}",
            soft_wrap=True,
        )
    for step in found.steps:
        target = "drop (partition gone)" if step.next_offset is None else f"{step.next_offset:,}"
        out.print(
            f"re-baseline {step.topic} partition {step.partition}: {step.old_offset:,} -> {target}"
            f" ({step.readable:,} records for the next night; {step.why})",
            soft_wrap=True,
        )
    if found.abandons_run and run is not None:
        out.print(f"close run {run.run_id} as FAILED (nothing of it was applied)", soft_wrap=True)
    if found.refusal:
        out.print(f"cannot re-baseline now: {found.refusal}", soft_wrap=True)


@checkpoints_app.command("show")
@command
def show(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Each partition's checkpoint against the broker's log now, and any break (read only)."""
    database_url, bootstrap, topics = _topics(ctx)
    with connect(database_url, application_name="issuance-checkpoints") as conn:
        ensure_current(conn)
        found = mend.inspect(conn, bootstrap, topics)
    if as_json:
        print_json(found.as_dict() | {"rebaseline_needed": found.needed})
        return
    _print(found)
    if not found.needed:
        typer.echo("every checkpoint continues in the broker's log; nothing to re-baseline")


@checkpoints_app.command("rebaseline")
@command
def rebaseline(
    ctx: typer.Context,
    operator: OperatorOption,
    yes: Annotated[
        bool, typer.Option("--yes", help="Write the changes shown (without it: show only).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Point broken checkpoints at the log start of the broker's log now (nothing skipped); audited.

    Without --yes it only shows what it would do. Checkpoints that still continue are left alone; a run left
    in flight whose ranges are gone is closed as FAILED."""
    actor = operator_identity(operator)
    database_url, bootstrap, topics = _topics(ctx)
    with connect(database_url, application_name="issuance-checkpoints") as conn:
        ensure_current(conn)
        found = (
            mend.rebaseline(conn, bootstrap, topics, actor) if yes else mend.inspect(conn, bootstrap, topics)
        )
    if as_json:
        print_json(found.as_dict() | {"applied": yes and found.needed and not found.refusal})
        return
    _print(found)
    if not found.needed:
        typer.echo("every checkpoint continues in the broker's log; nothing to re-baseline")
    elif yes:
        typer.echo(f"re-baselined {len(found.steps)} checkpoint(s); recorded in the audit log as {actor}")
    else:
        typer.echo("nothing written: run again with --yes to apply")


def register(app: typer.Typer) -> None:
    """Add the `checkpoints` command group."""
    app.add_typer(checkpoints_app, name="checkpoints")
