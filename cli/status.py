"""`issuance status APPLICATION_ID`: one application, both sides of its card and every step, personal data
masked. The JSON keys are a contract (README, "issuance status")."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli.common import command, load_settings, print_json
from issuance.crypto import Vault
from issuance.domain.lifecycle import CardStatus, FinancialStatus, registry_card
from issuance.domain.masking import mask_account, mask_id_number, mask_name, mask_phone
from issuance.domain.model import ApplicationType, RegistryCardStatus, RegistryFinancialStatus
from issuance.errors import InputError
from issuance.services.endpoints import resolve
from issuance.store import status_queries as q
from issuance.store.db import connect


def _card(conn: q.Conn, vault: Vault, app: q.ApplicationRow) -> tuple[dict[str, Any] | None, str | None]:
    """The application's card on both sides, and the NEW_CARD application whose card history it has."""
    own = (
        q.card(conn, app.application_id)
        if app.application_type == ApplicationType.NEW_CARD
        else (q.card_by_number(conn, app.card_number) if app.card_number else None)
    )
    if own is not None:
        account = q.account(conn, own.application_id)
        number = (
            mask_account(vault.decrypt(account.account_number_enc))
            if account is not None and account.account_number_enc is not None
            else None
        )
        return {
            "issued_by": "this system",
            "card_number": own.card_number,
            "status": own.status,
            "financial_status": account.status if account else FinancialStatus.NONE.value,
            "account_number": number,
            "bank_code": own.bank_code,
            "branch_code": own.branch_code,
            "vendor_code": own.vendor_code,
            "chip_serial": own.chip_serial,
            "productions": own.productions,
            "production_failures": own.production_failures,
            "issue_date": own.issue_date.isoformat() if own.issue_date else None,
            "valid_until": own.valid_until.isoformat() if own.valid_until else None,
            "ordered_for": own.application_id,
            "collected_by": own.collected_by,
        }, own.application_id
    listed = q.registry_card(conn, app.card_number) if app.card_number else None
    if listed is None:
        return None, None
    status, financial = registry_card(
        RegistryCardStatus(listed.status), RegistryFinancialStatus(listed.financial_status)
    )
    return {
        "issued_by": "registry",
        "card_number": listed.card_number,
        "status": status.value,
        "financial_status": financial.value,
        "account_number": None,  # the bank knows the account bound to a registry card
        "bank_code": listed.bank_code,
        "branch_code": None,
        "vendor_code": None,
        "chip_serial": None,
        "productions": 0,
        "production_failures": 0,
        "issue_date": None,
        "valid_until": None,
        "ordered_for": None,
        "collected_by": None,
    }, None


def _source(source: str, run_id: int | None) -> str:
    """Where a step came from: `nightly run N`, `bank:<code>`, `vendor:<code>`, `branch:<code>`, ..."""
    if source == "nightly" and run_id is not None:
        return f"nightly run {run_id}"
    return source


def steps(
    conn: q.Conn, application_id: str, card_of: str | None, collected_by: str | None
) -> list[dict[str, Any]]:
    """The application's steps and its card's (both sides), merged in time order."""
    merged: list[tuple[Any, int, dict[str, Any]]] = []
    for h in q.history(conn, application_id):
        merged.append(
            (
                h.at,
                0,
                {
                    "at": h.at.isoformat(),
                    "side": "application",
                    "from": h.from_state,
                    "to": h.to_state,
                    "source": f"nightly run {h.run_id}" if h.run_id is not None else h.stage,
                    "operator": None,
                    "reasons": h.reasons,
                    "detail": h.detail,
                },
            )
        )
    for c in q.card_history(conn, card_of) if card_of else []:
        collected = c.side == "card" and c.to_status == CardStatus.ISSUED
        merged.append(
            (
                c.at,
                1,
                {
                    "at": c.at.isoformat(),
                    "side": c.side,
                    "from": c.from_status,
                    "to": c.to_status,
                    "source": _source(c.source, c.run_id),
                    "operator": collected_by if collected else None,
                    "reasons": [],
                    "detail": c.detail,
                },
            )
        )
    return [step for _, _, step in sorted(merged, key=lambda m: (m[0], m[1]))]


def describe(conn: q.Conn, vault: Vault, application_id: str) -> dict[str, Any]:
    """Everything `status` shows about one application; InputError when it is unknown (keys: README)."""
    app = q.application(conn, application_id)
    if app is None:
        raise InputError(
            f"no application {application_id!r}: check the id (issuance report lists the counts)"
        )
    card, card_of = _card(conn, vault, app)
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
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON document.")] = False,
) -> None:
    """Show an application, its card's two sides and every step (personal data masked); exit 2 if unknown."""
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
