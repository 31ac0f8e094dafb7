"""What every command shares: settings, JSON output, and mapping errors to the exit codes of the contract."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console

from issuance.errors import InputError, IssuanceError
from issuance.settings import Settings

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2

console = Console(stderr=True)

# Who runs an operator action that changes what the system will do (re-drive, re-baseline, re-publish): recorded
# in the audit log with the action. Required, so that the log names a person or a service, not a shell account.
OperatorOption = Annotated[
    str,
    typer.Option(
        "--operator",
        envvar="ISSUANCE_OPERATOR",
        help="Your operator identity, recorded in the audit log (or ISSUANCE_OPERATOR).",
        show_default=False,
    ),
]


def operator_identity(value: str) -> str:
    """The operator identity as given, refused when empty or not printable."""
    name = value.strip()
    if not name or len(name) > 128 or not name.isprintable():
        raise InputError("--operator: give your operator identity (1 to 128 printable characters)")
    return name


def load_settings(ctx: typer.Context) -> Settings:
    """The settings built once by the root callback."""
    settings = ctx.obj
    if not isinstance(settings, Settings):
        settings = Settings()
        ctx.obj = settings
    return settings


def print_json(payload: Any) -> None:
    """Write one JSON document to stdout."""
    sys.stdout.write(json.dumps(payload, indent=2, sort_keys=True, default=str, ensure_ascii=False) + "\n")


@contextmanager
def exit_codes() -> Iterator[None]:
    """Turn the project's errors into a message and the contract's exit code."""
    try:
        yield
    except InputError as exc:
        console.print(f"[red]error:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(EXIT_BAD_INPUT) from exc
    except IssuanceError as exc:
        # One line whatever the width (soft_wrap): operators grep logs for it.
        console.print(f"[red]error:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(EXIT_FAILURE) from exc


def command(func: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a command body so that project errors become exit codes."""
    import functools

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with exit_codes():
            return func(*args, **kwargs)

    return wrapper
