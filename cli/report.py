"""`issuance report`: the lifecycle funnel, the backlogs by age, the cards waiting too long at their branch,
and counts by state, reason, branch, bank and nightly run, for the bureau."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli.common import command, load_settings, print_json
from issuance.domain.lifecycle import ApplicationState
from issuance.services.endpoints import resolve
from issuance.store import report_queries as rq
from issuance.store import status_queries as q
from issuance.store.db import connect
from issuance.store.outbox_queries import set_aside_events
from issuance.store.roles import OPERATOR, in_role

SHOWN_STATES = tuple(
    s.value
    for s in (
        ApplicationState.COMPLETED,
        ApplicationState.ACCEPTED,
        ApplicationState.FAILED,
        ApplicationState.AWAITING_AGREEMENT,
        ApplicationState.REJECTED,
    )
)
COLUMN_LABELS = ("completed", "accepted", "failed", "awaiting", "rejected")


def reminders(conn: q.Conn, reminder_days: int) -> dict[str, Any]:
    """Cards at a branch longer than `reminder_days` days, per branch (for the branches to remind holders)."""
    late = rq.uncollected(conn, rq.Scope.everything(), reminder_days)
    return {
        "after_days": reminder_days,
        "cards": sum(r.cards for r in late),
        "branches": [
            {"branch_code": r.branch_code, "cards": r.cards, "oldest_days": r.oldest_days} for r in late
        ],
    }


def gather(conn: q.Conn, reminder_days: int) -> dict[str, Any]:
    """Every count the report shows, as one JSON-ready document (keys: README, "issuance report")."""
    scope = rq.Scope.everything()
    by_run = rq.counts_by(conn, "first_run_id", scope)
    dead = conn.execute("SELECT reason, count(*) FROM dead_letters GROUP BY 1 ORDER BY 1").fetchall()
    states = rq.state_counts(conn, scope)
    sides = rq.side_counts(conn, scope)
    return {
        "funnel": [
            {
                "step": f.key,
                "label": f.label,
                "reached": f.reached,
                "now": f.now,
                "of_previous": f.of_previous,
            }
            for f in rq.build_lifecycle_funnel(states, sides)
        ],
        "backlogs": [
            {
                "waiting_for": b.key,
                "label": b.label,
                "total": b.total,
                "oldest_days": b.oldest_days,
                "by_age": b.buckets,
                "parts": [
                    {"label": p.label, "total": p.total, "oldest_days": p.oldest_days, "by_age": p.buckets}
                    for p in b.parts
                ],
            }
            for b in rq.build_backlogs(sides, rq.ordered_with_account(conn, scope), rq.today(conn))
        ],
        "uncollected": reminders(conn, reminder_days),
        "by_state": rq.counts_by_state(conn, scope),
        "by_reason": rq.counts_by_reason(conn, scope),
        "by_branch": rq.counts_by(conn, "branch_code", scope),
        "by_bank": rq.counts_by(conn, "bank_code", scope),
        "failures": q.failures(conn, ApplicationState.FAILED.value),
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


def _print_reminders(late: dict[str, Any]) -> None:
    typer.echo(
        f"cards at the branch for more than {late['after_days']} days, not collected: {late['cards']:,}"
    )
    for b in late["branches"]:
        typer.echo(f"  {b['branch_code']:<22}{b['cards']:>10,}  oldest {b['oldest_days']} days")


def _print_lifecycle(report: dict[str, Any]) -> None:
    typer.echo(f"{'lifecycle':<24}{'reached':>10}{'now':>10}{'of previous':>13}")
    for f in report["funnel"]:
        share = f"{f['of_previous']:.1%}" if f["of_previous"] is not None else ""
        typer.echo(f"  {f['label']:<22}{f['reached']:>10,}{f['now']:>10,}{share:>13}")
    buckets = list(report["backlogs"][0]["by_age"]) if report["backlogs"] else []
    typer.echo(f"{'backlogs':<36}{'total':>8}{'oldest':>8}" + "".join(f"{b:>17}" for b in buckets))
    for b in report["backlogs"]:
        for title, row in [(b["label"], b)] + [(f"  {p['label']}", p) for p in b["parts"]]:
            oldest = f"{row['oldest_days']}d" if row["oldest_days"] is not None else "-"
            cells = "".join(f"{row['by_age'][k]:>17,}" for k in buckets)
            typer.echo(f"  {title:<34}{row['total']:>8,}{oldest:>8}{cells}")
    _print_reminders(report["uncollected"])


def _print(report: dict[str, Any]) -> None:
    _print_lifecycle(report)
    total = sum(report["by_state"].values())
    typer.echo(f"applications: {total:,}")
    for state, n in report["by_state"].items():
        if n:
            typer.echo(f"  {state:<22}{n:>10,}")
    if report["by_reason"]:
        typer.echo("rejected by reason (an application may have several)")
        for reason, n in report["by_reason"].items():
            typer.echo(f"  {reason:<26}{n:>10,}")
    if report["failures"]:
        typer.echo("failed (refused by the bank for the last time, or not produced), by reason")
        for reason, n in report["failures"].items():
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
    only_reminders: Annotated[
        bool,
        typer.Option(
            "--reminders",
            help="Only the cards at a branch longer than ISSUANCE_COLLECTION_REMINDER_DAYS, per branch.",
        ),
    ] = False,
) -> None:
    """Lifecycle funnel, backlogs by age, uncollected cards; counts by state, reason, branch, bank, run."""
    settings = load_settings(ctx)
    endpoints = in_role(resolve(settings), OPERATOR)
    with connect(endpoints.database_url, autocommit=True, application_name="issuance-report") as conn:
        if only_reminders:
            late = reminders(conn, settings.collection_reminder_days)
            if as_json:
                print_json(late)
            else:
                _print_reminders(late)
            return
        document = gather(conn, settings.collection_reminder_days)
    if as_json:
        print_json(document)
    else:
        _print(document)


def register(app: typer.Typer) -> None:
    """Add the `report` command."""
    app.command("report")(report)
