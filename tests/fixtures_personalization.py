"""Cards waiting for personalization, set up directly in PostgreSQL as the night's acceptance and the bank's
answer would leave them: an ACCEPTED new-card application with its slot, its card ORDERED (no numbers) and its
account at the bank (OPENED with the bank's number, or still REQUESTED)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

from issuance.crypto import Vault
from issuance.domain.model import ReferenceData, Vendor
from issuance.domain.numbers import bank_account_number
from issuance.store.db import connect
from tests import factories

VENDOR = "VENDOR-A"
SLOT_BASE = 9_000


def vendor_reference() -> ReferenceData:
    """`factories.reference()` with one vendor making AREA's cards; OTHER_AREA has none."""
    return replace(
        factories.reference(),
        vendors={VENDOR: Vendor(VENDOR, "华北智能卡制造中心", frozenset({factories.AREA}))},
    )


@dataclass(frozen=True)
class OrderedCard:
    """What a test set up for one card (the holder's data in clear, to check the vendor file against)."""

    application_id: str
    slot: int
    area_code: str
    branch_code: str
    bank_code: str
    id_number: str
    name: str
    account_number: str


def order_card(
    database_url: str,
    vault: Vault,
    n: int,
    *,
    area_code: str = factories.AREA,
    financial: str = "OPENED",
    bin_: str = "622202",
) -> OrderedCard:
    """Application APP-PERSO-<n> accepted with slot SLOT_BASE + n, its card ORDERED, its account `financial`
    (the bank's account number sealed with its blind index)."""
    card = OrderedCard(
        f"APP-PERSO-{n:04d}",
        SLOT_BASE + n,
        area_code,
        factories.BRANCH if area_code == factories.AREA else "BR-310115-001",
        factories.BANK if area_code == factories.AREA else factories.OTHER_BANK,
        factories.id_number(area_code, sequence=100 + n),
        f"持卡人{n}",
        bank_account_number(bin_, 500_000 + n),
    )
    person_key = vault.blind_index(card.id_number)
    with connect(database_url) as conn:
        conn.execute(
            "INSERT INTO applications (application_id, application_type, branch_code, bank_code, channel,"
            " person_key, id_number_enc, name_enc, materials, submitted_at, area_code, state, is_open, slot)"
            " VALUES (%s, 'NEW_CARD', %s, %s, 'COUNTER', %s, %s, %s, %s, %s, %s, 'ACCEPTED', true, %s)",
            (
                card.application_id,
                card.branch_code,
                card.bank_code,
                person_key,
                vault.encrypt(card.id_number),
                vault.encrypt(card.name),
                ["RESIDENT_ID_CARD", "HOUSEHOLD_REGISTER"],
                datetime(2026, 11, 1, 2, 0, tzinfo=UTC),
                area_code,
                card.slot,
            ),
        )
        conn.execute(
            "INSERT INTO cards (application_id, person_key, area_code, bank_code, branch_code, status)"
            " VALUES (%s, %s, %s, %s, %s, 'ORDERED')",
            (card.application_id, person_key, area_code, card.bank_code, card.branch_code),
        )
        conn.execute(
            "INSERT INTO bank_accounts (application_id, bank_code, account_index, account_number_enc, status,"
            " opened_at) VALUES (%s, %s, %s, %s, %s, CASE WHEN %s = 'OPENED' THEN now() END)",
            (
                card.application_id,
                card.bank_code,
                vault.blind_index(card.account_number),
                vault.encrypt(card.account_number),
                financial,
                financial,
            ),
        )
        conn.commit()
    return card


def open_account(database_url: str, application_id: str) -> None:
    """The bank opened the account (as its answer would record it)."""
    with connect(database_url) as conn:
        conn.execute(
            "UPDATE bank_accounts SET status = 'OPENED', opened_at = now() WHERE application_id = %s",
            (application_id,),
        )
        conn.execute(
            "INSERT INTO card_history (application_id, side, from_status, to_status, source)"
            " VALUES (%s, 'financial', 'REQUESTED', 'OPENED', 'bank:ICBC')",
            (application_id,),
        )
        conn.commit()
