"""`issuance batch run`: one nightly run, its progress on the terminal and its reconciliation.

The business date defaults to today in Asia/Shanghai (the bureau's calendar, not the server's UTC). A date
earlier than the last successful run's is refused (exit 2) unless `--force` and `--operator` are given; the
forced date is written to the audit log with the operator before the run starts.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from cli.common import (
    OperatorOption,
    command,
    console,
    load_settings,
    operator_identity,
    print_json,
)
from cli.language import _, number
from issuance.domain.business_dates import behind_last_run, business_day
from issuance.errors import InputError
from issuance.settings import Settings
from issuance.store.roles import OPERATOR


def stage_label(stage: str) -> str:
    """What the night is doing, for the progress line."""
    return {
        "plan": _("Planning the read"),
        "stage": _("Reading, decoding, verifying, staging"),
        "commit": _("Committing the night (one transaction)"),
        "files": _("Writing personalization files"),
        "publish": _("Publishing the outbox"),
    }.get(stage, stage)


class _Display:
    """Stage and counts on a terminal (rich); plain stage lines otherwise."""

    def __init__(self, progress: Progress | None) -> None:
        self._progress = progress
        self._task: Any = None
        self._stage = ""
        self._planned = 0

    def __call__(self, stage: str, counts: dict[str, int]) -> None:
        if stage == "plan":
            self._planned = counts.get("records", 0)
        text = stage_label(stage)
        if stage == "stage":
            done = counts.get("applications", 0) + counts.get("agreements", 0) + counts.get("dead_letters", 0)
            text += ": " + _("{done} of {planned} records").format(
                done=number(done), planned=number(self._planned)
            )
        elif counts:
            text += ": " + ", ".join(f"{_count_name(k)} {number(v)}" for k, v in counts.items())
        if self._progress is None:
            if stage != self._stage:
                console.print(
                    stage_label(stage)
                    + (
                        ": " + _("{count} records").format(count=number(self._planned))
                        if stage == "plan"
                        else ""
                    )
                )
        elif self._task is None:
            self._task = self._progress.add_task(text, total=None)
        else:
            self._progress.update(self._task, description=text)
        self._stage = stage


def _count_name(key: str) -> str:
    """A count of the progress or the reconciliation, for the operator (the JSON keeps the key)."""
    return {
        "records": _("records"),
        "applications": _("applications"),
        "agreements": _("agreements"),
        "dead_letters": _("dead letters"),
        "events": _("events"),
        "files": _("files"),
        "cards": _("cards"),
    }.get(key, key.replace("_", " "))


def _step_name(key: str) -> str:
    """A step of the cards since the previous run (the keys of pipelines/lifecycle_report.py)."""
    return {
        "accounts_opened": _("accounts opened"),
        "cards_produced": _("cards produced"),
        "cards_received_at_branch": _("cards received at branch"),
        "cards_collected": _("cards collected"),
        "savings_activated": _("savings activated"),
    }.get(key, key.replace("_", " "))


def _notice(line: str) -> None:
    """A line for the operator beside the progress (an address stays on one line to be copied)."""
    console.print(line, soft_wrap=True)


def _yes(ok: bool | None) -> str:
    return _("yes") if ok else _("NO")


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {number(v)}" for k, v in counts.items())


def _print_report(result: Any) -> None:
    report = result.reconciliation
    state = (
        "[green]" + _("balanced") + "[/green]" if result.balanced else "[red]" + _("NOT balanced") + "[/red]"
    )
    typer.echo(
        _("run {run_id} business date {business_date} {resumed}read {count} records").format(
            run_id=result.run_id,
            business_date=result.business_date,
            resumed=_("(resumed) ") if result.resumed else "",
            count=number(result.records_planned),
        )
    )
    table = Table(title=_("Reconciliation: read = accepted + rejected + awaiting + dead-lettered + re-sent"))
    table.add_column(_("branch"), justify="left")
    for column in (
        _("read"),
        _("accepted"),
        _("rejected"),
        _("awaiting agreement"),
        _("dead-lettered"),
        _("re-sent"),
        _("ok"),
    ):
        table.add_column(column, justify="right")

    def add(name: str, line: dict[str, Any]) -> None:
        table.add_row(
            name,
            *(
                number(line.get(k, 0))
                for k in (
                    "read",
                    "accepted",
                    "rejected",
                    "awaiting_agreement",
                    "dead_lettered",
                    "resent",
                )
            ),
            _yes(line["balanced"]),
        )

    for branch, line in report.get("branches", {}).items():
        add(branch, line)
    add(_("TOTAL"), report["total"])
    # Wide enough for full branch codes also when stdout is a file or a pipe.
    out = Console(stderr=False, width=max(Console(stderr=False).width, 140))
    out.print(table)
    extra = report.get("run", {})
    out.print(
        _(
            "cards ordered {cards_ordered}, accounts requested {accounts_requested}, account-opening requests"
            " {account_opening_requests}, activation requests {activation_requests} (requested again"
            " {requested_again}), decisions {decisions}, re-examined {reexamined}"
        ).format(
            cards_ordered=number(extra.get("cards_ordered", 0)),
            accounts_requested=number(extra.get("accounts_requested", 0)),
            account_opening_requests=number(extra.get("account_opening_requests", 0)),
            activation_requests=number(extra.get("activation_requests", 0)),
            requested_again=number(extra.get("requested_again", 0)),
            decisions=number(extra.get("decisions", 0)),
            reexamined=_counts(extra.get("reexamined", {})) or "-",
        )
    )
    out.print(_("agreements: {counts}").format(counts=_counts(report.get("agreements", {})) or "-"))
    if report.get("reasons"):
        out.print(_("rejection reasons: {counts}").format(counts=_counts(report["reasons"])))
    if report.get("dead_letters"):
        out.print(_("dead letters: {counts}").format(counts=_counts(report["dead_letters"])))
    if report.get("lifecycle"):
        _print_lifecycle(out, report["lifecycle"])
    counters = Table(title=_("Beam counters (stage.name)"))
    counters.add_column(_("counter"))
    counters.add_column(_("value"), justify="right")
    for name, value in result.counters.items():
        counters.add_row(name, number(value))
    out.print(counters)
    for manifest in result.files:
        out.print(
            _("vendor file {vendor}: {count} cards sha256 {sha256}").format(
                vendor=manifest["vendor_code"],
                count=number(manifest["record_count"]),
                sha256=manifest["sha256"],
            )
        )
    out.print(
        _(
            "published {published} events; unanswered activation requests sent again {resent}; {verdict}"
        ).format(published=number(result.published), resent=number(result.resent_unanswered), verdict=state)
    )
    if result.set_aside:
        set_aside = _(
            "{count} events set aside, too large for the broker or refused by it: `issuance report` lists"
            " them (RUNBOOK: an event too large to publish)"
        ).format(count=number(result.set_aside))
        out.print(f"[yellow]{set_aside}[/yellow]")


def _print_lifecycle(out: Console, life: dict[str, Any]) -> None:
    """The cards' side of the reconciliation: personalized by vendor, the steps since the previous run."""
    out.print(
        _("cards personalized {count} (by vendor: {vendors})").format(
            count=number(life.get("personalized", 0)), vendors=_counts(life.get("by_vendor", {})) or _("none")
        )
    )
    if life.get("waiting_for_vendor"):
        waiting = _("cards waiting, no vendor for their area: {counts}").format(
            counts=_counts(life["waiting_for_vendor"])
        )
        out.print(f"[yellow]{waiting}[/yellow]")
    since = life.get("since_previous_run", {})
    out.print(
        _("since the previous run: {counts}").format(
            counts=", ".join(f"{_step_name(k)} {number(v)}" for k, v in since.items())
        )
    )
    checks = life.get("checks", {})
    by_status = ", ".join(f"{k} {number(v)}" for k, v in life.get("cards_by_status", {}).items())
    out.print(
        _(
            "cards {count} by status {statuses}; each in one status: {one_status}; each personalized card in"
            " one vendor file: {one_file}"
        ).format(
            count=number(checks.get("cards", 0)),
            statuses=by_status or "-",
            one_status=_yes(checks.get("every_card_in_one_status")),
            one_file=_yes(checks.get("every_personalized_card_in_one_vendor_file")),
        )
    )


def _parse_date(text: str | None) -> date:
    """The --business-date given, else today in Asia/Shanghai."""
    if text is None:
        return business_day(datetime.now(UTC))
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise InputError(
            _("--business-date {value} is not a date (YYYY-MM-DD)").format(value=repr(text))
        ) from exc


def check_business_date(settings: Settings, requested: date, force: bool, operator: str | None) -> None:
    """Refuse a business date behind the last successful run's unless forced; record a forced one.

    A crashed run left in flight is resumed with its own stored date, so nothing is checked then."""
    from issuance.services.endpoints import resolve
    from issuance.store import run_repo
    from issuance.store.audit import record_action
    from issuance.store.db import connect
    from issuance.store.migrate import ensure_current

    with connect(resolve(settings).database_url, role=OPERATOR, application_name="issuance-batch") as conn:
        ensure_current(conn)
        if run_repo.open_run(conn) is not None:
            return
        last = run_repo.last_succeeded_business_date(conn)
        if last is None or not behind_last_run(requested, last):
            return
        if not force:
            raise InputError(
                _(
                    "--business-date {requested} is earlier than the last successful run's ({last}): nights"
                    " go forward; to run an earlier date on purpose, add --force --operator NAME"
                ).format(requested=requested, last=last)
            )
        if operator is None:
            raise InputError(
                _("--force needs --operator NAME (or ISSUANCE_OPERATOR): the audit log names you")
            )
        record_action(
            conn,
            actor=operator,
            action="batch.run.earlier_business_date",
            entity="business_date",
            entity_id=requested.isoformat(),
            detail={"last_succeeded_business_date": last.isoformat()},
        )
        conn.commit()


@command
def run(
    ctx: typer.Context,
    business_date: Annotated[
        str | None,
        typer.Option(
            "--business-date", help="The night's business date, YYYY-MM-DD (default today in Asia/Shanghai)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as one JSON document.")] = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="Run a business date earlier than the last successful run's (audited)."),
    ] = False,
    operator: OperatorOption = "",  # needed with --force only
    engine: Annotated[
        str | None,
        typer.Option(
            "--engine",
            help="What runs the Beam stage: direct (this machine) or dask (ISSUANCE_DASK_ADDRESS, else a"
            " local cluster of ISSUANCE_BEAM_WORKERS processes). Default ISSUANCE_ENGINE, else direct.",
        ),
    ] = None,
) -> None:
    """Run one night: read the planned offsets, verify, join agreements, personalize, publish, reconcile.

    Beam pipeline options go after `--`, e.g.
    `-- --direct_running_mode=multi_processing --direct_num_workers=2`.
    A crashed run is resumed over its stored plan. Exits 1 when the run does not balance.
    """
    from pipelines import nightly
    from pipelines.engines import ENGINES

    settings = load_settings(ctx)
    if engine is not None and engine not in ENGINES:
        raise InputError(
            _("--engine {value} is not one of: {engines}").format(
                value=repr(engine), engines=", ".join(ENGINES)
            )
        )
    # kafka-python warns about its own event loop under load; the run reports what matters. So does Dask.
    logging.getLogger("kafka").setLevel(logging.ERROR)
    logging.getLogger("distributed").setLevel(logging.WARNING)
    night = _parse_date(business_date)
    check_business_date(settings, night, force, operator_identity(operator) if operator else None)
    argv = ["--business-date", night.isoformat(), *ctx.args]
    if console.is_terminal and not as_json:
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as bar:
            result = nightly.run(
                argv, settings=settings, progress=_Display(bar), engine=engine, notice=_notice
            )
    else:
        result = nightly.run(
            argv,
            settings=settings,
            progress=_Display(None) if not as_json else nightly._quiet,
            engine=engine,
            notice=_notice,
        )
    if as_json:
        print_json(result.as_dict())
    else:
        _print_report(result)
    if not result.balanced:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the `batch` command group."""
    batch = typer.Typer(help="The nightly batch.", no_args_is_help=True)
    batch.command("run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(run)
    app.add_typer(batch, name="batch")
