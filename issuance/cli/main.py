"""Entry point of the `issuance` command: builds the settings once and registers every command group."""

from __future__ import annotations

import importlib

import typer

from issuance.settings import Settings

app = typer.Typer(
    name="issuance",
    help="Issue social security cards with a bank savings function and activate it at the banks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Each module defines `register(app)`; a command appears here only once it works.
COMMAND_MODULES = [
    "issuance.cli.dev",
    "issuance.cli.setup",
]


@app.callback()
def root(ctx: typer.Context) -> None:
    """Configuration comes from ISSUANCE_* environment variables (see the README)."""
    ctx.obj = Settings()


for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)


def main() -> None:
    app()
