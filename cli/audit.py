"""`issuance audit verify|show`: is the audit log as it was written, and what does it say."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

import typer

from cli.common import command, load_settings, print_json
from issuance.errors import InputError
from issuance.services.endpoints import resolve
from issuance.store import audit, audit_chain
from issuance.store.db import connect
from issuance.store.migrate import ensure_current
from issuance.store.roles import OPERATOR

audit_app = typer.Typer(help="The audit log: verify its hash chain, list its entries.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]


@audit_app.command("verify")
@command
def verify(
    ctx: typer.Context,
    expect_head: Annotated[
        str | None,
        typer.Option(
            "--expect-head",
            metavar="SEQ:HASH",
            help="A head printed by an earlier verify and kept elsewhere: finds rows removed from the end.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Recompute the hash chain; name every altered, removed or inserted row; exit 1 when any is found.

    Prints the head (sequence and hash of the newest row): keep it outside the database and give it back
    with --expect-head next time."""
    expect = audit_chain.Head.parse(expect_head) if expect_head is not None else None
    settings = load_settings(ctx)
    with connect(resolve(settings).database_url, role=OPERATOR, application_name="issuance-audit") as conn:
        ensure_current(conn)
        conn.commit()
        verdict = audit_chain.verify(conn, expect)
    if as_json:
        print_json(verdict.as_dict())
    else:
        for problem in verdict.problems:
            typer.echo(f"seq {problem.seq}: {problem.kind}: {problem.detail}")
        state = "intact" if verdict.ok else f"NOT intact ({len(verdict.problems)} problem(s))"
        typer.echo(f"audit log {state}: {verdict.rows:,} rows; head {verdict.head}")
    if not verdict.ok:
        raise typer.Exit(1)


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        since = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InputError(f"--since: not an ISO-8601 date or time: {value!r}") from exc
    if since.tzinfo is None:
        raise InputError("--since: give a time zone (e.g. 2026-11-30T08:00+08:00)")
    return since


@audit_app.command("show")
@command
def show(
    ctx: typer.Context,
    since: Annotated[
        str | None, typer.Option("--since", help="Entries at or after this ISO-8601 time (with zone).")
    ] = None,
    actor: Annotated[str | None, typer.Option("--actor", help="Entries of this actor only.")] = None,
    action: Annotated[
        str | None, typer.Option("--action", help="Entries of this action (`dead_letter.*`: a prefix).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100_000, help="The newest N entries.")] = 100,
    as_json: JsonOption = False,
) -> None:
    """List the newest entries of the audit log (oldest of them first)."""
    settings = load_settings(ctx)
    with connect(resolve(settings).database_url, role=OPERATOR, application_name="issuance-audit") as conn:
        ensure_current(conn)
        found = audit.entries(conn, since=_since(since), actor=actor, action=action, limit=limit)
    if as_json:
        print_json(
            [
                {
                    "seq": e.seq,
                    "at": e.at.isoformat(),
                    "actor": e.actor,
                    "action": e.action,
                    "entity": e.entity,
                    "entity_id": e.entity_id,
                    "detail": e.detail,
                }
                for e in found
            ]
        )
        return
    if not found:
        typer.echo("no entries")
    for e in found:
        detail = json.dumps(e.detail, sort_keys=True, ensure_ascii=False) if e.detail else ""
        typer.echo(
            f"{e.seq:>8}  {e.at.isoformat(timespec='seconds')}  {e.actor}  {e.action}  "
            f"{e.entity}:{e.entity_id}  {detail}".rstrip()
        )


def register(app: typer.Typer) -> None:
    """Add the `audit` command group."""
    app.add_typer(audit_app, name="audit")
