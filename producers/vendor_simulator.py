"""A card vendor, simulated: reads a vendor file the night wrote and writes the return file a vendor would.

It is the vendor: it reads only the vendor file (one JSON object per card, with its `card_number`) and its
manifest, never the bureau's card rows. Each card is PRODUCED with a chip serial, or FAILED with a reason code
at the given rate; the choice and the serial are derived from (seed, run, vendor, card number), so the same
seed writes the same file, and a card remade in a later run gets a new draw.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from issuance.domain.vendor_return import Result, VendorFile, digest
from issuance.errors import InputError

FAILURE_REASONS = ("CHIP_WRITE_ERROR", "PRINT_DEFECT", "CARD_BODY_DAMAGED")


@dataclass(frozen=True, slots=True)
class Written:
    """A return file written next to its vendor file."""

    path: Path
    run_id: int
    vendor_code: str
    produced: int
    failed: int

    def to_json(self) -> dict[str, object]:
        return {
            "path": str(self.path),
            "run_id": self.run_id,
            "vendor_code": self.vendor_code,
            "produced": self.produced,
            "failed": self.failed,
        }


def run_dir(root: Path, run_id: int) -> Path:
    """Where the night writes a run's vendor files."""
    return root / f"run-{run_id:06d}"


def vendor_file_path(root: Path, run_id: int, vendor_code: str) -> Path:
    return run_dir(root, run_id) / f"{vendor_code}.jsonl"


def return_file_path(root: Path, run_id: int, vendor_code: str) -> Path:
    return run_dir(root, run_id) / f"{vendor_code}.return.jsonl"


def _draw(seed: int, run_id: int, vendor_code: str, card_number: str, what: str) -> bytes:
    return hashlib.sha256(f"{seed}:{run_id}:{vendor_code}:{card_number}:{what}".encode()).digest()


def _card_numbers(path: Path) -> list[str]:
    numbers: list[str] = []
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except ValueError as exc:
                raise InputError(f"{path}: line {number} is not JSON: is this a vendor file?") from exc
            card = record.get("card_number") if isinstance(record, dict) else None
            if not isinstance(card, str):
                raise InputError(f"{path}: line {number} has no card_number: is this a vendor file?")
            numbers.append(card)
    return numbers


def _checked_digest(source: Path) -> str:
    """The vendor file's SHA-256, checked against its manifest when there is one (as a vendor would)."""
    actual = digest(source.read_bytes())
    manifest = source.with_name(source.name.removesuffix(".jsonl") + ".manifest.json")
    if manifest.is_file():
        try:
            stated = json.loads(manifest.read_text(encoding="utf-8")).get("sha256")
        except (ValueError, AttributeError) as exc:
            raise InputError(f"{manifest} is not a JSON manifest") from exc
        if stated != actual:
            raise InputError(f"{source} does not match the SHA-256 of its manifest: the file is damaged")
    return actual


def simulate_files(
    root: Path, files: Sequence[VendorFile], fail_rate: float, seed: int, *, skip_written: bool
) -> list[Written]:
    """Write the return file of each vendor file (those that have one already left out with skip_written)."""
    if skip_written:
        files = [f for f in files if not return_file_path(root, f.run_id, f.vendor_code).exists()]
    return [simulate(root, f.run_id, f.vendor_code, fail_rate, seed) for f in files]


def simulate(root: Path, run_id: int, vendor_code: str, fail_rate: float, seed: int) -> Written:
    """Write `<VENDOR>.return.jsonl` for one vendor file (InputError when the vendor file is missing)."""
    source = vendor_file_path(root, run_id, vendor_code)
    if not source.is_file():
        raise InputError(f"no vendor file {source}: check --run and the personalization directory")
    cards = _card_numbers(source)
    header = {"run_id": run_id, "vendor_code": vendor_code, "manifest_sha256": _checked_digest(source)}
    out = [json.dumps(header, sort_keys=True)]
    failed = 0
    for card in cards:
        draw = int.from_bytes(_draw(seed, run_id, vendor_code, card, "result")[:8], "big") / 2**64
        if draw < fail_rate:
            reason = FAILURE_REASONS[
                _draw(seed, run_id, vendor_code, card, "reason")[0] % len(FAILURE_REASONS)
            ]
            line = {"card_number": card, "result": Result.FAILED.value, "failure_reason": reason}
            failed += 1
        else:
            serial = _draw(seed, run_id, vendor_code, card, "chip").hex()[:16].upper()
            line = {"card_number": card, "result": Result.PRODUCED.value, "chip_serial": serial}
        out.append(json.dumps(line, sort_keys=True))
    target = return_file_path(root, run_id, vendor_code)
    temporary = target.with_suffix(".tmp")
    temporary.write_text("\n".join(out) + "\n", encoding="utf-8")
    temporary.replace(target)  # a reader never sees half a file
    return Written(target, run_id, vendor_code, len(cards) - failed, failed)
