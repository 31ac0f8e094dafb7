"""`issuance generate`: synthetic reference data, applications, agreements and their expected outcomes."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cli.common import command, console, print_json
from issuance.errors import InputError
from producers.generator import DEFAULT_START_DATE, GenerateOptions, generate


def register(app: typer.Typer) -> None:
    app.command("generate")(generate_command)


@command
def generate_command(
    applications: Annotated[int, typer.Option("--applications", "-n", help="How many applications.", min=1)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory to write the files into.")],
    seed: Annotated[
        int, typer.Option("--seed", help="Random seed: the same seed writes the same bytes.")
    ] = 1,
    invalid_ratio: Annotated[
        float,
        typer.Option("--invalid-ratio", help="Share of cases with an injected defect.", min=0.0, max=1.0),
    ] = 0.2,
    start_date: Annotated[
        str, typer.Option("--start-date", help="Business date of night 1 (YYYY-MM-DD).")
    ] = DEFAULT_START_DATE.isoformat(),
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
) -> None:
    """Generate realistic applications with known right answers (see producers/README.md for the files)."""
    try:
        day = date.fromisoformat(start_date)
    except ValueError as exc:
        raise InputError(f"--start-date: {start_date!r} is not a date YYYY-MM-DD") from exc
    manifest = generate(out, GenerateOptions(applications, seed, invalid_ratio, day))
    if as_json:
        print_json(manifest)
        return
    table = Table(title=f"Generated into {out}", show_header=True)
    table.add_column("night")
    table.add_column("business date")
    table.add_column("files")
    for night in manifest["nights"]:
        files = [night[k] for k in ("applications", "agreements", "raw_messages") if night[k]]
        table.add_row(str(night["night"]), night["business_date"], ", ".join(files))
    console.print(table)
    counts = manifest["counts"]
    console.print(
        f"{counts.get('applications', 0)} applications, {manifest['persons']} registry persons, "
        f"{counts.get('raw_messages', 0)} raw dead-letter messages; expected outcomes in expected.jsonl"
    )
