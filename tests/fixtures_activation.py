"""Bank-side test data: the bureau's rows a bank's answer is about, set up directly in SQL (as the nights
leave them), and the requests the nights publish to the banks.

- `seed_accepted`: accepted NEW_CARD applications waiting for the bank to open their account (card ORDERED,
  account REQUESTED, no numbers), and `opening_request_for` their AccountOpeningRequested;
- `seed_activations`: cards this system issued (ISSUED, account OPENED with the bank's number, registered in
  `person_cards`) and an accepted FINANCIAL_ACTIVATION of each, and `activation_request_for` its request.

Seeding a bank provisions the keys of the bureau and the bank (as `issuance setup` does for the simulated
partners), so requests are sealed to the bank and answers to the bureau, and `publish_signed` sends messages
with a party's channel headers as the relay and the banks do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime

from kafka import KafkaProducer

from issuance.bank_personal import HolderPersonal, seal_account, seal_holder
from issuance.crypto import Vault
from issuance.domain import numbers
from issuance.domain.lifecycle import ApplicationState, CardStatus, FinancialStatus
from issuance.domain.model import ApplicationType, RegistryCardStatus, RegistryFinancialStatus
from issuance.kafka.client_config import KafkaClientConfig
from issuance.messages import (
    AccountOpeningRequested,
    ActivationRequested,
    account_opening_request_event_id,
    activation_request_event_id,
    decode_event,
)
from issuance.settings import Settings
from issuance.store.consumer_repo import Conn
from issuance.store.db import connect
from issuance.store.party_keys_repo import load_directory, provision_simulated_partners
from issuance.trust.channel import Signer
from issuance.trust.keys import Directory, PartyKeys
from issuance.trust.keystore import bureau_keys, partner_keys
from issuance.trust.parties import BUREAU, Party, bank, branch
from issuance.trust.sealing import Sealer
from tests.factories import BANK, BRANCH, TERMS, id_number
from tests.fixtures_signed import read_records

BIN = "622202"
AREA = "110105"
SHA = "ab" * 32


@dataclass(frozen=True, slots=True)
class Accepted:
    """An accepted NEW_CARD application waiting for its bank to open the account."""

    application_id: str
    bank_code: str
    id_number: str
    directory: Directory = field(repr=False, compare=False)  # the keys registered when it was seeded


@dataclass(frozen=True, slots=True)
class Activating:
    """An accepted FINANCIAL_ACTIVATION of a card this system issued (its own NEW_CARD application)."""

    application_id: str
    card_application_id: str
    bank_code: str
    card_number: str
    account_number: str
    id_number: str
    directory: Directory = field(repr=False, compare=False)


def provision(settings: Settings, conn: Conn, *bank_codes: str) -> Directory:
    """The bureau's, the branch's and these banks' keys, generated and registered; the Directory after."""
    parties = [branch(BRANCH), *(bank(c) for c in bank_codes)]
    return provision_simulated_partners(settings, conn, parties, actor="test")


def party_keys(settings: Settings, party: Party) -> PartyKeys:
    """A provisioned party's private keys."""
    return bureau_keys(settings) if party == BUREAU else partner_keys(settings, party)


def seed_bank(conn: Conn, bank_code: str = BANK, bin_: str = BIN) -> None:
    """A bank and a branch of it in the reference data."""
    conn.execute(
        "INSERT INTO banks (bank_code, name, bin, terms_version, area_codes) VALUES (%s, %s,"
        " %s, %s, %s)"
        " ON CONFLICT DO NOTHING",
        (bank_code, f"bank {bank_code}", bin_, TERMS, [AREA]),
    )
    conn.execute(
        "INSERT INTO branches (branch_code, bank_code, area_code, name) VALUES (%s, %s, %s, 'branch')"
        " ON CONFLICT DO NOTHING",
        (BRANCH, bank_code, AREA),
    )


def _database(settings: Settings) -> str:
    assert settings.database_url is not None
    return settings.database_url.get_secret_value()


def _application(
    conn: Conn,
    vault: Vault,
    app_id: str,
    kind: ApplicationType,
    bank_code: str,
    ident: str,
    n: int,
    **more: object,
) -> None:
    conn.execute(
        "INSERT INTO applications (application_id, application_type, branch_code, bank_code, channel,"
        " person_key, id_number_enc, name_enc, materials, submitted_at, area_code, state, is_open,"
        " card_number, agreement_id)"
        " VALUES (%(app)s, %(kind)s, %(branch)s, %(bank)s, 'COUNTER', %(person)s, %(id)s, %(name)s,"
        " %(materials)s, %(at)s, %(area)s, %(state)s, %(open)s, %(card)s, %(agreement)s)",
        {
            "app": app_id,
            "kind": kind.value,
            "branch": BRANCH,
            "bank": bank_code,
            "person": vault.blind_index(f"{ident}/{app_id}"),
            "id": vault.encrypt(ident),
            "name": vault.encrypt("张伟"),
            "materials": ["RESIDENT_ID_CARD", "HOUSEHOLD_REGISTER"],
            "at": datetime(2026, 11, 1, tzinfo=UTC),
            "area": AREA,
            "state": more.get("state", ApplicationState.ACCEPTED.value),
            "open": more.get("open", True),
            "card": more.get("card"),
            "agreement": f"AGR-{n:06d}",
        },
    )


def seed_accepted(settings: Settings, count: int, bank_code: str = BANK, start: int = 1) -> list[Accepted]:
    """`count` accepted NEW_CARD applications: card ORDERED and account REQUESTED, no numbers yet."""
    vault = Vault.from_settings(settings)
    out: list[Accepted] = []
    with connect(_database(settings), autocommit=True) as conn, conn.transaction():
        seed_bank(conn, bank_code)
        for n in range(start, start + count):
            app_id = f"APP-{n:06d}"
            ident = id_number(birth=date(1980, 1, 1 + n % 28), sequence=n % 1000)
            _application(conn, vault, app_id, ApplicationType.NEW_CARD, bank_code, ident, n)
            conn.execute(
                "INSERT INTO cards (application_id, person_key, area_code, bank_code, branch_code, status)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                (app_id, vault.blind_index(ident), AREA, bank_code, BRANCH, CardStatus.ORDERED.value),
            )
            conn.execute(
                "INSERT INTO bank_accounts (application_id, bank_code, status) VALUES (%s, %s, %s)",
                (app_id, bank_code, FinancialStatus.REQUESTED.value),
            )
            out.append(Accepted(app_id, bank_code, ident, Directory([])))
        directory = provision(settings, conn, bank_code)
    return [replace(a, directory=directory) for a in out]


def seed_activations(
    settings: Settings, count: int, bank_code: str = BANK, start: int = 1, bin_: str = BIN
) -> list[Activating]:
    """`count` cards this system issued (account OPENED at the bank) and an accepted activation of each."""
    vault = Vault.from_settings(settings)
    out: list[Activating] = []
    with connect(_database(settings), autocommit=True) as conn, conn.transaction():
        seed_bank(conn, bank_code, bin_)
        for n in range(start, start + count):
            card_app, app_id = f"APP-{n:06d}", f"ACT-{n:06d}"
            ident = id_number(birth=date(1980, 1, 1 + n % 28), sequence=n % 1000)
            card = numbers.card_number(n)
            account = numbers.bank_account_number(bin_, n)
            person = vault.blind_index(ident)
            kind = ApplicationType.NEW_CARD
            _application(conn, vault, card_app, kind, bank_code, ident, n, state="COMPLETED", open=False)
            conn.execute(
                "INSERT INTO cards (application_id, card_number, card_identification_code, person_key,"
                " area_code, bank_code, branch_code, sequence, issue_date, valid_until, status)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, '2026-11-02', '2036-11-02', %s)",
                (
                    card_app,
                    card,
                    numbers.card_identification_code(AREA, n),
                    person,
                    AREA,
                    bank_code,
                    BRANCH,
                    n,
                    CardStatus.ISSUED.value,
                ),
            )
            conn.execute(
                "INSERT INTO bank_accounts (application_id, bank_code, account_index, account_number_enc,"
                " card_number, status, opened_at) VALUES (%s, %s, %s, %s, %s, %s, now())",
                (
                    card_app,
                    bank_code,
                    vault.blind_index(account),
                    vault.encrypt(account),
                    card,
                    FinancialStatus.OPENED.value,
                ),
            )
            conn.execute(
                "INSERT INTO persons (person_key, id_number_enc, name_enc, insured) VALUES (%s, %s, %s, true)"
                " ON CONFLICT DO NOTHING",
                (person, vault.encrypt(ident), vault.encrypt("张伟")),
            )
            conn.execute(
                "INSERT INTO person_cards (card_number, person_key, bank_code, status, financial_status)"
                " VALUES (%s, %s, %s, %s, %s)",
                (
                    card,
                    person,
                    bank_code,
                    RegistryCardStatus.VALID.value,
                    RegistryFinancialStatus.INACTIVE.value,
                ),
            )
            kind = ApplicationType.FINANCIAL_ACTIVATION
            _application(conn, vault, app_id, kind, bank_code, ident, 100_000 + n, card=card)
            out.append(Activating(app_id, card_app, bank_code, card, account, ident, Directory([])))
        directory = provision(settings, conn, bank_code)
    return [replace(a, directory=directory) for a in out]


def opening_request_for(accepted: Accepted, attempt: int = 1, **overrides: object) -> AccountOpeningRequested:
    """The AccountOpeningRequested the night publishes for this application and attempt (the holder sealed to
    the application's bank)."""
    event_id = str(
        overrides.get("event_id", account_opening_request_event_id(accepted.application_id, attempt))
    )
    holder = HolderPersonal(accepted.id_number, "张伟")
    sealer = Sealer.to(accepted.directory, bank(accepted.bank_code))
    fields: dict[str, object] = {
        "event_id": event_id,
        "application_id": accepted.application_id,
        "bank_code": accepted.bank_code,
        "attempt": attempt,
        "personal": seal_holder(holder, sealer, event_id),
        "area_code": AREA,
        "branch_code": BRANCH,
        "agreement_id": f"AGR-{accepted.application_id[4:]}",
        "terms_version": TERMS,
        "document_sha256": SHA,
        "requested_at": datetime(2026, 11, 2, 2, 0, tzinfo=UTC),
    }
    return AccountOpeningRequested(**{**fields, **overrides})  # type: ignore[arg-type]


def activation_request_for(
    activating: Activating, attempt: int = 1, *, registry_card: bool = False
) -> ActivationRequested:
    """The ActivationRequested the night publishes for an activation of a card this system issued (the holder
    and the card's account sealed to the bank)."""
    event_id = activation_request_event_id(activating.application_id, attempt)
    # A registry card carries no account number: the bank finds the account bound to it by the card number.
    holder = HolderPersonal(
        activating.id_number, "张伟", None if registry_card else activating.account_number
    )
    sealer = Sealer.to(activating.directory, bank(activating.bank_code))
    return ActivationRequested(
        event_id=event_id,
        application_id=activating.application_id,
        bank_code=activating.bank_code,
        application_type=ApplicationType.FINANCIAL_ACTIVATION,
        attempt=attempt,
        card_number=activating.card_number,
        personal=seal_holder(holder, sealer, event_id),
        requested_at=datetime(2026, 11, 2, 2, 0, tzinfo=UTC),
        agreement_id=f"AGR-{activating.application_id[4:]}",
        terms_version=TERMS,
        document_sha256=SHA,
    )


def produce(bootstrap: str, topic: str, payloads: Sequence[bytes], key: bytes | None = None) -> None:
    """Publish raw messages and wait for the broker's acks."""
    producer = KafkaProducer(**KafkaClientConfig.plaintext(bootstrap).client_kwargs(), acks="all")
    try:
        for payload in payloads:
            producer.send(topic, key=key, value=payload)
        producer.flush()
    finally:
        producer.close()


def publish_signed(
    settings: Settings,
    topic: str,
    payloads: Sequence[bytes | None],
    sender: Party,
    recipient: Party,
    key: bytes | None = None,
) -> None:
    """Publish messages with `sender`'s channel headers to `recipient` (as the relay does for the bureau and
    a bank for its answers) and wait for the broker's acks."""
    with connect(_database(settings), autocommit=True) as conn:
        signer = Signer(party_keys(settings, sender), load_directory(conn))
    producer = KafkaProducer(**KafkaClientConfig.from_settings(settings).client_kwargs(), acks="all")
    try:
        for payload in payloads:
            headers = signer.headers(recipient, key, payload or b"")  # a null value is signed as empty
            producer.send(topic, key=key, value=payload, headers=headers)
        producer.flush()
    finally:
        producer.close()


def sealed_account(directory: Directory, account_number: str, answer_event_id: str) -> bytes:
    """An answer's `personal`: the account number sealed to the bureau."""
    return seal_account(account_number, Sealer.to(directory, BUREAU), answer_event_id)


def states(settings: Settings) -> dict[str, tuple[str, int, bool, bool]]:
    """(state, bank_refusals, is_open, retry_due) per application."""
    with connect(_database(settings), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT application_id, state, bank_refusals, is_open, retry_due FROM applications"
        ).fetchall()
    return {
        str(app): (str(state), int(refusals), bool(o), bool(due)) for app, state, refusals, o, due in rows
    }


def sides(settings: Settings, application_id: str) -> tuple[str | None, str | None]:
    """(card status, account status) of a NEW_CARD application."""
    with connect(_database(settings), autocommit=True) as conn:
        row = conn.execute(
            "SELECT c.status, b.status FROM applications a LEFT JOIN cards c USING (application_id)"
            " LEFT JOIN bank_accounts b USING (application_id) WHERE a.application_id = %s",
            (application_id,),
        ).fetchone()
    assert row is not None
    return row[0], row[1]


def scalar(settings: Settings, query: str, params: Sequence[object] = ()) -> int:
    """One integer from the test database."""
    with connect(_database(settings), autocommit=True) as conn:
        row = conn.execute(query, tuple(params) or None).fetchone()
    assert row is not None
    return int(row[0])


def read_topic(settings: Settings, topic: str) -> list[object]:
    """Every message on a topic, decoded."""
    return [decode_event(record.value) for record in read_records(settings, topic)]
