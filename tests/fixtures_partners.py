"""Partner-stage test data: cards in a vendor file (with the file and its `vendor_files` row), produced
cards on their way to a branch, and a reader of whole topics. Rows are written directly in SQL, as the
nightly run leaves them."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from issuance.crypto import Vault
from issuance.domain import numbers
from issuance.domain.lifecycle import ApplicationState, CardStatus, FinancialStatus
from issuance.domain.vendor_return import signature_path
from issuance.kafka.client_config import KafkaClientConfig
from issuance.settings import Settings
from issuance.store.db import connect
from issuance.store.party_keys_repo import load_directory, provision_simulated_partners, reference_parties
from issuance.trust.channel import sign_file
from issuance.trust.keystore import bureau_keys, partner_keys
from issuance.trust.parties import vendor
from issuance.trust.sealing import Sealer, seal_personal
from producers.vendor_simulator import simulate, vendor_file_path
from tests.factories import BANK, BRANCH, id_number
from tests.fixtures_activation import AREA, BIN, seed_bank

VENDOR = "V1"
HOLDER_NAME = "张伟"
PHONE = "13800138000"


@dataclass(frozen=True, slots=True)
class SeededCard:
    application_id: str
    card_number: str
    id_number: str


def database_url(settings: Settings) -> str:
    assert settings.database_url is not None
    return settings.database_url.get_secret_value()


def seed_cards(
    settings: Settings,
    count: int,
    *,
    status: CardStatus = CardStatus.IN_PRODUCTION,
    run_id: int = 1,
    vendor_code: str = VENDOR,
    failures: int = 0,
    start: int = 1,
    branch_code: str = BRANCH,
) -> list[SeededCard]:
    """`count` accepted NEW_CARD applications whose account is OPENED and whose numbered card is `status`,
    in the vendor file of `run_id` (the holder is in the person registry)."""
    vault = Vault.from_settings(settings)
    out: list[SeededCard] = []
    with connect(database_url(settings), autocommit=True) as conn, conn.transaction():
        seed_bank(conn, BANK)
        conn.execute(
            "INSERT INTO branches (branch_code, bank_code, area_code, name) VALUES (%s, %s, %s, 'branch')"
            " ON CONFLICT DO NOTHING",
            (branch_code, BANK, AREA),
        )
        for n in range(start, start + count):
            app_id = f"APP-{n:06d}"
            ident = id_number(birth=date(1980, 1, 1 + n % 28), sequence=n % 1000)
            person_key = vault.blind_index(ident)
            card = numbers.card_number(n)
            account = numbers.bank_account_number(BIN, n)
            conn.execute(
                "INSERT INTO persons (person_key, id_number_enc, name_enc, insured) VALUES (%s, %s, %s, true)"
                " ON CONFLICT DO NOTHING",
                (person_key, vault.encrypt(ident), vault.encrypt(HOLDER_NAME)),
            )
            conn.execute(
                "INSERT INTO applications (application_id, application_type, branch_code, bank_code, channel,"
                " person_key, id_number_enc, name_enc, phone_enc, materials, submitted_at, area_code, state,"
                " is_open) VALUES (%s, 'NEW_CARD', %s, %s, 'COUNTER', %s, %s, %s, %s, %s, %s, %s, %s, true)",
                (
                    app_id,
                    branch_code,
                    BANK,
                    person_key,
                    vault.encrypt(ident),
                    vault.encrypt(HOLDER_NAME),
                    vault.encrypt(PHONE),
                    ["RESIDENT_ID_CARD", "HOUSEHOLD_REGISTER"],
                    datetime(2026, 11, 1, tzinfo=UTC),
                    AREA,
                    ApplicationState.ACCEPTED.value,
                ),
            )
            conn.execute(
                "INSERT INTO cards (application_id, card_number, person_key, card_identification_code,"
                " area_code, bank_code, branch_code, sequence, issue_date, valid_until, status, vendor_code,"
                " production_run_id, productions, production_failures)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, '2026-11-02', '2036-11-02', %s, %s, %s, %s, %s)",
                (
                    app_id,
                    card,
                    person_key,
                    numbers.card_identification_code(AREA, n),
                    AREA,
                    BANK,
                    branch_code,
                    n,
                    status.value,
                    vendor_code,
                    run_id,
                    failures + 1,
                    failures,
                ),
            )
            conn.execute(
                "INSERT INTO bank_accounts (application_id, bank_code, sequence, account_index,"
                " account_number_enc, card_number, status) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (
                    app_id,
                    BANK,
                    n,
                    vault.blind_index(account),
                    vault.encrypt(account),
                    card,
                    FinancialStatus.OPENED.value,
                ),
            )
            out.append(SeededCard(app_id, card, ident))
        # The bureau, the branch, the bank and the vendor with registered keys (the simulated partners).
        provision_simulated_partners(
            settings, conn, [*reference_parties(conn), vendor(vendor_code)], actor="test"
        )
    return out


def write_vendor_file(
    settings: Settings, run_id: int, cards: list[SeededCard], vendor_code: str = VENDOR
) -> Path:
    """The vendor file as the night writes it (a line per card, the holder's data sealed to the vendor), its
    manifest signed by the bureau and its `vendor_files` row."""
    path = vendor_file_path(Path(settings.personalization_dir), run_id, vendor_code)
    path.parent.mkdir(parents=True, exist_ok=True)
    with connect(database_url(settings), autocommit=True) as conn:
        sealer = Sealer.to(load_directory(conn), vendor(vendor_code))
    lines = []
    for c in cards:
        personal = {
            "holder_id_number": c.id_number,
            "holder_name": HOLDER_NAME,
            "holder_sex": None,
            "holder_birth_date": None,
            "holder_ethnic_group": None,
            "account_number": None,
        }
        sealed = seal_personal("VendorCardPersonal", personal, sealer, aad=c.card_number)
        record = {
            "card_number": c.card_number,
            "application_id": c.application_id,
            "personal_enc": base64.b64encode(sealed).decode(),
        }
        lines.append(json.dumps(record).encode() + b"\n")
    data = b"".join(lines)
    path.write_bytes(data)
    digest = hashlib.sha256(data)
    sha256 = digest.hexdigest()
    signature = base64.b64encode(sign_file(bureau_keys(settings), digest.digest())).decode()
    manifest = {
        "vendor_code": vendor_code,
        "run_id": run_id,
        "record_count": len(cards),
        "sha256": sha256,
        "signature": signature,
    }
    path.with_name(f"{vendor_code}.manifest.json").write_text(json.dumps(manifest))
    with connect(database_url(settings), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO vendor_files (run_id, vendor_code, record_count, sha256) VALUES (%s, %s, %s, %s)",
            (run_id, vendor_code, len(cards), sha256),
        )
    return path


def vendor_answers(
    settings: Settings, run_id: int, fail_rate: float = 0.0, seed: int = 1, vendor_code: str = VENDOR
) -> Path:
    """The return file the simulated vendor writes for a vendor file, signed with its own key."""
    with connect(database_url(settings), autocommit=True) as conn:
        directory = load_directory(conn)
    own = partner_keys(settings, vendor(vendor_code))
    root = Path(settings.personalization_dir)
    return simulate(root, run_id, vendor_code, fail_rate, seed, directory, own).path


def sign_return_file(settings: Settings, path: Path, vendor_code: str = VENDOR) -> None:
    """Sign a return file written by hand as its vendor would (`<file>.sig`)."""
    own = partner_keys(settings, vendor(vendor_code))
    signature = sign_file(own, hashlib.sha256(path.read_bytes()).digest())
    signature_path(path).write_bytes(base64.b64encode(signature) + b"\n")


def personalize_again(settings: Settings, run_id: int, cards: list[SeededCard]) -> Path:
    """What a later night does to ORDERED cards: into its vendor file (same numbers), IN_PRODUCTION."""
    with connect(database_url(settings), autocommit=True) as conn:
        conn.execute(
            "UPDATE cards SET status = %s, production_run_id = %s, productions = productions + 1"
            " WHERE card_number = ANY(%s) AND status = %s",
            (
                CardStatus.IN_PRODUCTION.value,
                run_id,
                [c.card_number for c in cards],
                CardStatus.ORDERED.value,
            ),
        )
    return write_vendor_file(settings, run_id, cards)


def rows(settings: Settings, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with connect(database_url(settings), autocommit=True) as conn:
        return [tuple(r) for r in conn.execute(query, params).fetchall()]  # type: ignore[arg-type]


def read_topic(bootstrap: str, topic: str) -> list[tuple[bytes | None, bytes]]:
    """Every (key, value) of a topic, up to its high watermark (read after each poll: broker quirk)."""
    consumer = KafkaConsumer(
        **KafkaClientConfig.plaintext(bootstrap).client_kwargs(), enable_auto_commit=False, group_id=None
    )
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        out: list[tuple[bytes | None, bytes]] = []
        positions = dict.fromkeys(partitions, 0)
        for _ in range(100):
            for records in consumer.poll(timeout_ms=300).values():
                out.extend((r.key, r.value) for r in records)
            positions = {tp: consumer.position(tp) for tp in partitions}
            if all((consumer.highwater(tp) or 0) <= positions[tp] for tp in partitions) and all(
                consumer.highwater(tp) is not None for tp in partitions
            ):
                break
        return out
    finally:
        consumer.close()
