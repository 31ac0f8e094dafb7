"""`issuance submit applications|agreements|raw FILE`: validate JSON lines and publish the valid ones."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cli.common import command, console, load_settings, print_json
from producers.client import DEFAULT_DELIVERY_TIMEOUT_S, BranchClient
from producers.submission import Kind, SubmissionReport, count_lines, submit_file

submit_app = typer.Typer(help="Publish branch records from JSON-lines files (one record per line).")

FileArg = Annotated[Path, typer.Argument(help="JSON-lines file, one record per line.", show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout.")]
ReportOpt = Annotated[
    Path | None, typer.Option("--report", help="Write every line's status (JSON lines) to this file.")
]
TimeoutOpt = Annotated[
    float,
    typer.Option("--timeout", help="Seconds to keep retrying an unreachable broker before giving up.", min=1),
]
THROUGHPUT_LINGER_MS = 20


def register(app: typer.Typer) -> None:
    app.add_typer(submit_app, name="submit", no_args_is_help=True)


@contextmanager
def _progress(path: Path, enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A rich progress bar over the file's lines on a terminal; nothing otherwise."""
    if not enabled:
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(f"{path.name}: lines read", total=count_lines(path))

        def update(lines: int, published: int) -> None:
            bar.update(
                task, completed=lines, description=f"{path.name}: {published:,} acknowledged, lines read"
            )

        yield update


def _run(
    ctx: typer.Context, kind: Kind, path: Path, as_json: bool, report: Path | None, timeout: float
) -> None:
    settings = load_settings(ctx)
    logging.getLogger("kafka").setLevel(logging.CRITICAL)  # its retry chatter; our report says what matters
    with (
        BranchClient.from_settings(
            settings, delivery_timeout_s=timeout, linger_ms=THROUGHPUT_LINGER_MS, client_id="issuance-submit"
        ) as client,
        _progress(path, console.is_terminal and not as_json) as progress,
    ):
        topics = client.topics
        client.require_topics(
            *{
                Kind.APPLICATIONS: [topics.applications],
                Kind.AGREEMENTS: [topics.agreements],
                Kind.RAW: [topics.applications, topics.agreements],
            }[kind]
        )
        result = submit_file(client, path, kind, progress, report)
    if as_json:
        print_json(result.to_json())
    else:
        _print(result, report)
    if result.exit_code:
        raise typer.Exit(result.exit_code)


def _print(result: SubmissionReport, report: Path | None) -> None:
    console.print(
        f"{result.file}: {result.lines:,} lines, "
        f"[green]{result.published:,} published[/green] to {result.topic}, "
        f"{result.rejected:,} rejected, {result.unconfirmed:,} not confirmed ({result.seconds:.1f}s)"
    )
    if result.ignored_fields:
        fields = ", ".join(
            f"{name} ({lines:,} lines)" for name, lines in sorted(result.ignored_fields.items())
        )
        console.print(f"[yellow]fields not in the contract, not sent:[/yellow] {fields}")
    if result.rejections:
        table = Table("line", "field", "reason", title="Rejected lines (not published)")
        for rejection in result.rejections[:20]:
            for field, reason in rejection.problems:
                table.add_row(str(rejection.line), field, reason)
        console.print(table)
        if result.rejected > 20:
            console.print(f"... and {result.rejected - 20:,} more rejected lines" + _see(report))
    if result.unconfirmed:
        ranges = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in result.unconfirmed_ranges[:10])
        console.print(
            f"[red]error:[/red] {result.error}. {result.unconfirmed:,} lines not confirmed (lines {ranges}"
            f"{', ...' if len(result.unconfirmed_ranges) > 10 else ''}); {result.published:,} confirmed."
            + _see(report)
        )
        console.print(
            "Submitting the file again is safe: application and agreement ids are idempotency keys."
        )


def _see(report: Path | None) -> str:
    return f" (every line's status in {report})" if report else " (use --report FILE for every line's status)"


def _submit_command(name: str, kind: Kind, doc: str) -> None:
    """Register `issuance submit NAME FILE` for one kind of record; `doc` is its help line."""

    def submit(
        ctx: typer.Context,
        file: FileArg,
        as_json: JsonOpt = False,
        report: ReportOpt = None,
        timeout: TimeoutOpt = DEFAULT_DELIVERY_TIMEOUT_S,
    ) -> None:
        _run(ctx, kind, file, as_json, report, timeout)

    submit.__doc__ = doc
    submit_app.command(name)(command(submit))


_submit_command(
    "applications",
    Kind.APPLICATIONS,
    "Validate applications and publish the valid ones (exit 0 all, 2 some rejected, 1 broker failure).",
)
_submit_command(
    "agreements",
    Kind.AGREEMENTS,
    "Validate signed agreements and publish the valid ones (exit codes as for applications).",
)
_submit_command(
    "raw",
    Kind.RAW,
    'Publish prepared messages verbatim: lines {"topic": applications|agreements, "key", "value_b64"}.',
)
