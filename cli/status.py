"""`issuance status APPLICATION_ID`: one application, both sides of its card and every step, personal data
masked. The JSON keys are a contract (README, "issuance status")."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli import language
from cli.common import OperatorOption, command, load_settings, operator_identity, print_json
from cli.language import _
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
            _("no application {application_id}: check the id (issuance report lists the counts)").format(
                application_id=repr(application_id)
            )
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


def _source(source: str) -> str:
    """Where a step came from, for the operator: a nightly run in words, a party's code as recorded."""
    prefix = "nightly run "
    if source.startswith(prefix):
        return _("nightly run {run_id}").format(run_id=source.removeprefix(prefix))
    return source


def _side(side: str) -> str:
    """The side of a step: the application, the card (social-security side) or the savings (financial)."""
    return {"application": _("application"), "card": _("card"), "financial": _("savings")}.get(side, side)


def _print(view: dict[str, Any]) -> None:
    app = view["application"]
    reasons = f" ({', '.join(app['reasons'])})" if app["reasons"] else ""
    typer.echo(
        f"{app['application_id']}  {app['application_type']}  {app['state']}{reasons}"
        f"  {language.state(app['state'])}"
        + ("  [" + _("open") + "]" if app["open"] else "")
        + ("  [" + _("asked again next night") + "]" if app["retry_due"] else "")
    )
    for code in app["reasons"]:
        typer.echo(f"  {language.left(code, 26)} {language.reason(code)}")
    applicant = view["applicant"]
    row = _row_labels()
    bank, area = _("bank"), _("area")
    typer.echo(
        f"  {row['applicant']} {applicant['name']}  {applicant['id_number']}"
        f"  {applicant['phone'] or ''}".rstrip()
    )
    typer.echo(
        f"  {row['branch']} {app['branch_code']}  {bank} {app['bank_code']}  {area} {app['area_code'] or '-'}"
    )
    card = view["card"]
    if card:
        valid = (
            "  " + _("valid {start}..{end}").format(start=card["issue_date"], end=card["valid_until"])
            if card["issue_date"]
            else ""
        )
        unnumbered = _("(not yet numbered)")
        issued_by = _("this system") if card["issued_by"] == "this system" else _("registry")
        typer.echo(
            f"  {row['card']} {card['card_number'] or unnumbered}"
            f"  {card['status']} {language.state(card['status'], 'card')}  ({issued_by}){valid}"
        )
        made = "  ".join(
            f"{name} {card[key]}"
            for name, key in (
                (_("vendor"), "vendor_code"),
                (_("chip"), "chip_serial"),
                (_("branch"), "branch_code"),
            )
            if card[key]
        )
        if made:
            typer.echo(f"  {row['']} {made}")
        typer.echo(
            f"  {row['savings']} {card['account_number'] or '-'}"
            f"  {card['financial_status']} {language.state(card['financial_status'], 'financial')}"
            f"  {bank} {card['bank_code']}"
        )
    if app["bank_refusals"]:
        typer.echo("  " + _("refused by the bank: {count} time(s)").format(count=app["bank_refusals"]))
    typer.echo("  " + _("steps"))
    for h in view["steps"]:
        change = f"{_side(h['side'])}: {h['from'] or '-'} -> {h['to']}"
        extra = ", ".join(h["reasons"]) or h["detail"] or ""
        who = f" ({h['operator']})" if h["operator"] else ""
        at = language.left(language.moment(h["at"]), 19)
        typer.echo(f"    {at}  {language.left(change, 46)} {_source(h['source'])}{who}  {extra}".rstrip())


def _row_labels() -> dict[str, str]:
    """The labels of the rows, padded to the widest in the invocation's language (at least 9 columns)."""
    labels = {"applicant": _("applicant"), "branch": _("branch"), "card": _("card"), "savings": _("savings")}
    width = max(9, *(language.columns(text) for text in labels.values()))
    return {key: language.left(text, width) for key, text in {**labels, "": ""}.items()}


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
