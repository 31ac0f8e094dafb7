"""What every command shares: settings, JSON output, the operator's identity, and every error as one line
with the exit code of the contract (the traceback behind `issuance --debug`)."""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import psycopg
import pydantic
import typer
from kafka import errors as kafka_errors
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from typer.exceptions import TyperException

from cli.language import _
from issuance.errors import BrokerUnavailable, InputError, IssuanceError
from issuance.settings import Settings
from issuance.store.audit import person_actor
from issuance.store.db import DatabaseUnavailable

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2

console = Console(stderr=True)

# Who runs an operator action that reveals or changes something (status, show, export, re-drive, re-publish,
# re-baseline, reference load, key commands): recorded in the audit log with the action. Required, so that the
# log names a person, not an account: every such command declares `operator: OperatorOption` and passes it
# through `operator_identity` before it touches anything.
OperatorOption = Annotated[
    str,
    typer.Option(
        "--operator",
        envvar="ISSUANCE_OPERATOR",
        metavar="NAME",
        help="Your operator identity for the audit log (or ISSUANCE_OPERATOR): letters, digits, . _ @ -",
        show_default=False,
    ),
]


def operator_identity(value: str) -> str:
    """The operator identity as the audit log records it; InputError (exit 2) when it is not a person's name
    (empty, spaces, a `service:` actor, more than 64 characters)."""
    return person_actor(value)


def load_settings(ctx: typer.Context) -> Settings:
    """The settings built once by the root callback."""
    settings = ctx.obj
    if not isinstance(settings, Settings):
        settings = Settings()
        ctx.obj = settings
    return settings


@contextmanager
def stage_progress(
    enabled: bool, describe: Callable[[str], str] = str
) -> Iterator[Callable[[str, int, int], None] | None]:
    """A rich progress bar per stage (a table being encrypted, a column being rotated) on a terminal; nothing
    otherwise. The callback takes the stage, the rows done and the rows in all, as the store's long writers
    report them; `describe` labels a stage's bar. A total that grows while a stage runs grows its bar."""
    if not enabled:
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        tasks: dict[str, Any] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(describe(stage), total=total)
            bar.update(tasks[stage], completed=done, total=max(total, done))

        yield update


def print_json(payload: Any) -> None:
    """Write one JSON document to stdout."""
    sys.stdout.write(json.dumps(payload, indent=2, sort_keys=True, default=str, ensure_ascii=False) + "\n")


@dataclass(slots=True)
class Invocation:
    """What the root callback learned about this invocation: how to report a failure."""

    command: str = "issuance"  # the command words as typed, set by the entry point
    debug: bool = False  # --debug: the traceback behind the one-line error
    database_configured: bool = False  # ISSUANCE_DATABASE_URL set (else the embedded PostgreSQL)
    broker_configured: bool = False  # ISSUANCE_KAFKA_BOOTSTRAP set (else the embedded broker)


invocation = Invocation()


def configure(settings: Settings, *, debug: bool) -> None:
    """Called once by the root callback, before any command runs."""
    invocation.debug = debug
    invocation.database_configured = settings.database_url is not None
    invocation.broker_configured = settings.kafka_bootstrap is not None


# SQLSTATE classes and codes of a server that went away: connection exceptions (08), operator intervention
# (57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now). None: the client lost the socket.
_CONNECTION_LOST = ("08", "57P01", "57P02", "57P03")
_BROKER_UNREACHABLE = (
    kafka_errors.KafkaConnectionError,
    kafka_errors.NodeNotReadyError,
    kafka_errors.KafkaTimeoutError,
    kafka_errors.BrokerNotAvailableError,
    kafka_errors.RequestTimedOutError,
)


def _start_database() -> str:
    if invocation.database_configured:
        return _("check the server at ISSUANCE_DATABASE_URL")
    return _("start it again (issuance dev up)")


def _start_broker() -> str:
    if invocation.broker_configured:
        return _("check the broker at ISSUANCE_KAFKA_BOOTSTRAP")
    return _("start it again (issuance dev up)")


def translate(exc: Exception, where: str) -> IssuanceError:
    """A library or unexpected error as the project error an operator reads: what failed, what to do.

    Messages never quote the library's text (it may hold values of a row or a record), only codes. The hints
    are in the invocation's language; the project error's own message is kept as raised."""
    if isinstance(exc, DatabaseUnavailable) and isinstance(exc.__cause__, psycopg.OperationalError):
        return DatabaseUnavailable(
            _("{error}; {action} and re-run").format(error=exc, action=_start_database())
        )
    if isinstance(exc, BrokerUnavailable) and "re-run" not in str(exc):
        return BrokerUnavailable(_("{error}; {action} and re-run").format(error=exc, action=_start_broker()))
    if isinstance(exc, IssuanceError):
        return exc
    if isinstance(exc, pydantic.ValidationError):
        names = sorted({"ISSUANCE_" + str(error["loc"][0]).upper() for error in exc.errors() if error["loc"]})
        return InputError(
            _("invalid setting(s) {names}: fix the environment (see the README)").format(
                names=", ".join(names) or "ISSUANCE_*"
            )
        )
    if isinstance(exc, psycopg.Error):
        return _database_error(exc, where)
    if isinstance(exc, kafka_errors.KafkaError):
        start = _start_broker()
        if isinstance(exc, _BROKER_UNREACHABLE):
            return BrokerUnavailable(
                _("the Kafka broker did not answer during {command}: {action} and re-run").format(
                    command=where, action=start
                )
            )
        return BrokerUnavailable(
            _(
                "Kafka refused a request during {command} ({error_type}): {action}, check the topics exist"
                " (issuance setup) and re-run"
            ).format(command=where, error_type=type(exc).__name__, action=start)
        )
    return IssuanceError(
        _("{command} failed unexpectedly ({error_type}): run again with --debug for the traceback").format(
            command=where, error_type=type(exc).__name__
        )
    )


def _database_error(exc: psycopg.Error, where: str) -> IssuanceError:
    sqlstate = exc.sqlstate
    start = _start_database()
    untouched = _("nothing was committed by the interrupted step")
    if isinstance(exc, psycopg.InterfaceError | psycopg.OperationalError) and (
        sqlstate is None or sqlstate.startswith(_CONNECTION_LOST)
    ):
        return DatabaseUnavailable(
            _("PostgreSQL closed the connection during {command}: {action} and re-run; {untouched}").format(
                command=where, action=start, untouched=untouched
            )
        )
    if isinstance(exc, psycopg.errors.LockNotAvailable):
        return IssuanceError(
            _(
                "PostgreSQL: {command} waited too long for a lock another command holds; re-run when it has"
                " finished ({untouched})"
            ).format(command=where, untouched=untouched)
        )
    return IssuanceError(
        _(
            "PostgreSQL refused a statement of {command} (SQLSTATE {sqlstate}, {error_type}); {untouched}:"
            " run again with --debug for the traceback"
        ).format(
            command=where, sqlstate=sqlstate or "none", error_type=type(exc).__name__, untouched=untouched
        )
    )


def report_failure(exc: Exception, where: str) -> int:
    """Print one line for the operator (and, with --debug, the traceback first); returns the exit code.

    The line starts with `error:` in every language (what the runbook and the operators' log searches look
    for); what follows is in the invocation's language."""
    error = translate(exc, where)
    if invocation.debug:
        traceback.print_exception(exc, file=sys.stderr)
    line = " ".join(str(error).split())  # one line, whatever a library put in it
    console.print(f"[red]error:[/red] {escape(line)}", soft_wrap=True)
    return EXIT_BAD_INPUT if isinstance(error, InputError) else EXIT_FAILURE


def command_path() -> str:
    """The running command as typed ("issuance dead-letters redrive"), for error messages."""
    return invocation.command


@contextmanager
def exit_codes() -> Iterator[None]:
    """Every error as one line for the operator and the contract's exit code (2 bad input, 1 failure)."""
    try:
        yield
    except (typer.Exit, typer.Abort, TyperException):  # exit codes and usage errors: already for the user
        raise
    except Exception as exc:
        raise typer.Exit(report_failure(exc, command_path())) from exc


def command(func: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a command body so that every error becomes one line and an exit code."""
    import functools

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with exit_codes():
            return func(*args, **kwargs)

    return wrapper
