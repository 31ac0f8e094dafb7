"""`issuance keys rotate --data-key | --blind-index-key`: rewrite what is stored under the keys at rest.

--data-key re-seals every envelope under the first key of ISSUANCE_DATA_KEYS (after which the older keys can
be removed); --blind-index-key recomputes every blind index and keyed digest under ISSUANCE_BLIND_INDEX_KEY,
with the key it replaces as ISSUANCE_PREVIOUS_BLIND_INDEX_KEY. Both are resumable (re-run the same command
after an interruption), hold the nightly lock, and are audited with --operator. This module exposes one
command, `rotate`; `attach(group)` hangs it under a command group as `rotate`.
"""

from __future__ import annotations

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
from consumers.serve import GROUP_LOCK_CLASS
from issuance.crypto import Vault, parse_blind_index_key
from issuance.errors import ConfigurationError, InputError
from issuance.services.endpoints import resolve
from issuance.settings import Settings
from issuance.store.blind_index_rotation import rotate_blind_index_key
from issuance.store.db import connect
from issuance.store.migrate import ensure_current
from issuance.store.rotation import rotate_data_key
from issuance.vault_keys import previous_blind_index_key_text


def attach(group: typer.Typer) -> None:
    """Add `rotate` to a command group (the `keys` group)."""
    group.command("rotate")(rotate)


def register(app: typer.Typer) -> None:
    """Add `issuance keys rotate` to the `keys` group of cli/keys.py (registered before this module)."""
    from cli.keys import keys_app

    attach(keys_app)


def _previous_vault(settings: Settings, vault: Vault) -> Vault:
    text = previous_blind_index_key_text(settings)
    if text is None:
        raise ConfigurationError(
            "a blind-index rotation needs the key being replaced: set ISSUANCE_PREVIOUS_BLIND_INDEX_KEY "
            "(or its _FILE, or keys_dir/previous-blind-index-key) to the old key "
            "and ISSUANCE_BLIND_INDEX_KEY to the new one"
        )
    return vault.with_blind_index_key(parse_blind_index_key(text, "ISSUANCE_PREVIOUS_BLIND_INDEX_KEY"))


@command
def rotate(
    ctx: typer.Context,
    operator: OperatorOption,
    data_key: Annotated[
        bool,
        typer.Option("--data-key", help="Re-seal every envelope under the first ISSUANCE_DATA_KEYS key."),
    ] = False,
    blind_index_key: Annotated[
        bool,
        typer.Option(
            "--blind-index-key",
            help="Recompute every blind index under ISSUANCE_BLIND_INDEX_KEY (the old key as "
            "ISSUANCE_PREVIOUS_BLIND_INDEX_KEY).",
        ),
    ] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Rows per committed batch.")] = 1_000,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the rows rewritten as a JSON document.")
    ] = False,
) -> None:
    """Rotate a key at rest; resumable: after an interruption, run the same command again."""
    if data_key == blind_index_key:
        raise InputError("give exactly one of --data-key and --blind-index-key")
    actor = operator_identity(operator)
    settings = load_settings(ctx)
    vault = Vault.from_settings(settings)
    previous = _previous_vault(settings, vault) if blind_index_key else None
    with (
        connect(resolve(settings).database_url, application_name="issuance-keys-rotate") as conn,
        stage_progress(console.is_terminal and not as_json) as progress,
    ):
        ensure_current(conn)
        conn.commit()
        options: dict[str, Any] = {"operator": actor, "batch_size": batch_size}
        if progress is not None:
            options["progress"] = progress
        if previous is not None:
            rewritten = rotate_blind_index_key(
                conn, vault, previous, lookup_lock_classes=(GROUP_LOCK_CLASS,), **options
            )
        else:
            rewritten = rotate_data_key(conn, vault, **options)
    kind = "blind-index-key" if blind_index_key else "data-key"
    target = vault.blind_index_key_id if blind_index_key else vault.primary_key_id
    if as_json:
        print_json({"kind": kind, "target_key": target, "rewritten": rewritten})
        return
    table = Table(title=f"{kind} rotation to {target} finished")
    table.add_column("column")
    table.add_column("rewritten", justify="right")
    for column, count in rewritten.items():
        table.add_row(column, str(count))
    console.print(table)
