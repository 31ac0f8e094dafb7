"""`issuance status APPLICATION_ID`: one application's state and history, personal data masked."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli.common import command, load_settings, print_json
from issuance.crypto import Vault
from issuance.domain.masking import mask_account, mask_id_number, mask_name, mask_phone
from issuance.errors import InputError
from issuance.services.endpoints import resolve
from issuance.store import status_queries as q
from issuance.store.db import connect


def describe(conn: q.Conn, vault: Vault, application_id: str) -> dict[str, Any]:
    """Everything `status` shows about one application; InputError when it is unknown."""
    app = q.application(conn, application_id)
    if app is None:
        raise InputError(
            f"no application {application_id!r}: check the id (issuance report lists the counts)"
        )
    card = q.card(conn, application_id)
    account = q.account(conn, application_id)
    return {
        "application_id": app.application_id,
        "application_type": app.application_type,
        "state": app.state,
        "reasons": app.reasons,
        "open": app.is_open,
        "bank_refusals": app.bank_refusals,
        "branch_code": app.branch_code,
        "bank_code": app.bank_code,
        "area_code": app.area_code,
        "channel": app.channel,
        "agreement_id": app.agreement_id,
        "submitted_at": app.submitted_at.isoformat(),
        "updated_at": app.updated_at.isoformat(),
        "applicant": {
            "id_number": mask_id_number(vault.decrypt(app.id_number_enc)),
            "name": mask_name(vault.decrypt(app.name_enc)),
            "phone": mask_phone(vault.decrypt(app.phone_enc)) if app.phone_enc else None,
        },
        "card": (
            {
                "card_number": card.card_number,
                "status": card.status,
                "issue_date": card.issue_date.isoformat(),
                "valid_until": card.valid_until.isoformat(),
            }
            if card
            else ({"card_number": app.card_number, "status": "EXISTING"} if app.card_number else None)
        ),
        "account": (
            {
                "bank_code": account.bank_code,
                "status": account.status,
                # None for an existing card: the bank switches on the account bound to the card.
                "account_number": (
                    mask_account(vault.decrypt(account.account_number_enc))
                    if account.account_number_enc is not None
                    else None
                ),
            }
            if account
            else None
        ),
        "history": [
            {
                "at": h.at.isoformat(),
                "from": h.from_state,
                "to": h.to_state,
                "stage": h.stage,
                "reasons": h.reasons,
                "run_id": h.run_id,
                "detail": h.detail,
            }
            for h in q.history(conn, application_id)
        ],
    }


def _print(view: dict[str, Any]) -> None:
    reasons = f" ({', '.join(view['reasons'])})" if view["reasons"] else ""
    typer.echo(
        f"{view['application_id']}  {view['application_type']}  {view['state']}{reasons}"
        + ("  [open]" if view["open"] else "")
    )
    applicant = view["applicant"]
    typer.echo(
        f"  applicant  {applicant['name']}  {applicant['id_number']}  {applicant['phone'] or ''}".rstrip()
    )
    typer.echo(
        f"  branch     {view['branch_code']}  bank {view['bank_code']}  area {view['area_code'] or '-'}"
    )
    if view["card"]:
        card = view["card"]
        typer.echo(
            f"  card       {card['card_number']}  {card['status']}"
            + (f"  valid {card['issue_date']}..{card['valid_until']}" if "issue_date" in card else "")
        )
    if view["account"]:
        account = view["account"]
        typer.echo(f"  account    {account['account_number']}  {account['status']}")
    if view["bank_refusals"]:
        typer.echo(f"  activation attempts failed: {view['bank_refusals']}")
    typer.echo("  history")
    for h in view["history"]:
        change = f"{h['from'] or '-'} -> {h['to']}"
        extra = ", ".join(h["reasons"]) or h["detail"] or ""
        run = f" run {h['run_id']}" if h["run_id"] else ""
        typer.echo(f"    {h['at'][:19]}  {h['stage']:<12} {change:<44}{run}  {extra}".rstrip())


@command
def status(
    ctx: typer.Context,
    application_id: Annotated[str, typer.Argument(help="The application id, as the branch submitted it.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON document.")] = False,
) -> None:
    """Show an application's state, card, account and history (personal data masked); exit 2 if unknown."""
    settings = load_settings(ctx)
    endpoints = resolve(settings)
    with connect(endpoints.database_url, autocommit=True, application_name="issuance-status") as conn:
        view = describe(conn, Vault.from_settings(settings), application_id)
    if as_json:
        print_json(view)
    else:
        _print(view)


def register(app: typer.Typer) -> None:
    """Add the `status` command."""
    app.command("status")(status)
