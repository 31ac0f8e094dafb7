"""`issuance status APPLICATION_ID`: one application, both sides of its card and every step, personal data
masked. The JSON keys are a contract (README, "issuance status")."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli.common import OperatorOption, command, load_settings, operator_identity, print_json
from issuance.crypto import Vault
from issuance.domain.masking import mask_id_number, mask_name, mask_phone
from issuance.errors import InputError
from issuance.services.endpoints import resolve
from issuance.store import status_queries as q
from issuance.store.audit import NOT_SHOWN, record_action
from issuance.store.card_view import card_view, steps
from issuance.store.db import connect
from issuance.store.roles import OPERATOR, in_role


def describe(conn: q.Conn, vault: Vault, application_id: str) -> dict[str, Any]:
    """Everything `status` shows about one application; InputError when it is unknown (keys: README)."""
    app = q.application(conn, application_id)
    if app is None:
        raise InputError(
            f"no application {application_id!r}: check the id (issuance report lists the counts)"
        )
    card, card_of = card_view(conn, vault, app)
    return {
        "application": {
            "application_id": app.application_id,
            "application_type": app.application_type,
            "state": app.state,
            "reasons": app.reasons,
            "open": app.is_open,
            "retry_due": app.retry_due,
            "bank_refusals": app.bank_refusals,
            "branch_code": app.branch_code,
            "bank_code": app.bank_code,
            "area_code": app.area_code,
            "channel": app.channel,
            "agreement_id": app.agreement_id,
            "submitted_at": app.submitted_at.isoformat(),
            "updated_at": app.updated_at.isoformat(),
        },
        "applicant": {
            "id_number": mask_id_number(vault.decrypt(app.id_number_enc)),
            "name": mask_name(vault.decrypt(app.name_enc)),
            "phone": mask_phone(vault.decrypt(app.phone_enc)) if app.phone_enc else None,
        },
        "card": card,
        "steps": steps(conn, application_id, card_of, card["collected_by"] if card else None),
    }


def _print(view: dict[str, Any]) -> None:
    app = view["application"]
    reasons = f" ({', '.join(app['reasons'])})" if app["reasons"] else ""
    typer.echo(
        f"{app['application_id']}  {app['application_type']}  {app['state']}{reasons}"
        + ("  [open]" if app["open"] else "")
        + ("  [asked again next night]" if app["retry_due"] else "")
    )
    applicant = view["applicant"]
    typer.echo(
        f"  applicant  {applicant['name']}  {applicant['id_number']}  {applicant['phone'] or ''}".rstrip()
    )
    typer.echo(f"  branch     {app['branch_code']}  bank {app['bank_code']}  area {app['area_code'] or '-'}")
    card = view["card"]
    if card:
        typer.echo(
            f"  card       {card['card_number'] or '(not yet numbered)'}  {card['status']}"
            f"  ({card['issued_by']})"
            + (f"  valid {card['issue_date']}..{card['valid_until']}" if card["issue_date"] else "")
        )
        made = "  ".join(
            f"{label} {card[key]}"
            for label, key in (("vendor", "vendor_code"), ("chip", "chip_serial"), ("branch", "branch_code"))
            if card[key]
        )
        if made:
            typer.echo(f"             {made}")
        typer.echo(
            f"  savings    {card['account_number'] or '-'}  {card['financial_status']}"
            f"  bank {card['bank_code']}"
        )
    if app["bank_refusals"]:
        typer.echo(f"  refused by the bank: {app['bank_refusals']} time(s)")
    typer.echo("  steps")
    for h in view["steps"]:
        change = f"{h['side']}: {h['from'] or '-'} -> {h['to']}"
        extra = ", ".join(h["reasons"]) or h["detail"] or ""
        who = f" ({h['operator']})" if h["operator"] else ""
        typer.echo(f"    {h['at'][:19]}  {change:<46} {h['source']}{who}  {extra}".rstrip())


@command
def status(
    ctx: typer.Context,
    application_id: Annotated[str, typer.Argument(help="The application id, as the branch submitted it.")],
    operator: OperatorOption,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON document.")] = False,
) -> None:
    """Show an application, its card's two sides and every step (personal data masked); exit 2 if unknown.

    A read of personal data: recorded in the audit log with the operator (the id, never what is shown)."""
    actor = operator_identity(operator)
    settings = load_settings(ctx)
    endpoints = in_role(resolve(settings), OPERATOR)
    with connect(endpoints.database_url, autocommit=True, application_name="issuance-status") as conn:
        try:
            view = describe(conn, Vault.from_settings(settings), application_id)
        except InputError:
            _record_read(conn, actor, NOT_SHOWN)
            raise
        _record_read(conn, actor, application_id)
    if as_json:
        print_json(view)
    else:
        _print(view)


def _record_read(conn: q.Conn, actor: str, entity_id: str) -> None:
    shown = entity_id != NOT_SHOWN
    detail = {"via": "status", "shown": shown}
    record_action(
        conn, actor=actor, action="application.read", entity="application", entity_id=entity_id, detail=detail
    )


def register(app: typer.Typer) -> None:
    """Add the `status` command."""
    app.command("status")(status)
