"""What each page shows, as plain JSON-ready dicts: the pages and the JSON API render the same reads."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import psycopg

from dashboard import labels
from issuance.crypto import DecryptionFailed, Vault
from issuance.domain.masking import mask_id_number, mask_name, mask_phone
from issuance.store import dashboard_queries as q
from issuance.store.card_view import card_view, steps
from issuance.store.outbox_queries import set_aside_events
from issuance.store.report_queries import (
    AGE_BUCKETS,
    Filters,
    Role,
    Scope,
    counts_by_reason,
    lifecycle_backlogs,
    uncollected,
)


def overview(conn: psycopg.Connection, scope: Scope, filters: Filters) -> dict[str, Any]:
    """The lifecycle funnel (seven steps) and the counts per state."""
    f = q.funnel(conn, scope, filters)
    return {
        "total": f.total,
        "funnel": [asdict(r) for r in f.rows],
        "by_state": f.by_state,
        "rejected_in_verification": f.rejected_in_verification,
        "rejected_for_agreement": f.rejected_for_agreement,
    }


def reasons(conn: psycopg.Connection, scope: Scope, filters: Filters) -> dict[str, Any]:
    """Rejections per reason, with each reason's share of the rejected applications."""
    counts = counts_by_reason(conn, scope, filters)
    rejected = q.funnel(conn, scope, filters).by_state["REJECTED"]
    rows = [
        {
            "reason": code,
            "label": labels.reason(code),
            "count": n,
            "share": n / rejected if rejected else None,
        }
        for code, n in counts.items()
    ]
    return {"rejected": rejected, "reasons": rows}


def backlog(
    conn: psycopg.Connection, scope: Scope, filters: Filters, *, reminder_days: int = 30
) -> dict[str, Any]:
    """The bank's, the vendor's and the branch's backlogs by age, the applications awaiting agreement, and the
    branches whose cards wait for their holders longer than `reminder_days` days."""
    return {
        "backlogs": [asdict(b) for b in lifecycle_backlogs(conn, scope, filters)],
        "reminders": {
            "after_days": reminder_days,
            "branches": [asdict(r) for r in uncollected(conn, scope, reminder_days, filters)],
        },
        "agreement": asdict(q.agreement_backlog(conn, scope, filters)),
        "buckets": [label for label, _, _ in AGE_BUCKETS],
    }


def runs(conn: psycopg.Connection, scope: Scope, filters: Filters) -> dict[str, Any]:
    """The latest nightly runs."""
    rows = []
    for r in q.runs(conn, scope, filters):
        row = asdict(r)
        row["duration_s"] = r.duration_s
        row["throughput"] = r.throughput
        rows.append(row)
    return {"runs": rows}


def dead_letters(conn: psycopg.Connection, scope: Scope, filters: Filters) -> dict[str, Any]:
    """Dead letters per reason and masked samples (never the payload), and the events set aside."""
    counts, samples = q.dead_letters(conn, scope, filters)
    return {
        "by_reason": [{"reason": k, "label": labels.dead_letter(k), "count": n} for k, n in counts.items()],
        "samples": [asdict(s) for s in samples],
        # Outgoing events the broker will not take: an operator's matter, shown to the bureau only.
        "events_set_aside": [asdict(e) for e in set_aside_events(conn)] if scope.role is Role.BUREAU else [],
    }


def _masked(vault: Vault, envelope: bytes | None, mask: Any) -> str | None:
    """Decrypt and mask one field; never the plain value."""
    if envelope is None:
        return None
    try:
        return str(mask(vault.decrypt(envelope)))
    except DecryptionFailed:
        return "(cannot be decrypted with the configured keys)"


def application(
    conn: psycopg.Connection, scope: Scope, vault: Vault, application_id: str
) -> dict[str, Any] | None:
    """One application with masked personal data, both sides of its card (account masked) and every step of
    both, or None (absent or not yours)."""
    found = q.application(conn, scope, application_id)
    if found is None:
        return None
    app, history = found
    data = asdict(app)
    for enc in ("id_number_enc", "name_enc", "phone_enc"):
        data.pop(enc)
    data["applicant"] = {
        "id_number": _masked(vault, app.id_number_enc, mask_id_number),
        "name": _masked(vault, app.name_enc, mask_name),
        "phone": _masked(vault, app.phone_enc, mask_phone),
    }
    data["state_label"] = labels.state(app.state)
    data["reason_labels"] = [labels.reason(r) for r in app.reasons]
    data["history"] = [asdict(h) for h in history]
    try:
        card, card_of = card_view(conn, vault, app)
    except DecryptionFailed:
        card, card_of = None, None
    data["card"] = card
    data["steps"] = steps(conn, app.application_id, card_of, card["collected_by"] if card else None)
    return data


def choices(conn: psycopg.Connection, scope: Scope) -> dict[str, Any]:
    """The filter bar's options for this reader."""
    return asdict(q.choices(conn, scope))
