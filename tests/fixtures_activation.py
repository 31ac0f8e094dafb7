"""Activation-stage test data: applications waiting for a bank, and the requests the night publishes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from kafka import KafkaProducer

from issuance.crypto import Vault
from issuance.domain import numbers
from issuance.domain.model import ApplicationType
from issuance.messages import ActivationRequested, activation_request_event_id
from issuance.settings import Settings
from issuance.store.consumer_repo import Conn
from issuance.store.db import connect
from tests.factories import BANK, BRANCH, id_number

BIN = "622202"
AREA = "110105"


@dataclass(frozen=True, slots=True)
class Waiting:
    """An application in ACTIVATION_REQUESTED, with what its request carries."""

    application_id: str
    bank_code: str
    card_number: str
    account_number: str
    id_number: str


def seed_bank(conn: Conn, bank_code: str = BANK, bin_: str = BIN) -> None:
    """A bank and a branch of it in the reference data."""
    conn.execute(
        "INSERT INTO banks (bank_code, name, bin, terms_version, area_codes) VALUES (%s, %s,"
        " %s, '2026.1', %s)"
        " ON CONFLICT DO NOTHING",
        (bank_code, f"bank {bank_code}", bin_, [AREA]),
    )
    conn.execute(
        "INSERT INTO branches (branch_code, bank_code, area_code, name) VALUES (%s, %s, %s, 'branch')"
        " ON CONFLICT DO NOTHING",
        (BRANCH, bank_code, AREA),
    )


def seed_waiting(settings: Settings, count: int, bank_code: str = BANK, start: int = 1) -> list[Waiting]:
    """`count` personalized NEW_CARD applications in ACTIVATION_REQUESTED, as the nightly run leaves them."""
    vault = Vault.from_settings(settings)
    assert settings.database_url is not None
    out: list[Waiting] = []
    with connect(settings.database_url.get_secret_value(), autocommit=True) as conn, conn.transaction():
        seed_bank(conn, bank_code)
        for n in range(start, start + count):
            app_id = f"APP-{n:06d}"
            ident = id_number(birth=date(1980, 1, 1 + n % 28), sequence=n % 1000)
            card = numbers.card_number(n)
            account = numbers.bank_account_number(BIN, n)
            conn.execute(
                "INSERT INTO applications (application_id, application_type, branch_code, bank_code, channel,"
                " person_key, id_number_enc, name_enc, materials, submitted_at, area_code, state, is_open)"
                " VALUES (%s, 'NEW_CARD', %s, %s, 'COUNTER', %s, %s, %s, %s, %s, %s,"
                " 'ACTIVATION_REQUESTED', true)",
                (
                    app_id,
                    BRANCH,
                    bank_code,
                    vault.blind_index(f"{ident}/{n}"),
                    vault.encrypt(ident),
                    vault.encrypt("张伟"),
                    ["RESIDENT_ID_CARD", "HOUSEHOLD_REGISTER"],
                    datetime(2026, 11, 1, tzinfo=UTC),
                    AREA,
                ),
            )
            conn.execute(
                "INSERT INTO cards (card_number, application_id, person_key,"
                " card_identification_code, area_code,"
                " bank_code, sequence, issue_date, valid_until, status)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, '2026-11-02', '2036-11-02', 'ISSUED_NOT_ACTIVATED')",
                (
                    card,
                    app_id,
                    vault.blind_index(ident),
                    numbers.card_identification_code(AREA, n),
                    AREA,
                    bank_code,
                    n,
                ),
            )
            conn.execute(
                "INSERT INTO bank_accounts (application_id, bank_code, sequence, account_index,"
                " account_number_enc,"
                " card_number) VALUES (%s, %s, %s, %s, %s, %s)",
                (app_id, bank_code, n, vault.blind_index(account), vault.encrypt(account), card),
            )
            out.append(Waiting(app_id, bank_code, card, account, ident))
    return out


def request_for(waiting: Waiting, attempt: int = 1) -> ActivationRequested:
    """The ActivationRequested the nightly run publishes for this application and attempt."""
    return ActivationRequested(
        event_id=activation_request_event_id(waiting.application_id, attempt),
        application_id=waiting.application_id,
        bank_code=waiting.bank_code,
        application_type=ApplicationType.NEW_CARD,
        attempt=attempt,
        card_number=waiting.card_number,
        account_number=waiting.account_number,
        holder_id_number=waiting.id_number,
        holder_name="张伟",
        requested_at=datetime(2026, 11, 2, 2, 0, tzinfo=UTC),
    )


def produce(bootstrap: str, topic: str, payloads: Sequence[bytes], key: bytes | None = None) -> None:
    """Publish raw messages and wait for the broker's acks."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for payload in payloads:
            producer.send(topic, key=key, value=payload)
        producer.flush()
    finally:
        producer.close()


def states(settings: Settings) -> dict[str, tuple[str, int, bool]]:
    """(state, bank_refusals, is_open) per application."""
    assert settings.database_url is not None
    with connect(settings.database_url.get_secret_value(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT application_id, state, bank_refusals, is_open FROM applications"
        ).fetchall()
    return {str(r[0]): (str(r[1]), int(r[2]), bool(r[3])) for r in rows}


def scalar(settings: Settings, query: str) -> int:
    """One integer from the test database."""
    assert settings.database_url is not None
    with connect(settings.database_url.get_secret_value(), autocommit=True) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0])
