"""One application's card on both sides and every step of the application and its card, as `issuance status`
and the dashboard's application page show them (account number masked).

The card is the one ordered for a NEW_CARD application, or, for a FINANCIAL_ACTIVATION, the card it
activates: one this system issued, or a registry card mapped onto the lifecycle (`registry_card`)."""

from __future__ import annotations

from typing import Any, Protocol

from issuance.crypto import Vault
from issuance.domain.lifecycle import ApplicationState, CardStatus, FinancialStatus, registry_card
from issuance.domain.masking import mask_account
from issuance.domain.model import ApplicationType, RegistryCardStatus, RegistryFinancialStatus
from issuance.store import status_queries as q


class Application(Protocol):
    """What the card lookup needs of an application row."""

    @property
    def application_id(self) -> str: ...
    @property
    def application_type(self) -> str: ...
    @property
    def card_number(self) -> str | None: ...


def card_view(conn: q.Conn, vault: Vault, app: Application) -> tuple[dict[str, Any] | None, str | None]:
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
                # At the same instant, a card's step causes the application's completion or failure and
                # follows from its acceptance.
                2 if h.to_state in (ApplicationState.COMPLETED, ApplicationState.FAILED) else 0,
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
