"""The set-based SQL follows the lifecycle model: each statement that selects or moves applications and cards
by state is run against one row per combination of states the tables allow, and picks exactly the rows that
its Python twin `lifecycle.step` allows, moving them where `step` says."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest

from issuance.crypto import Vault
from issuance.domain.lifecycle import (
    OPEN_STATES,
    ApplicationState,
    CardStatus,
    FinancialStatus,
    Lifecycle,
    TransitionRefused,
    Trigger,
    step,
)
from issuance.domain.model import ApplicationType
from issuance.settings import Settings
from issuance.store import personalization_repo
from issuance.store.db import connect
from issuance.store.run_repo import Conn
from tests import factories

SUBMITTED_AT = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)
# A card numbered in the past (the table wants numbers on a card from IN_PRODUCTION on).
NUMBERED = frozenset(CardStatus) - {CardStatus.ORDERED, CardStatus.CANCELLED}


@dataclass(frozen=True)
class Case:
    """One application row, its card row (or none) and its account row (or none), in the given states."""

    application_id: str
    lifecycle: Lifecycle


def cases(application_type: ApplicationType) -> list[Case]:
    """Every combination of the three sides (and retry_due where the table allows it)."""
    found = []
    combos = itertools.product(ApplicationState, [None, *CardStatus], FinancialStatus, (False, True))
    for n, (state, card, financial, retry_due) in enumerate(combos):
        if retry_due and state is not ApplicationState.ACCEPTED:
            continue  # the table refuses it (applications_retry_due_only_accepted)
        lifecycle = Lifecycle(application_type, state, card, financial, retry_due)
        found.append(Case(f"APP-LC-{application_type.value[:3]}-{n:04d}", lifecycle))
    return found


def allowed(case: Case, trigger: Trigger) -> Lifecycle | None:
    """Where `step` takes the case on `trigger`, or None when it refuses."""
    try:
        return step(case.lifecycle, trigger).after
    except TransitionRefused:
        return None


def store(conn: Conn, vault: Vault, every: list[Case]) -> None:
    """Insert the cases (one person each, so no rule about one open application per person interferes)."""
    for n, case in enumerate(every):
        lc = case.lifecycle
        id_number = factories.id_number(
            factories.AREA, sequence=n % 900 + 1, birth=date(1960 + n // 900, 1, 1)
        )
        person_key = vault.blind_index(id_number)
        conn.execute(
            "INSERT INTO applications (application_id, application_type, branch_code, bank_code, channel,"
            " person_key, id_number_enc, name_enc, materials, submitted_at, area_code, state, is_open,"
            " retry_due, slot) VALUES (%s, %s, %s, %s, 'COUNTER', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                case.application_id,
                lc.application_type.value,
                factories.BRANCH,
                factories.BANK,
                person_key,
                vault.encrypt(id_number),
                vault.encrypt("持卡人"),
                ["RESIDENT_ID_CARD", "HOUSEHOLD_REGISTER"],
                SUBMITTED_AT,
                factories.AREA,
                lc.state.value,
                lc.state in OPEN_STATES,
                lc.retry_due,
                700_000 + n,
            ),
        )
        if lc.card is not None:
            numbered = lc.card in NUMBERED
            conn.execute(
                "INSERT INTO cards (application_id, person_key, area_code, bank_code, branch_code, status,"
                " card_number, card_identification_code, sequence)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    case.application_id,
                    person_key,
                    factories.AREA,
                    factories.BANK,
                    factories.BRANCH,
                    lc.card.value,
                    f"L{n:08d}" if numbered else None,
                    f"{n:032X}" if numbered else None,
                    700_000 + n if numbered else None,
                ),
            )
        if lc.financial is not FinancialStatus.NONE:
            conn.execute(
                "INSERT INTO bank_accounts (application_id, bank_code, status) VALUES (%s, %s, %s)",
                (case.application_id, factories.BANK, lc.financial.value),
            )


@pytest.fixture
def new_cards(settings: Settings, database_url: str) -> Iterator[list[Case]]:
    every = cases(ApplicationType.NEW_CARD)
    with connect(database_url) as conn:
        store(conn, Vault.from_settings(settings), every)
        conn.commit()
    yield every


def test_the_cards_due_for_personalization_are_those_the_model_lets_be_personalized(
    new_cards: list[Case], database_url: str
) -> None:
    with connect(database_url) as conn:
        due = {i for chunk in personalization_repo.list_due(conn, 10_000) for i in chunk}
    expected = {c.application_id for c in new_cards if allowed(c, Trigger.CARD_PERSONALIZED) is not None}
    assert expected  # the cases hold some
    assert due == expected
