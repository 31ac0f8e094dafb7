"""A card vendor, simulated: reads a vendor file the night wrote and writes the return file a vendor would.

It is the vendor: it reads only the vendor file (one JSON object per card, with its `card_number`) and its
manifest, never the bureau's card rows, and it holds only its own keys (`keys_dir/parties/vendor-<code>.key`).
It checks the bureau's signature of the vendor file (the manifest's `signature` over the file's SHA-256)
before reading a line, opens each card's `personal_enc` with its own key (a card whose data does not open is
FAILED with PERSONAL_DATA_UNREADABLE: nothing could be written on its chip), and signs its return file
(`<VENDOR>.return.jsonl.sig`, written before the file, holds the base64 of its file signature). Each card is
PRODUCED with a chip serial, or FAILED with a reason code at the given rate; the choice and the serial are
derived from (seed, run, vendor, card number), so the same seed writes the same lines, and a card remade in a
later run gets a new draw.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from issuance.domain.vendor_return import Result, VendorFile, digest, signature_path
from issuance.errors import DecodeError, InputError
from issuance.trust.channel import sign_file, verify_file
from issuance.trust.errors import TrustFailure
from issuance.trust.keys import Directory, PartyKeys
from issuance.trust.parties import BUREAU
from issuance.trust.sealing import Unsealer, open_personal

FAILURE_REASONS = ("CHIP_WRITE_ERROR", "PRINT_DEFECT", "CARD_BODY_DAMAGED")
UNREADABLE = "PERSONAL_DATA_UNREADABLE"  # the card's sealed data did not open with the vendor's key
PERSONAL_RECORD = "VendorCardPersonal"


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


def _cards(path: Path, data: bytes, unsealer: Unsealer) -> list[tuple[str, bool]]:
    """Each card's number and whether its personal data opened with the vendor's key."""
    cards: list[tuple[str, bool]] = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except ValueError as exc:
            raise InputError(f"{path}: line {number} is not JSON: is this a vendor file?") from exc
        card = record.get("card_number") if isinstance(record, dict) else None
        if not isinstance(card, str):
            raise InputError(f"{path}: line {number} has no card_number: is this a vendor file?")
        cards.append((card, _opens(record.get("personal_enc"), card, unsealer)))
    return cards


def _opens(sealed: object, card: str, unsealer: Unsealer) -> bool:
    if not isinstance(sealed, str):
        return False
    try:
        open_personal(PERSONAL_RECORD, base64.b64decode(sealed, validate=True), unsealer, aad=card)
    except (TrustFailure, DecodeError, ValueError):
        return False
    return True


def _checked(source: Path, directory: Directory) -> bytes:
    """The vendor file's bytes once they match their manifest's SHA-256 and the bureau's signature of it
    (InputError otherwise: a vendor does not make cards from a file it cannot trust)."""
    data = source.read_bytes()
    manifest_path = source.with_name(source.name.removesuffix(".jsonl") + ".manifest.json")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        stated, signature = manifest.get("sha256"), base64.b64decode(manifest.get("signature") or "")
    except (OSError, ValueError, AttributeError, TypeError) as exc:
        raise InputError(f"{manifest_path} is missing or not a signed JSON manifest") from exc
    if stated != digest(data):
        raise InputError(f"{source} does not match the SHA-256 of its manifest: the file is damaged")
    try:
        verify_file(directory, BUREAU, hashlib.sha256(data).digest(), signature)
    except TrustFailure as exc:
        raise InputError(
            f"{source} is not signed by the bureau ({exc.reason.value}: {exc.detail}): not produced"
        ) from exc
    return data


def simulate_files(
    root: Path,
    files: Sequence[VendorFile],
    fail_rate: float,
    seed: int,
    *,
    skip_written: bool,
    directory: Directory,
    keys_of: Callable[[str], PartyKeys],
) -> list[Written]:
    """Write the return file of each vendor file (those that have one already left out with skip_written),
    each vendor with its own keys (`keys_of(vendor_code)`)."""
    if skip_written:
        files = [f for f in files if not return_file_path(root, f.run_id, f.vendor_code).exists()]
    return [
        simulate(root, f.run_id, f.vendor_code, fail_rate, seed, directory, keys_of(f.vendor_code))
        for f in files
    ]


def simulate(
    root: Path,
    run_id: int,
    vendor_code: str,
    fail_rate: float,
    seed: int,
    directory: Directory,
    own: PartyKeys,
) -> Written:
    """Write `<VENDOR>.return.jsonl` and its signature for one vendor file (InputError when the vendor file
    is missing or not the bureau's)."""
    source = vendor_file_path(root, run_id, vendor_code)
    if not source.is_file():
        raise InputError(f"no vendor file {source}: check --run and the personalization directory")
    data = _checked(source, directory)
    cards = _cards(source, data, Unsealer(own))
    header = {"run_id": run_id, "vendor_code": vendor_code, "manifest_sha256": digest(data)}
    out = [json.dumps(header, sort_keys=True)]
    failed = 0
    for card, readable in cards:
        draw = int.from_bytes(_draw(seed, run_id, vendor_code, card, "result")[:8], "big") / 2**64
        if not readable:
            line = {"card_number": card, "result": Result.FAILED.value, "failure_reason": UNREADABLE}
            failed += 1
        elif draw < fail_rate:
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
    content = ("\n".join(out) + "\n").encode()
    signature = sign_file(own, hashlib.sha256(content).digest())
    _replace(signature_path(target), base64.b64encode(signature) + b"\n")  # before the file it signs
    _replace(target, content)
    return Written(target, run_id, vendor_code, len(cards) - failed, failed)


def _replace(target: Path, content: bytes) -> None:
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_bytes(content)
    temporary.replace(target)  # a reader never sees half a file
