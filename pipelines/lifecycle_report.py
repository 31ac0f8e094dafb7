"""The lifecycle part of a run's reconciliation: what happened to the cards since the previous run, and two
balance checks.

- `personalized`: cards this run put IN_PRODUCTION, and `by_vendor` (the vendor file each went into);
  `waiting_for_vendor`: due cards of areas no vendor makes (they stay ORDERED), by area.
- `since_previous_run`: from `card_history`, the steps recorded after the previous successful run's
  reconciliation (rows above its `history_upto` mark): accounts opened, cards produced, received at the
  branch, collected, savings functions activated. A step whose transaction commits while the night reads is
  counted by the next run.
- `cards_by_status` and the checks: every card in exactly one known status; every card this run personalized
  in exactly one vendor file (a vendor assigned, its `production_run_id` this run). A run that fails either
  does not balance, and is rolled back.
"""

from __future__ import annotations

from typing import Any

from issuance.domain.lifecycle import CardStatus, FinancialStatus
from issuance.store.personalization_repo import personalized_in_run
from issuance.store.run_repo import Conn

# (name, side, status reached)
STEPS = (
    ("accounts_opened", "financial", FinancialStatus.OPENED),
    ("cards_produced", "card", CardStatus.PRODUCED),
    ("cards_received_at_branch", "card", CardStatus.AT_BRANCH),
    ("cards_collected", "card", CardStatus.ISSUED),
    ("savings_activated", "financial", FinancialStatus.ACTIVE),
)


def _previous_mark(conn: Conn, run_id: int) -> int:
    row = conn.execute(
        "SELECT coalesce((reconciliation -> 'lifecycle' ->> 'history_upto')::bigint, 0) FROM runs"
        " WHERE status = 'SUCCEEDED' AND run_id < %s ORDER BY run_id DESC LIMIT 1",
        (run_id,),
    ).fetchone()
    return int(row[0]) if row else 0


def lifecycle_report(conn: Conn, run_id: int) -> dict[str, Any]:
    """The run's lifecycle section (inside its final transaction, before staging is cleared)."""
    personalized = personalized_in_run(conn, run_id)
    by_vendor = {
        str(vendor): int(n)
        for vendor, n in conn.execute(
            "SELECT coalesce(vendor_code, ''), count(*) FROM cards WHERE production_run_id = %s"
            " GROUP BY 1 ORDER BY 1",
            (run_id,),
        )
    }
    waiting = {
        str(area): int(n)
        for area, n in conn.execute(
            "SELECT c.area_code, count(*) FROM staged_cards s JOIN cards c USING (application_id)"
            " WHERE s.run_id = %s AND s.vendor_code IS NULL GROUP BY 1 ORDER BY 1",
            (run_id,),
        )
    }
    previous = _previous_mark(conn, run_id)
    mark_row = conn.execute("SELECT coalesce(max(id), 0) FROM card_history").fetchone()
    upto = int(mark_row[0]) if mark_row else 0
    reached = {
        (str(side), str(status)): int(n)
        for side, status, n in conn.execute(
            "SELECT side, to_status, count(*) FROM card_history WHERE id > %s AND id <= %s GROUP BY 1, 2",
            (previous, upto),
        )
    }
    since = {name: reached.get((side, status.value), 0) for name, side, status in STEPS}
    by_status = {
        str(status): int(n)
        for status, n in conn.execute("SELECT status, count(*) FROM cards GROUP BY 1 ORDER BY 1")
    }
    total_row = conn.execute("SELECT count(*) FROM cards").fetchone()
    total = int(total_row[0]) if total_row else 0
    known = {s.value for s in CardStatus}
    one_status = total == sum(by_status.values()) and set(by_status) <= known
    one_file = "" not in by_vendor and sum(by_vendor.values()) == personalized
    return {
        "personalized": personalized,
        "by_vendor": by_vendor,
        "waiting_for_vendor": waiting,
        "since_previous_run": since,
        "history_upto": upto,
        "cards_by_status": by_status,
        "checks": {
            "cards": total,
            "every_card_in_one_status": one_status,
            "every_personalized_card_in_one_vendor_file": one_file,
        },
        "balanced": one_status and one_file,
    }
