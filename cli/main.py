"""Entry point of the `issuance` command: builds the settings once and registers every command group."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from typing import Annotated

import typer
import typer.main

import cli
from cli import language
from cli.common import configure, invocation, report_failure
from issuance.errors import IssuanceError
from issuance.settings import Settings

app = typer.Typer(
    name="issuance",
    help="Issue social security cards with a bank savings function and activate it at the banks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _command_modules() -> list[str]:
    """Every module of this package that defines `register(app)` contributes its commands."""
    return sorted(
        f"cli.{info.name}"
        for info in pkgutil.iter_modules(cli.__path__)
        if info.name not in {"main", "common", "language"}
    )


def _chosen_language(value: str | None) -> str | None:
    """Apply --lang before anything else runs, so that even a failing setting is reported in it."""
    if value is not None:
        try:
            language.use(value)
        except IssuanceError as exc:
            raise typer.BadParameter(f"{value!r} is not one of zh_CN, en") from exc
    return value


@app.callback()
def root(
    ctx: typer.Context,
    debug: Annotated[
        bool, typer.Option("--debug", help="On failure, print the traceback before the one-line error.")
    ] = False,
    lang: Annotated[
        str | None,
        typer.Option(
            "--lang",
            metavar="zh_CN|en",
            help="The language of the text output: zh_CN (default) or en; overrides ISSUANCE_LANGUAGE."
            " JSON output is the same in both.",
            show_default=False,
            callback=_chosen_language,
        ),
    ] = None,
) -> None:
    """Configuration comes from ISSUANCE_* environment variables (see the README)."""
    settings = Settings()
    if lang is None:
        language.use(settings.language)
    configure(settings, debug=debug)
    ctx.obj = settings


for _name in _command_modules():
    importlib.import_module(_name).register(app)


def typed_command(argv: list[str]) -> str:
    """The command words of argv ("issuance dead-letters redrive"), found in the registered command groups."""
    words = ["issuance"]
    commands = getattr(typer.main.get_command(app), "commands", {})
    for arg in argv:
        if arg.startswith("-"):
            continue
        if arg not in commands:
            break
        words.append(arg)
        commands = getattr(commands[arg], "commands", {})
    return " ".join(words)


def main() -> None:
    """Run the command; an error its body did not map (settings, start-up) still ends as one line."""
    argv = sys.argv[1:]
    invocation.command = typed_command(argv)
    invocation.debug = (
        "--debug" in argv[: next((i for i, a in enumerate(argv) if not a.startswith("-")), len(argv))]
    )
    try:
        app()
    except Exception as exc:
        sys.exit(report_failure(exc, invocation.command))
