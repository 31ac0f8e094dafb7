"""Entry point of the `issuance` command: builds the settings once and registers every command group."""

from __future__ import annotations

import importlib
import pkgutil

import typer

import issuance.cli
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
        f"issuance.cli.{info.name}"
        for info in pkgutil.iter_modules(issuance.cli.__path__)
        if info.name not in {"main", "common"}
    )


@app.callback()
def root(ctx: typer.Context) -> None:
    """Configuration comes from ISSUANCE_* environment variables (see the README)."""
    ctx.obj = Settings()


for _name in _command_modules():
    importlib.import_module(_name).register(app)


def main() -> None:
    app()
