"""`issuance report`: the lifecycle funnel, the backlogs by age, the cards waiting too long at their branch,
and counts by state, reason, branch, bank and nightly run, for the bureau."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli import language
from cli.common import command, load_settings, print_json
from cli.language import _, left, number, right
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


def _column_labels() -> tuple[str, ...]:
    """The headings of SHOWN_STATES' columns."""
    return (_("completed"), _("accepted"), _("failed"), _("awaiting"), _("rejected"))


def label(text: str) -> str:
    """A funnel step, backlog, backlog part or age bucket of the report queries, for the operator (their
    English label is the message id; the JSON documents keep it as it is). Also the demo's summary."""
    return {
        "Submitted": _("Submitted"),
        "Accepted": _("Accepted"),
        "Account opened": _("Account opened"),
        "Produced": _("Produced"),
        "At the branch": _("At the branch"),
        "Collected": _("Collected"),
        "Savings active": _("Savings active"),
        "Waiting for the bank": _("Waiting for the bank"),
        "Waiting for the vendor": _("Waiting for the vendor"),
        "At the branch, not yet collected": _("At the branch, not yet collected"),
        "account opening requested": _("account opening requested"),
        "ordered, account opened": _("ordered, account opened"),
        "in production": _("in production"),
        "produced, on its way": _("produced, on its way"),
        "at the branch": _("at the branch"),
        "today": _("today"),
        "1-6 days": _("1-6 days"),
        "7-13 days": _("7-13 days"),
        "14-29 days": _("14-29 days"),
        "30 days or more": _("30 days or more"),
    }.get(text, text)


def _run_status(status: str) -> str:
    return {
        "PLANNED": _("planned"),
        "RUNNING": _("running"),
        "SUCCEEDED": _("succeeded"),
        "FAILED": _("failed"),
    }.get(status, status)


def _count(n: int, width: int) -> str:
    return right(number(n), width)


def _row(name: str, counts: dict[str, int]) -> str:
    cells = "".join(_count(counts.get(s, 0), 13) for s in SHOWN_STATES)
    return f"  {left(name, 22)}{cells}{_count(sum(counts.values()), 10)}"


def _print_reminders(late: dict[str, Any]) -> None:
    typer.echo(
        _("cards at the branch for more than {days} days, not collected: {cards}").format(
            days=late["after_days"], cards=number(late["cards"])
        )
    )
    for b in late["branches"]:
        oldest = _("oldest {days} days").format(days=b["oldest_days"])
        typer.echo(f"  {left(b['branch_code'], 22)}{_count(b['cards'], 10)}  {oldest}")


def _print_lifecycle(report: dict[str, Any]) -> None:
    typer.echo(
        left(_("lifecycle"), 24) + right(_("reached"), 10) + right(_("now"), 10) + right(_("of previous"), 13)
    )
    for f in report["funnel"]:
        share = f"{f['of_previous']:.1%}" if f["of_previous"] is not None else ""
        counts = _count(f["reached"], 10) + _count(f["now"], 10)
        typer.echo(f"  {left(label(f['label']), 22)}{counts}{right(share, 13)}")
    buckets = list(report["backlogs"][0]["by_age"]) if report["backlogs"] else []
    typer.echo(
        left(_("backlogs"), 36)
        + right(_("total"), 8)
        + right(_("oldest"), 8)
        + "".join(right(label(b), 17) for b in buckets)
    )
    for b in report["backlogs"]:
        for title, row in [(label(b["label"]), b)] + [(f"  {label(p['label'])}", p) for p in b["parts"]]:
            oldest = _("{days}d").format(days=row["oldest_days"]) if row["oldest_days"] is not None else "-"
            cells = "".join(_count(row["by_age"][k], 17) for k in buckets)
            typer.echo(f"  {left(title, 34)}{_count(row['total'], 8)}{right(oldest, 8)}{cells}")
    _print_reminders(report["uncollected"])


def _print(report: dict[str, Any]) -> None:
    _print_lifecycle(report)
    total = sum(report["by_state"].values())
    typer.echo(_("applications: {count}").format(count=number(total)))
    for state, n in report["by_state"].items():
        if n:
            typer.echo(f"  {left(state, 22)}{_count(n, 10)}  {language.state(state)}")
    if report["by_reason"]:
        typer.echo(_("rejected by reason (an application may have several)"))
        for reason, n in report["by_reason"].items():
            typer.echo(f"  {left(reason, 26)}{_count(n, 10)}  {language.reason(reason)}")
    if report["failures"]:
        typer.echo(_("failed (refused by the bank for the last time, or not produced), by reason"))
        for reason, n in report["failures"].items():
            typer.echo(f"  {left(reason, 26)}{_count(n, 10)}")
    header = "".join(right(heading, 13) for heading in _column_labels())
    for title, key in ((_("by branch"), "by_branch"), (_("by bank"), "by_bank")):
        typer.echo(left(title, 24) + header + right(_("total"), 10))
        for name, counts in report[key].items():
            typer.echo(_row(name, counts))
    if report["dead_letters"]:
        typer.echo(
            _("dead letters: {counts}").format(
                counts=", ".join(f"{k} {number(v)}" for k, v in report["dead_letters"].items())
            )
        )
    if report["events_set_aside"]:
        typer.echo(_("events set aside, never published (the broker will not take them; see RUNBOOK.md)"))
        for e in report["events_set_aside"]:
            of_run = _("run {run_id}").format(run_id=e["run_id"])
            typer.echo(f"  {e['event_type']:<22} {e['event_id']}  {of_run}  {e['reason']}")
    typer.echo(_("runs"))
    for run in report["runs"]:
        balanced = {True: _("balanced"), False: _("NOT BALANCED"), None: _("not reconciled")}[run["balanced"]]
        read = _("{count} read").format(count=_count(run["records_read"], 10))
        name = _("run {run_id}").format(run_id=run["run_id"])
        typer.echo(
            f"  {left(name, 8)} {language.day(run['business_date'])}"
            f"  {left(_run_status(run['status']), 10)} {read}  {balanced}"
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
