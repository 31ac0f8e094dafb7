"""Card personalization in the nightly run, against the real broker and PostgreSQL: a card is numbered only
once its account is OPENED, exactly once, with the numbers its slot gives whatever the retries, into the
vendor file of its area's vendor; an area without a vendor waits; a crash before COMMIT leaves nothing."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from issuance.crypto import DecryptionFailed, Vault
from issuance.domain.numbers import card_identification_code, card_number
from issuance.domain.personalization import valid_until
from issuance.settings import Settings
from issuance.store.db import connect
from issuance.trust.channel import verify_file
from issuance.trust.errors import TrustFailure
from issuance.trust.keystore import bureau_keys
from issuance.trust.parties import BUREAU, vendor
from issuance.trust.sealing import Unsealer, open_personal
from pipelines import commit, nightly
from pipelines.personalization_files import run_dir, write_files
from tests import factories
from tests.fixtures_nightly import load_reference_data
from tests.fixtures_personalization import VENDOR, open_account, order_card, vendor_reference
from tests.fixtures_services import Partners

NIGHT_1 = "2026-11-03"
NIGHT_2 = "2026-11-04"


def _cards(database_url: str) -> dict[str, dict[str, Any]]:
    with connect(database_url) as conn:
        cur = conn.execute(
            "SELECT c.application_id, c.status, c.card_number, c.card_identification_code, c.sequence,"
            " c.issue_date, c.valid_until, c.vendor_code, c.production_run_id, c.productions,"
            " b.card_number AS account_card FROM cards c JOIN bank_accounts b USING (application_id)"
        )
        names = [d.name for d in cur.description or ()]
        return {str(r[0]): dict(zip(names, r, strict=True)) for r in cur.fetchall()}


def _history(database_url: str, application_id: str) -> list[tuple[Any, ...]]:
    with connect(database_url) as conn:
        return [
            tuple(r)
            for r in conn.execute(
                "SELECT side, from_status, to_status, source, run_id FROM card_history"
                " WHERE application_id = %s AND side = 'card' ORDER BY id",
                (application_id,),
            )
        ]


@pytest.fixture
def vault(settings: Settings, database_url: str) -> Vault:
    load_reference_data(settings, database_url, vendor_reference())
    return Vault.from_settings(settings)


@pytest.mark.parametrize(
    "beam_args",
    [
        [],
        ["--direct_runner_bundle_repeat=1"],
        ["--direct_running_mode=multi_processing", "--direct_num_workers=2"],
    ],
    ids=["default", "bundle-repeat", "worker-processes"],
)
def test_a_card_is_numbered_once_its_account_is_opened_and_only_once(
    settings: Settings, database_url: str, vault: Vault, beam_args: list[str]
) -> None:
    opened = order_card(database_url, vault, 1)
    requested = order_card(database_url, vault, 2, financial="REQUESTED")
    no_vendor = order_card(database_url, vault, 3, area_code=factories.OTHER_AREA, bin_="621700")

    first = nightly.run(["--business-date", NIGHT_1, *beam_args], settings=settings)

    assert first.balanced, first.reconciliation
    cards = _cards(database_url)
    card = cards[opened.application_id]
    assert card == {
        "application_id": opened.application_id,
        "status": "IN_PRODUCTION",
        "card_number": card_number(opened.slot),
        "card_identification_code": card_identification_code(opened.area_code, opened.slot),
        "sequence": opened.slot,
        "issue_date": date.fromisoformat(NIGHT_1),
        "valid_until": valid_until(date.fromisoformat(NIGHT_1)),
        "vendor_code": VENDOR,
        "production_run_id": first.run_id,
        "productions": 1,
        "account_card": card_number(opened.slot),
    }
    for waiting in (requested, no_vendor):  # account not opened yet; no vendor for the area
        assert cards[waiting.application_id]["status"] == "ORDERED"
        assert cards[waiting.application_id]["card_number"] is None
    assert _history(database_url, opened.application_id) == [
        ("card", "ORDERED", "IN_PRODUCTION", "nightly", first.run_id)
    ]
    life = first.reconciliation["lifecycle"]
    assert life["personalized"] == 1
    assert life["by_vendor"] == {VENDOR: 1}
    assert life["waiting_for_vendor"] == {factories.OTHER_AREA: 1}
    assert life["checks"] == {
        "cards": 3,
        "every_card_in_one_status": True,
        "every_personalized_card_in_one_vendor_file": True,
    }
    assert life["cards_by_status"] == {"IN_PRODUCTION": 1, "ORDERED": 2}
    assert first.counters["personalize.cards"] == 1
    assert first.counters["personalize.no_vendor"] == 1
    assert "personalize.cards_per_s" in first.counters

    # The bank opens the second account: the next night numbers that card, and no other card again.
    open_account(database_url, requested.application_id)
    second = nightly.run(["--business-date", NIGHT_2, *beam_args], settings=settings)

    assert second.balanced, second.reconciliation
    cards = _cards(database_url)
    assert cards[opened.application_id] == card  # untouched
    assert cards[requested.application_id]["card_number"] == card_number(requested.slot)
    assert cards[requested.application_id]["production_run_id"] == second.run_id
    assert cards[no_vendor.application_id]["status"] == "ORDERED"
    assert _history(database_url, opened.application_id) == [
        ("card", "ORDERED", "IN_PRODUCTION", "nightly", first.run_id)
    ]
    life = second.reconciliation["lifecycle"]
    assert life["personalized"] == 1
    assert life["since_previous_run"]["accounts_opened"] == 1


def test_a_crash_before_commit_leaves_nothing_and_the_rerun_gives_the_same_numbers(
    settings: Settings, database_url: str, vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    ordered = [order_card(database_url, vault, n) for n in range(1, 6)]

    def crash(point: str) -> None:
        if point == "allocated":
            raise RuntimeError("crash inside the final transaction")

    with monkeypatch.context() as patch:
        patch.setattr(commit, "crash_point", crash)
        with pytest.raises(RuntimeError):
            nightly.run(["--business-date", NIGHT_1], settings=settings)
    assert {c["status"] for c in _cards(database_url).values()} == {"ORDERED"}
    assert all(_history(database_url, c.application_id) == [] for c in ordered)

    resumed = nightly.run(["--business-date", NIGHT_1], settings=settings)

    assert resumed.resumed and resumed.balanced
    cards = _cards(database_url)
    assert {c.application_id: cards[c.application_id]["card_number"] for c in ordered} == {
        c.application_id: card_number(c.slot) for c in ordered
    }
    assert all(len(_history(database_url, c.application_id)) == 1 for c in ordered)


def test_a_card_made_again_keeps_its_numbers(settings: Settings, database_url: str, vault: Vault) -> None:
    ordered = order_card(database_url, vault, 7)
    first = nightly.run(["--business-date", NIGHT_1], settings=settings)
    before = _cards(database_url)[ordered.application_id]
    with connect(database_url) as conn:  # the vendor's return file: failed, to be made again
        conn.execute(
            "UPDATE cards SET status = 'ORDERED', production_failures = 1 WHERE application_id = %s",
            (ordered.application_id,),
        )
        conn.commit()

    second = nightly.run(["--business-date", NIGHT_2], settings=settings)

    after = _cards(database_url)[ordered.application_id]
    assert after == {**before, "production_run_id": second.run_id, "productions": 2}
    assert [h[4] for h in _history(database_url, ordered.application_id)] == [first.run_id, second.run_id]
    assert (run_dir(Path(settings.personalization_dir), second.run_id) / f"{VENDOR}.jsonl").exists()


def test_the_vendor_file_holds_what_chip_and_face_need_sealed_to_the_vendor_with_a_signed_manifest(
    settings: Settings, database_url: str, vault: Vault, partners: Partners
) -> None:
    cards = [order_card(database_url, vault, n) for n in (11, 12)]
    order_card(database_url, vault, 13, area_code=factories.OTHER_AREA, bin_="621700")  # no vendor
    directory = partners.provision()

    result = nightly.run(["--business-date", NIGHT_1], settings=settings)

    run_files = run_dir(Path(settings.personalization_dir), result.run_id)
    assert sorted(p.name for p in run_files.iterdir()) == [
        f"{VENDOR}.jsonl",
        f"{VENDOR}.manifest.json",
        "run.manifest.json",
    ]
    data = (run_files / f"{VENDOR}.jsonl").read_bytes()
    lines = [json.loads(line) for line in data.splitlines()]
    assert [line["card_number"] for line in lines] == sorted(card_number(c.slot) for c in cards)
    opener = Unsealer(partners.keys(vendor(VENDOR)))

    for card, line in zip(sorted(cards, key=lambda c: card_number(c.slot)), lines, strict=True):
        assert set(line) == {
            "application_id",
            "area_code",
            "bank_code",
            "branch_code",
            "card_identification_code",
            "card_number",
            "issue_date",
            "personal_enc",
            "spec_version",
            "valid_until",
            "vendor_code",
        }
        assert line == {
            **line,
            "application_id": card.application_id,
            "area_code": card.area_code,
            "bank_code": card.bank_code,
            "branch_code": card.branch_code,
            "card_identification_code": card_identification_code(card.area_code, card.slot),
            "issue_date": NIGHT_1,
            "valid_until": valid_until(date.fromisoformat(NIGHT_1)).isoformat(),
            "spec_version": "3.00",
            "vendor_code": VENDOR,
        }
        sealed = base64.b64decode(line["personal_enc"])
        assert open_personal("VendorCardPersonal", sealed, opener, aad=line["card_number"]) == {
            "holder_id_number": card.id_number,
            "holder_name": card.name,
            "holder_sex": "MALE" if int(card.id_number[16]) % 2 else "FEMALE",
            "holder_birth_date": "1980-01-01",
            "holder_ethnic_group": None,
            "account_number": card.account_number,
        }
        # Not the bureau's: neither its Vault nor its own key pair opens what is sealed to the vendor.
        with pytest.raises(DecryptionFailed):
            vault.decrypt_bytes(sealed)
        with pytest.raises(TrustFailure):
            open_personal(
                "VendorCardPersonal", sealed, Unsealer(bureau_keys(settings)), aad=line["card_number"]
            )
        assert card.id_number not in data.decode() and card.name not in data.decode()
    manifest = json.loads((run_files / f"{VENDOR}.manifest.json").read_text())
    digest = hashlib.sha256(data)
    assert manifest == {
        "format": "ssc-vendor-file/2",
        "vendor_code": VENDOR,
        "run_id": result.run_id,
        "business_date": NIGHT_1,
        "file": f"{VENDOR}.jsonl",
        "record_count": 2,
        "sha256": digest.hexdigest(),
        "sealed_to": directory.sealing_key(vendor(VENDOR))[0],
        "signed_by": bureau_keys(settings).sign_key_id,
        "signature": manifest["signature"],
    }
    verify_file(directory, BUREAU, digest.digest(), base64.b64decode(manifest["signature"]))
    with pytest.raises(TrustFailure):  # the signature covers exactly these bytes
        verify_file(
            directory, BUREAU, hashlib.sha256(data + b" ").digest(), base64.b64decode(manifest["signature"])
        )
    assert result.files == [manifest]
    with connect(database_url) as conn:
        rows = conn.execute("SELECT run_id, vendor_code, record_count, sha256 FROM vendor_files").fetchall()
        assert rows == [(result.run_id, VENDOR, 2, manifest["sha256"])]
        # Written again (a crash before the run manifest): the file written and recorded is kept, one row.
        again = write_files(
            conn,
            Path(settings.personalization_dir),
            result.run_id,
            NIGHT_1,
            vault=vault,
            bureau=bureau_keys(settings),
        )
        assert again == [manifest]
        assert (run_files / f"{VENDOR}.jsonl").read_bytes() == data
        assert conn.execute("SELECT count(*) FROM vendor_files").fetchone() == (1,)


def test_the_reconciliation_counts_the_lifecycle_steps_since_the_previous_run(
    settings: Settings, database_url: str, vault: Vault
) -> None:
    card = order_card(database_url, vault, 21)
    first = nightly.run(["--business-date", NIGHT_1], settings=settings)
    steps = [  # what the vendor, the branch and the bank report between two nights
        ("card", "IN_PRODUCTION", "PRODUCED", "vendor:VENDOR-A"),
        ("card", "PRODUCED", "AT_BRANCH", f"branch:{factories.BRANCH}"),
        ("card", "AT_BRANCH", "ISSUED", f"branch:{factories.BRANCH}"),
        ("financial", "OPENED", "ACTIVE", "bank:ICBC"),
    ]
    with connect(database_url) as conn:
        for side, before, after, source in steps:
            conn.execute(
                "INSERT INTO card_history (application_id, side, from_status, to_status, source)"
                " VALUES (%s, %s, %s, %s, %s)",
                (card.application_id, side, before, after, source),
            )
        conn.commit()
    open_account(database_url, order_card(database_url, vault, 22, financial="REQUESTED").application_id)

    second = nightly.run(["--business-date", NIGHT_2], settings=settings)
    third = nightly.run(["--business-date", "2026-11-05"], settings=settings)

    assert first.reconciliation["lifecycle"]["since_previous_run"]["accounts_opened"] == 0
    assert second.as_dict()["reconciliation"]["lifecycle"]["since_previous_run"] == {
        "accounts_opened": 1,
        "cards_produced": 1,
        "cards_received_at_branch": 1,
        "cards_collected": 1,
        "savings_activated": 1,
    }
    assert set(third.reconciliation["lifecycle"]["since_previous_run"].values()) == {0}
    assert third.reconciliation["lifecycle"]["personalized"] == 0
    assert third.files == [] and third.balanced


def test_an_application_planned_before_slots_gets_one_and_keeps_it(
    settings: Settings, database_url: str, vault: Vault
) -> None:
    card = order_card(database_url, vault, 31)
    with connect(database_url) as conn:
        conn.execute("UPDATE applications SET slot = NULL WHERE application_id = %s", (card.application_id,))
        conn.commit()

    nightly.run(["--business-date", NIGHT_1], settings=settings)

    with connect(database_url) as conn:
        row = conn.execute(
            "SELECT a.slot, c.card_number, c.sequence FROM applications a JOIN cards c USING (application_id)"
            " WHERE application_id = %s",
            (card.application_id,),
        ).fetchone()
    assert row is not None and row[0] is not None
    assert row[1:] == (card_number(int(row[0])), row[0])
