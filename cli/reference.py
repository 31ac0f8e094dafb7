"""`issuance reference load FILE`: validate the reference-data document and upsert it into PostgreSQL."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from cli.common import (
    OperatorOption,
    command,
    console,
    load_settings,
    operator_identity,
    print_json,
    stage_progress,
)
from cli.keys import provision_embedded
from issuance.crypto import Vault
from issuance.domain.reference import parse_reference
from issuance.errors import InputError
from issuance.services.endpoints import resolve
from issuance.store.db import connect
from issuance.store.migrate import ensure_current
from issuance.store.reference_load import LoadReport, load_reference
from issuance.store.roles import OPERATOR

reference_app = typer.Typer(help="Reference data: issuing areas, banks, branches, person registry.")


def register(app: typer.Typer) -> None:
    app.add_typer(reference_app, name="reference", no_args_is_help=True)


def read_document(path: Path) -> tuple[Any, str]:
    """The parsed JSON of `path` and the SHA-256 of its bytes; InputError naming the file and position."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    try:
        doc = json.loads(data)
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    return doc, hashlib.sha256(data).hexdigest()


def _print_report(report: LoadReport) -> None:
    table = Table(title="reference data loaded")
    for column in ("table", "inserted", "updated", "unchanged"):
        table.add_column(column, justify="left" if column == "table" else "right")
    for name, counts in report.as_dict().items():
        table.add_row(name, str(counts["inserted"]), str(counts["updated"]), str(counts["unchanged"]))
    console.print(table)


@reference_app.command("load")
@command
def load(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The reference-data JSON document.")],
    operator: OperatorOption,
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as a JSON document.")] = False,
) -> None:
    """Load issuing areas, banks, branches and the person registry; loading a file twice changes nothing.

    Recorded in the audit log with the operator, the file name and its SHA-256."""
    actor = operator_identity(operator)
    settings = load_settings(ctx)
    doc, sha256 = read_document(file)
    reference = parse_reference(doc)
    del doc
    vault = Vault.from_settings(settings)
    database_url = resolve(settings).database_url
    with connect(database_url, role=OPERATOR, application_name="issuance-reference") as conn:
        ensure_current(conn)
        with stage_progress(console.is_terminal and not as_json, "encrypting {}".format) as progress:
            report = load_reference(
                conn,
                vault,
                reference,
                actor=actor,
                source=f"{file.name}@sha256:{sha256}",
                progress=progress,
            )
        provisioned = provision_embedded(settings, conn, actor=actor)
    if as_json:
        print_json(
            {
                "file": str(file),
                "sha256": sha256,
                **report.as_dict(),
                "simulated_parties_with_keys": provisioned,
            }
        )
    else:
        _print_report(report)
        if provisioned is not None:
            console.print(
                f"keys {settings.keys_dir}: {provisioned} simulated parties (bureau included) registered"
            )
