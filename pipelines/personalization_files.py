"""One personalization file per bank per run for the card vendor, with a manifest (record count, SHA-256).

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

from issuance.store.run_repo import Conn

FORMAT = "ssc-personalization/1"
RUN_MANIFEST = "run.manifest.json"

# One JSON object per card, rendered by PostgreSQL (keys in sorted order, envelopes as base64 without line
# breaks): the writer only groups lines by bank, so it runs beside the relay without competing for the
# interpreter.
_QUERY = """
SELECT c.bank_code, json_build_object(
    'account_number_enc', translate(encode(b.account_number_enc, 'base64'), E'\\n', ''),
    'application_id', a.application_id,
    'area_code', c.area_code,
    'bank_code', c.bank_code,
    'branch_code', a.branch_code,
    'card_identification_code', c.card_identification_code,
    'card_number', c.card_number,
    'holder_id_number_enc', translate(encode(a.id_number_enc, 'base64'), E'\\n', ''),
    'holder_name_enc', translate(encode(a.name_enc, 'base64'), E'\\n', ''),
    'issue_date', c.issue_date,
    'spec_version', c.spec_version,
    'valid_until', c.valid_until
)::text
FROM cards c
JOIN applications a USING (application_id)
JOIN bank_accounts b USING (application_id)
WHERE c.production_run_id = %s
ORDER BY c.bank_code, c.card_number
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
    """Write (or rewrite identically) the run's files; returns the manifests."""
    by_bank: dict[str, list[bytes]] = {}
    for bank, line in conn.execute(_QUERY, (run_id,)):
        by_bank.setdefault(str(bank), []).append(line.encode() + b"\n")
    directory = run_dir(root, run_id)
    directory.mkdir(parents=True, exist_ok=True)
    manifests = []
    for bank, lines in sorted(by_bank.items()):
        data = b"".join(lines)
        name = f"{bank}.jsonl"
        _atomic_write(directory / name, data)
        manifest = {
            "format": FORMAT,
            "bank_code": bank,
            "run_id": run_id,
            "business_date": business_date,
            "file": name,
            "record_count": len(lines),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        _atomic_write(
            directory / f"{bank}.manifest.json", json.dumps(manifest, indent=2, sort_keys=True).encode()
        )
        manifests.append(manifest)
    # Written last: its presence says the run's files are complete (missing after a crash: write again).
    _atomic_write(directory / RUN_MANIFEST, json.dumps(manifests, indent=2, sort_keys=True).encode())
    return manifests


def files_complete(root: Path, run_id: int) -> bool:
    """Whether every file of the run was written (the run manifest is written last)."""
    return (run_dir(root, run_id) / RUN_MANIFEST).exists()
