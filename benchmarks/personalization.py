"""The personalization phase of the nightly benchmark: the banks open the accounts, the next night numbers
the cards.

After the benchmark's night, every accepted new card's account is marked OPENED directly in SQL, with the
account number a bank would assign (its BIN and the application's slot, Luhn digit; sealed with its blind
index), as the banks' answers would have left it. Then the next night runs (nothing new on the topics) and
personalizes them: the Beam stage, the final transaction's apply and the vendor files are what it measures.

The phase measures the same work on data of either acceptance flow: an accepted new-card application without
a card gets its card ORDERED (as the night's acceptance orders it), and a card numbered at acceptance by an
older night (IN_PRODUCTION, in no run's vendor file) is put back to ORDERED without numbers.
"""

from __future__ import annotations

import time
from datetime import date, timedelta
from typing import Any

from issuance.crypto import Vault
from issuance.domain.lifecycle import CardStatus, FinancialStatus
from issuance.domain.numbers import bank_account_number
from issuance.settings import Settings
from issuance.store.db import connect, copy_rows

_ORDER_MISSING_CARDS = """
INSERT INTO cards (application_id, person_key, area_code, bank_code, branch_code, status, run_id)
SELECT a.application_id, a.person_key, a.area_code, a.bank_code, a.branch_code, %(ordered)s, a.last_run_id
FROM applications a
WHERE a.state = 'ACCEPTED' AND a.application_type = 'NEW_CARD' AND a.slot IS NOT NULL
ON CONFLICT (application_id) DO NOTHING
"""
_ACCEPTED_NEW_CARDS = """
SELECT a.application_id, a.bank_code, k.bin, a.slot
FROM applications a JOIN cards c USING (application_id) JOIN banks k ON k.bank_code = a.bank_code
LEFT JOIN bank_accounts b USING (application_id)
WHERE a.state = 'ACCEPTED' AND a.application_type = 'NEW_CARD' AND a.slot IS NOT NULL
  AND c.status = %(ordered)s AND (b.status IS NULL OR b.status = %(requested)s)
ORDER BY a.application_id
"""


def open_accounts(settings: Settings, database_url: str) -> int:
    """Every accepted new card's account OPENED with a bank's number, as the banks would; returns how many."""
    vault = Vault.from_settings(settings)
    with connect(database_url) as conn:
        conn.execute(
            "UPDATE cards SET status = %s, card_number = NULL, card_identification_code = NULL,"
            " sequence = NULL, issue_date = NULL, valid_until = NULL"
            " WHERE status = %s AND production_run_id IS NULL",
            (CardStatus.ORDERED.value, CardStatus.IN_PRODUCTION.value),
        )
        states = {"ordered": CardStatus.ORDERED.value, "requested": FinancialStatus.REQUESTED.value}
        conn.execute(_ORDER_MISSING_CARDS, states)
        rows = conn.execute(_ACCEPTED_NEW_CARDS, states).fetchall()
        numbers = [bank_account_number(str(bin_), int(slot)) for _app, _bank, bin_, slot in rows]
        sealed = vault.encrypt_many(numbers)
        conn.execute(
            "CREATE TEMPORARY TABLE opened (application_id text, bank_code text, account_index bytea,"
            " account_number_enc bytea) ON COMMIT DROP"
        )
        copy_rows(
            conn,
            "opened",
            ("application_id", "bank_code", "account_index", "account_number_enc"),
            (
                (app, bank, vault.blind_index(number), enc)
                for (app, bank, _bin, _slot), number, enc in zip(rows, numbers, sealed, strict=True)
            ),
        )
        conn.execute(
            "INSERT INTO bank_accounts (application_id, bank_code, account_index, account_number_enc, status,"
            " opened_at) SELECT application_id, bank_code, account_index, account_number_enc, %s, now()"
            " FROM opened ON CONFLICT (application_id) DO UPDATE SET status = excluded.status,"
            " opened_at = excluded.opened_at, account_index = excluded.account_index,"
            " account_number_enc = excluded.account_number_enc",
            (FinancialStatus.OPENED.value,),
        )
        conn.commit()
    return len(rows)


def personalization_night(settings: Settings, database_url: str, after: str) -> dict[str, Any]:
    """Open the accounts, run the night after `after` (YYYY-MM-DD) and return its figures."""
    from pipelines import nightly

    t0 = time.monotonic()
    opened = open_accounts(settings, database_url)
    open_s = time.monotonic() - t0
    next_day = (date.fromisoformat(after) + timedelta(days=1)).isoformat()
    result = nightly.run(["--business-date", next_day], settings=settings)
    cards = int(result.reconciliation["lifecycle"]["personalized"])
    total = result.timings["total_s"]
    return {
        "accounts_opened": opened,
        "open_accounts_s": round(open_s, 2),
        "cards_personalized": cards,
        "by_vendor": result.reconciliation["lifecycle"]["by_vendor"],
        "night_s": round(total, 2),
        "timings_s": {k: round(v, 2) for k, v in result.timings.items()},
        "apply_s": result.reconciliation["run"]["commit_timings_s"].get("personalize_cards"),
        "cards_per_s": round(cards / total) if total else 0,
        "stage_cards_per_s": result.counters.get("personalize.cards_per_s", 0),
        "balanced": result.balanced,
    }
