"""One vendor file per card vendor per run, with a manifest (record count, SHA-256) and a `vendor_files` row.

`<personalization_dir>/run-NNNNNN/<VENDOR>.jsonl` holds the cards the run personalized for that vendor (the
cards whose `production_run_id` is the run), one JSON object per card; `<VENDOR>.manifest.json` describes it;
`run.manifest.json` (the list of the run's manifests) is written last and says the run's files are complete.
The vendor answers with `<VENDOR>.return.jsonl` in the same directory (`issuance vendor receive`). The format
is documented in `pipelines/README.md` ("Vendor files").

Written from the system of record after the run committed, so a re-run (or the next run after a crash between
commit and writing) produces byte-identical files. Personal data stays as the AES-GCM envelopes stored in
PostgreSQL (base64): the vendor's system opens them with the key it is given, never this file's reader.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from issuance.errors import IssuanceError
from issuance.store.personalization_repo import personalized_in_run
from issuance.store.run_repo import Conn

FORMAT = "ssc-vendor-file/1"
RUN_MANIFEST = "run.manifest.json"


class VendorFilesIncomplete(IssuanceError):
    """The run's vendor files do not hold every card the run personalized."""


# One JSON object per card, rendered by PostgreSQL (keys in sorted order, envelopes as base64 without line
# breaks): the writer only groups lines by vendor, so it runs beside the relay without competing for the
# interpreter.
_QUERY = """
SELECT c.vendor_code, json_build_object(
    'account_number_enc', translate(encode(b.account_number_enc, 'base64'), E'\\n', ''),
    'application_id', a.application_id,
    'area_code', c.area_code,
    'bank_code', c.bank_code,
    'branch_code', coalesce(c.branch_code, a.branch_code),
    'card_identification_code', c.card_identification_code,
    'card_number', c.card_number,
    'holder_birth_date_enc', translate(encode(c.holder_birth_date_enc, 'base64'), E'\\n', ''),
    'holder_ethnic_group_enc', NULL,
    'holder_id_number_enc', translate(encode(a.id_number_enc, 'base64'), E'\\n', ''),
    'holder_name_enc', translate(encode(a.name_enc, 'base64'), E'\\n', ''),
    'holder_sex_enc', translate(encode(c.holder_sex_enc, 'base64'), E'\\n', ''),
    'issue_date', c.issue_date,
    'spec_version', c.spec_version,
    'valid_until', c.valid_until,
    'vendor_code', c.vendor_code
)::text
FROM cards c
JOIN applications a USING (application_id)
JOIN bank_accounts b USING (application_id)
WHERE c.production_run_id = %s
ORDER BY c.vendor_code, c.card_number
"""


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def run_dir(root: Path, run_id: int) -> Path:
    return root / f"run-{run_id:06d}"


def write_files(conn: Conn, root: Path, run_id: int, business_date: str) -> list[dict[str, Any]]:
    """Write (or rewrite identically) the run's vendor files and record them; returns the manifests."""
    by_vendor: dict[str, list[bytes]] = {}
    for vendor, line in conn.execute(_QUERY, (run_id,)):
        by_vendor.setdefault(str(vendor), []).append(line.encode() + b"\n")
    personalized = personalized_in_run(conn, run_id)  # the files must hold exactly these cards
    written = sum(len(lines) for lines in by_vendor.values())
    if written != personalized:
        raise VendorFilesIncomplete(
            f"run {run_id}: {personalized} cards were personalized but the vendor files would hold {written};"
            " nothing was written: see RUNBOOK.md, 'Card personalization and vendor files'"
        )
    directory = run_dir(root, run_id)
    directory.mkdir(parents=True, exist_ok=True)
    manifests = []
    for vendor, lines in sorted(by_vendor.items()):
        data = b"".join(lines)
        name = f"{vendor}.jsonl"
        _atomic_write(directory / name, data)
        manifest = {
            "format": FORMAT,
            "vendor_code": vendor,
            "run_id": run_id,
            "business_date": business_date,
            "file": name,
            "record_count": len(lines),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        _atomic_write(
            directory / f"{vendor}.manifest.json", json.dumps(manifest, indent=2, sort_keys=True).encode()
        )
        conn.execute(
            "INSERT INTO vendor_files (run_id, vendor_code, record_count, sha256) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (run_id, vendor_code) DO UPDATE SET record_count = excluded.record_count,"
            " sha256 = excluded.sha256"
            " WHERE (vendor_files.record_count, vendor_files.sha256) IS DISTINCT FROM"
            " (excluded.record_count, excluded.sha256)",
            (run_id, vendor, len(lines), manifest["sha256"]),
        )
        manifests.append(manifest)
    conn.commit()  # the vendor_files rows before the run manifest that says the run's files are complete
    # Written last: its presence says the run's files are complete (missing after a crash: write again).
    _atomic_write(directory / RUN_MANIFEST, json.dumps(manifests, indent=2, sort_keys=True).encode())
    return manifests


def files_complete(root: Path, run_id: int) -> bool:
    """Whether every file of the run was written (the run manifest is written last)."""
    return (run_dir(root, run_id) / RUN_MANIFEST).exists()
