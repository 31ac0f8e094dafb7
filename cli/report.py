"""`issuance report`: counts by state, reason, branch, bank and nightly run, for the bureau."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli.common import command, load_settings, print_json
from issuance.services.endpoints import resolve
from issuance.store import report_queries as rq
from issuance.store import status_queries as q
from issuance.store.db import connect
from issuance.store.outbox_queries import set_aside_events

SHOWN_STATES = ("ACTIVE", "ACTIVATION_REQUESTED", "ACTIVATION_FAILED", "AWAITING_AGREEMENT", "REJECTED")
COLUMN_LABELS = ("active", "at bank", "failed", "awaiting", "rejected")


def gather(conn: q.Conn) -> dict[str, Any]:
    """Every count the report shows, as one JSON-ready document."""
    scope = rq.Scope.everything()
    by_run = rq.counts_by(conn, "first_run_id", scope)
    dead = conn.execute("SELECT reason, count(*) FROM dead_letters GROUP BY 1 ORDER BY 1").fetchall()
    return {
        "by_state": rq.counts_by_state(conn, scope),
        "by_reason": rq.counts_by_reason(conn, scope),
        "by_branch": rq.counts_by(conn, "branch_code", scope),
        "by_bank": rq.counts_by(conn, "bank_code", scope),
        "activation_failures": q.activation_failures(conn),
        "dead_letters": {str(r[0]): int(r[1]) for r in dead},
        "events_set_aside": [
            {
                "event_id": e.event_id,
                "event_type": e.event_type,
                "topic": e.topic,
                "run_id": e.run_id,
                "size": e.size,
                "set_aside_at": e.set_aside_at.isoformat(),
                "reason": e.reason,
            }
            for e in set_aside_events(conn)
        ],
        "runs": [
            {
                "run_id": r.run_id,
                "business_date": r.business_date.isoformat(),
                "status": r.status,
                "records_read": r.records_read,
                "balanced": r.balanced,
                "first_seen_by_state": by_run.get(str(r.run_id), {}),
            }
            for r in q.runs(conn)
        ],
    }


def _row(name: str, counts: dict[str, int]) -> str:
    cells = "".join(f"{counts.get(s, 0):>13,}" for s in SHOWN_STATES)
    return f"  {name:<22}{cells}{sum(counts.values()):>10,}"


def _print(report: dict[str, Any]) -> None:
    total = sum(report["by_state"].values())
    typer.echo(f"applications: {total:,}")
    for state, n in report["by_state"].items():
        if n:
            typer.echo(f"  {state:<22}{n:>10,}")
    if report["by_reason"]:
        typer.echo("rejected by reason (an application may have several)")
        for reason, n in report["by_reason"].items():
            typer.echo(f"  {reason:<26}{n:>10,}")
    if report["activation_failures"]:
        typer.echo("activation failed by bank reason")
        for reason, n in report["activation_failures"].items():
            typer.echo(f"  {reason:<26}{n:>10,}")
    header = "".join(f"{label:>13}" for label in COLUMN_LABELS)
    for title, key in (("by branch", "by_branch"), ("by bank", "by_bank")):
        typer.echo(f"{title:<24}{header}{'total':>10}")
        for name, counts in report[key].items():
            typer.echo(_row(name, counts))
    if report["dead_letters"]:
        typer.echo("dead letters: " + ", ".join(f"{k} {v:,}" for k, v in report["dead_letters"].items()))
    if report["events_set_aside"]:
        typer.echo("events set aside, never published (the broker will not take them; see RUNBOOK.md)")
        for e in report["events_set_aside"]:
            typer.echo(f"  {e['event_type']:<22} {e['event_id']}  run {e['run_id']}  {e['reason']}")
    typer.echo("runs")
    for run in report["runs"]:
        balanced = {True: "balanced", False: "NOT BALANCED", None: "not reconciled"}[run["balanced"]]
        typer.echo(
            f"  run {run['run_id']:<4} {run['business_date']}  {run['status']:<10}"
            f" {run['records_read']:>10,} read  {balanced}"
        )


@command
def report(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON document.")] = False,
) -> None:
    """Counts by state, rejection reason, branch, bank and run (with each run's reconciliation)."""
    settings = load_settings(ctx)
    endpoints = resolve(settings)
    with connect(endpoints.database_url, autocommit=True, application_name="issuance-report") as conn:
        document = gather(conn)
    if as_json:
        print_json(document)
    else:
        _print(document)


def register(app: typer.Typer) -> None:
    """Add the `report` command."""
    app.command("report")(report)
