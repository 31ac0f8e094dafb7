"""`issuance keys`: the parties' signing and sealing keys. Generate a party's key file, export its public keys
for the bureau, register public keys, list and revoke them.

Other key commands attach to `keys_app` from their own module's `register(app)` (cli/main.py imports every
module of this package in name order, after this one for any `keys_*` module):
`keys_app.command("rotate")(rotate)`.
"""

from __future__ import annotations

import getpass
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from psycopg import Connection
from psycopg.rows import TupleRow

from cli.common import OperatorOption, command, load_settings, operator_identity, print_json
from issuance.errors import ConfigurationError, InputError
from issuance.services.endpoints import resolve
from issuance.settings import Settings
from issuance.store import party_keys_repo
from issuance.store.db import connect
from issuance.store.migrate import ensure_current
from issuance.trust.keys import PublicKeys
from issuance.trust.keystore import bureau_keys, generate_partner_keys, key_file, partner_keys
from issuance.trust.parties import BUREAU, Party

keys_app = typer.Typer(
    help="Parties' keys: generate a key file, export its public keys, register, list and revoke keys."
)

PUBLIC_KEYS_FORMAT = "ssc-public-keys"
PUBLIC_KEYS_VERSION = 1

JsonOpt = Annotated[bool, typer.Option("--json", help="Print a JSON document on stdout.")]


def register(app: typer.Typer) -> None:
    """Add the `keys` command group."""
    app.add_typer(keys_app, name="keys", no_args_is_help=True)


def _party(text: str) -> Party:
    try:
        return Party.parse(text)
    except ConfigurationError as exc:
        raise InputError(f"--party: {exc}") from None


def _connect(settings: Settings) -> Connection[TupleRow]:
    conn = connect(resolve(settings).database_url, application_name="issuance-keys")
    ensure_current(conn)
    return conn


def system_actor() -> str:
    """The account running an automatic step (setup, reference load): the audit log's actor for it."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def provision_embedded(settings: Settings, conn: Connection[TupleRow], *, actor: str) -> int | None:
    """With the embedded services only: key files for the bureau and every branch, bank and vendor of the
    loaded reference data (the simulated partners), registered. The number of parties, or None when servers
    are configured (a deployment registers real partners' public keys with `issuance keys register`)."""
    if not settings.development_keys_allowed:
        return None
    parties = party_keys_repo.reference_parties(conn)
    party_keys_repo.provision_simulated_partners(settings, conn, parties, actor=actor)
    return len(parties) + 1


@keys_app.command("generate")
@command
def generate(
    ctx: typer.Context,
    party: Annotated[str, typer.Option("--party", help="The party, kind:code (e.g. bank:ICBC).")],
    as_json: JsonOpt = False,
) -> None:
    """Write the party's private key file into the keys directory (an existing one is kept) and print its
    path and public key ids. Hand `issuance keys export-public --party ...` to the bureau."""
    settings = load_settings(ctx)
    who = _party(party)
    path = key_file(settings, who)
    existed = path.exists()
    keys = generate_partner_keys(settings, who)
    if as_json:
        print_json(
            {
                "party": str(who),
                "path": str(path),
                "created": not existed,
                "sign_key_id": keys.sign_key_id,
                "seal_key_id": keys.seal_key_id,
            }
        )
        return
    typer.echo(f"{path} ({'kept, it already existed' if existed else 'created, mode 0600'})")
    typer.echo(f"  sign {keys.sign_key_id}")
    typer.echo(f"  seal {keys.seal_key_id}")


@keys_app.command("export-public")
@command
def export_public(
    ctx: typer.Context,
    party: Annotated[
        list[str] | None,
        typer.Option("--party", help="Whose public keys (repeatable; default: the bureau's)."),
    ] = None,
) -> None:
    """Print a JSON document of public keys, for `issuance keys register` at the other side."""
    settings = load_settings(ctx)
    parties = [_party(p) for p in party] if party else [BUREAU]
    keys = [bureau_keys(settings) if p == BUREAU else partner_keys(settings, p) for p in parties]
    print_json(
        {
            "format": PUBLIC_KEYS_FORMAT,
            "version": PUBLIC_KEYS_VERSION,
            "keys": [k.public().to_json() for k in keys],
        }
    )


def read_public_keys(file: Path) -> list[PublicKeys]:
    """The public keys of an export-public document; InputError naming the file and what is wrong."""
    try:
        text = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
        doc: Any = json.loads(text)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{file}: not a readable JSON document ({type(exc).__name__})") from None
    if not isinstance(doc, dict) or doc.get("format") != PUBLIC_KEYS_FORMAT:
        raise InputError(f"{file}: not a public keys document (issuance keys export-public writes one)")
    if doc.get("version") != PUBLIC_KEYS_VERSION or not isinstance(doc.get("keys"), list):
        raise InputError(
            f"{file}: public keys document version must be {PUBLIC_KEYS_VERSION} with a key list"
        )
    keys = []
    for at, entry in enumerate(doc["keys"]):
        try:
            keys.append(PublicKeys.from_json(entry))
        except ConfigurationError as exc:
            raise InputError(f"{file}: keys[{at}]: {exc}") from None
    return keys


@keys_app.command("register")
@command
def register_keys(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A document of `issuance keys export-public` (- for stdin).")],
    operator: OperatorOption,
    as_json: JsonOpt = False,
) -> None:
    """Register the public keys in FILE (idempotent; a key id or key of another party is refused)."""
    settings = load_settings(ctx)
    actor = operator_identity(operator)
    keys = read_public_keys(file)
    added: list[str] = []
    with _connect(settings) as conn:
        for public in keys:
            added.extend(party_keys_repo.register(conn, public, actor=actor))
    known = [kid for public in keys for kid in (public.sign_key_id, public.seal_key_id) if kid not in added]
    if as_json:
        print_json({"registered": added, "already_registered": known})
        return
    for kid in added:
        typer.echo(f"registered {kid}")
    for kid in known:
        typer.echo(f"already registered {kid}")


@keys_app.command("list")
@command
def list_registered(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Every registered public key: id, party, purpose, when and by whom registered, when revoked."""
    settings = load_settings(ctx)
    with _connect(settings) as conn:
        rows = party_keys_repo.list_keys(conn)
    if as_json:
        print_json(
            [
                {
                    "key_id": r.key_id,
                    "party": r.party,
                    "purpose": r.purpose,
                    "registered_at": r.registered_at.isoformat(),
                    "registered_by": r.registered_by,
                    "revoked_at": r.revoked_at.isoformat() if r.revoked_at else None,
                }
                for r in rows
            ]
        )
        return
    if not rows:
        typer.echo("no keys are registered")
        return
    for r in rows:
        revoked = f"revoked {r.revoked_at:%Y-%m-%d %H:%M}" if r.revoked_at else "valid"
        typer.echo(
            f"{r.key_id:<44} {r.party:<20} {r.purpose:<4}  {r.registered_at:%Y-%m-%d %H:%M}"
            f"  {r.registered_by:<16} {revoked}"
        )


@keys_app.command("revoke")
@command
def revoke_key(
    ctx: typer.Context,
    key_id: Annotated[str, typer.Argument(metavar="KEY_ID", help="The key id (see `issuance keys list`).")],
    operator: OperatorOption,
) -> None:
    """Revoke a key: messages, channels and files it signs are refused from the next verifier on (each night
    and each consumer start), and nothing is sealed to it any more."""
    settings = load_settings(ctx)
    actor = operator_identity(operator)
    with _connect(settings) as conn:
        changed = party_keys_repo.revoke(conn, key_id, actor=actor)
    typer.echo(f"revoked {key_id}" if changed else f"{key_id} was already revoked")
