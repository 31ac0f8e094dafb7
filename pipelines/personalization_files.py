"""One vendor file per card vendor per run, with a manifest (record count, SHA-256) and a `vendor_files` row.

`<personalization_dir>/run-NNNNNN/<VENDOR>.jsonl` holds the cards the run personalized for that vendor (the
cards whose `production_run_id` is the run), one JSON object per card; `<VENDOR>.manifest.json` describes it;
`run.manifest.json` (the list of the run's manifests) is written last and says the run's files are complete.
The vendor answers with `<VENDOR>.return.jsonl` in the same directory (`issuance vendor receive`). The format
is documented in `pipelines/README.md` ("Vendor files").

Written from the system of record after the run committed. The personal fields a card's chip and face need
(holder ID number, name, sex, birth date, account number) travel sealed to the vendor alone: `personal_enc`
is `VendorCardPersonal` sealed with the vendor's registered seal key (`Sealer.to(directory, vendor)`, one
Sealer per file, the card number as associated data): the bureau's Vault keys do not open it, only the
vendor's private key does. The manifest carries the bureau's Ed25519 signature over the file's SHA-256
(`signature`, `signed_by` its key id), so the vendor can tell the file came from the bureau unchanged.
Sealing is randomized: a file already written and recorded (its `vendor_files` digest) is kept as it is, so
a re-run after a crash neither rewrites what a vendor may have fetched nor records a second digest.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from issuance.crypto import Vault
from issuance.errors import IssuanceError
from issuance.store import party_keys_repo
from issuance.store.personalization_repo import personalized_in_run
from issuance.store.run_repo import Conn
from issuance.trust.channel import sign_file
from issuance.trust.keys import PartyKeys
from issuance.trust.parties import vendor
from issuance.trust.sealing import Sealer, seal_personal

FORMAT = "ssc-vendor-file/2"
RUN_MANIFEST = "run.manifest.json"
PERSONAL_RECORD = "VendorCardPersonal"  # schemas/VendorCardPersonal.v1.avsc: what `personal_enc` seals


class VendorFilesIncomplete(IssuanceError):
    """The run's vendor files do not hold every card the run personalized."""


_QUERY = """
SELECT c.vendor_code, a.application_id, c.area_code, c.bank_code, coalesce(c.branch_code, a.branch_code),
    c.card_identification_code, c.card_number, c.issue_date::text, c.spec_version, c.valid_until::text,
    a.id_number_enc, a.name_enc, c.holder_sex_enc, c.holder_birth_date_enc, b.account_number_enc
FROM cards c
JOIN applications a USING (application_id)
JOIN bank_accounts b USING (application_id)
WHERE c.production_run_id = %s
ORDER BY c.vendor_code, c.card_number
"""


def _opened(vault: Vault, envelope: Any) -> str | None:
    return None if envelope is None else vault.decrypt(bytes(envelope))


def _line(row: tuple[Any, ...], vault: Vault, sealer: Sealer) -> bytes:
    """One card's line: what is not personal in clear, the rest sealed to the vendor (keys sorted)."""
    (vendor_code, application_id, area, bank, branch, cic, card, issued, spec, until, *personal) = row
    id_number, name, sex, birth, account = (_opened(vault, value) for value in personal)
    sealed = seal_personal(
        PERSONAL_RECORD,
        {
            "holder_id_number": id_number,
            "holder_name": name,
            "holder_sex": sex,
            "holder_birth_date": birth,
            "holder_ethnic_group": None,
            "account_number": account,
        },
        sealer,
        aad=card,
    )
    record = {
        "application_id": application_id,
        "area_code": area,
        "bank_code": bank,
        "branch_code": branch,
        "card_identification_code": cic,
        "card_number": card,
        "issue_date": issued,
        "personal_enc": base64.b64encode(sealed).decode("ascii"),
        "spec_version": spec,
        "valid_until": until,
        "vendor_code": vendor_code,
    }
    return json.dumps(record, sort_keys=True, separators=(",", ":")).encode() + b"\n"


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def run_dir(root: Path, run_id: int) -> Path:
    return root / f"run-{run_id:06d}"


def write_files(
    conn: Conn, root: Path, run_id: int, business_date: str, *, vault: Vault, bureau: PartyKeys
) -> list[dict[str, Any]]:
    """Write the run's vendor files (or keep the ones written and recorded) and record them; returns the
    manifests. The personal fields are opened from the Vault only here, and sealed to each vendor at once."""
    rows: dict[str, list[tuple[Any, ...]]] = {}
    for row in conn.execute(_QUERY, (run_id,)):
        rows.setdefault(str(row[0]), []).append(row)
    personalized = personalized_in_run(conn, run_id)  # the files must hold exactly these cards
    written = sum(len(cards) for cards in rows.values())
    if written != personalized:
        raise VendorFilesIncomplete(
            f"run {run_id}: {personalized} cards were personalized but the vendor files would hold {written};"
            " nothing was written: see RUNBOOK.md, 'Card personalization and vendor files'"
        )
    directory = run_dir(root, run_id)
    directory.mkdir(parents=True, exist_ok=True)
    directory_of_keys = party_keys_repo.load_directory(conn)
    manifests = []
    for vendor_code, cards in sorted(rows.items()):
        kept = _kept(conn, directory, run_id, vendor_code)
        if kept is not None:
            manifests.append(kept)
            continue
        sealer = Sealer.to(directory_of_keys, vendor(vendor_code))  # UnknownParty: its keys not registered
        data = b"".join(_line(row, vault, sealer) for row in cards)
        name = f"{vendor_code}.jsonl"
        _atomic_write(directory / name, data)
        sha256 = hashlib.sha256(data)
        manifest = {
            "format": FORMAT,
            "vendor_code": vendor_code,
            "run_id": run_id,
            "business_date": business_date,
            "file": name,
            "record_count": len(cards),
            "sha256": sha256.hexdigest(),
            "sealed_to": sealer.recipient_key_id,
            "signed_by": bureau.sign_key_id,
            "signature": base64.b64encode(sign_file(bureau, sha256.digest())).decode("ascii"),
        }
        _atomic_write(
            directory / f"{vendor_code}.manifest.json",
            json.dumps(manifest, indent=2, sort_keys=True).encode(),
        )
        conn.execute(
            "INSERT INTO vendor_files (run_id, vendor_code, record_count, sha256) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (run_id, vendor_code) DO UPDATE SET record_count = excluded.record_count,"
            " sha256 = excluded.sha256"
            " WHERE (vendor_files.record_count, vendor_files.sha256) IS DISTINCT FROM"
            " (excluded.record_count, excluded.sha256)",
            (run_id, vendor_code, len(cards), manifest["sha256"]),
        )
        manifests.append(manifest)
    conn.commit()  # the vendor_files rows before the run manifest that says the run's files are complete
    # Written last: its presence says the run's files are complete (missing after a crash: write again).
    _atomic_write(directory / RUN_MANIFEST, json.dumps(manifests, indent=2, sort_keys=True).encode())
    return manifests


def _kept(conn: Conn, directory: Path, run_id: int, vendor_code: str) -> dict[str, Any] | None:
    """The manifest of a vendor file written and recorded before (its bytes match the recorded digest), or
    None: write it (again)."""
    row = conn.execute(
        "SELECT sha256 FROM vendor_files WHERE run_id = %s AND vendor_code = %s", (run_id, vendor_code)
    ).fetchone()
    path, manifest_path = directory / f"{vendor_code}.jsonl", directory / f"{vendor_code}.manifest.json"
    if row is None or not path.is_file() or not manifest_path.is_file():
        return None
    if hashlib.sha256(path.read_bytes()).hexdigest() != row[0]:
        return None
    try:
        manifest = json.loads(manifest_path.read_bytes())
    except ValueError:
        return None
    return manifest if isinstance(manifest, dict) and manifest.get("sha256") == row[0] else None


def files_complete(root: Path, run_id: int) -> bool:
    """Whether every file of the run was written (the run manifest is written last)."""
    return (run_dir(root, run_id) / RUN_MANIFEST).exists()
