"""A card vendor's return file (制卡回盘): its format, and the checks of its header and lines, without I/O.

The file answers one vendor file: a header line `{"run_id", "vendor_code", "manifest_sha256"}` (the SHA-256
of the vendor file it answers), then one line per card `{"card_number", "result": "PRODUCED" | "FAILED",
"chip_serial" (PRODUCED), "failure_reason" (FAILED)}`. A header that does not match the vendor file recorded
by the bureau refuses the whole file; a line that does not fit is refused alone, by line number and reason
(never its content: the file comes from outside), and the rest is applied. A failure reason is a code
(capitals, digits, underscores), so that no free text from outside lands in the bureau's records.

The vendor signs the file: `<file>.sig` beside it holds the base64 of its file signature (`sign_file`, Ed25519
over the file's SHA-256 with the vendor's registered signing key). A file without it, or whose bytes changed
after signing, is refused as a whole before any line is read for applying. A file is at most
MAX_RETURN_FILE_BYTES: larger ones are refused before they are read.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from issuance.domain.lifecycle import CardStatus
from issuance.errors import InputError

CARD_NUMBER = re.compile(r"[0-9A-Z]{9}")
CHIP_SERIAL = re.compile(r"[0-9A-F]{8,32}")
FAILURE_REASON = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
VENDOR_CODE = re.compile(r"[A-Za-z0-9_-]{1,32}")
MAX_LINE_BYTES = 4_096
# A return file answers one vendor file: a line per card (under 200 bytes), a few hundred thousand at most.
MAX_RETURN_FILE_BYTES = 64 * 1024 * 1024
MAX_SIGNATURE_BYTES = 1_024  # the base64 of a file signature is under 250 characters
SIGNATURE_SUFFIX = ".sig"


class Result(StrEnum):
    PRODUCED = "PRODUCED"
    FAILED = "FAILED"


class LineRefusal(StrEnum):
    """Why one line of a return file is not applied."""

    NOT_JSON = "NOT_JSON"  # not a JSON object (or longer than any line may be)
    CARD_NUMBER_INVALID = "CARD_NUMBER_INVALID"
    RESULT_INVALID = "RESULT_INVALID"  # neither PRODUCED nor FAILED
    CHIP_SERIAL_INVALID = "CHIP_SERIAL_INVALID"  # PRODUCED without an 8-32 hex-digit chip serial
    FAILURE_REASON_INVALID = "FAILURE_REASON_INVALID"  # FAILED without a reason code
    REPEATED_CARD = "REPEATED_CARD"  # the card was on an earlier line of this file
    NOT_IN_THIS_FILE = "NOT_IN_THIS_FILE"  # unknown card, or its current vendor file is another one
    NOT_IN_PRODUCTION = "NOT_IN_PRODUCTION"  # the card's production was answered already
    NOT_ALLOWED = "NOT_ALLOWED"  # the lifecycle refuses it (e.g. the card's application is closed)


class ReturnFileRefused(InputError):
    """The whole file is refused: its header does not name a vendor file the bureau wrote (exit 2)."""


@dataclass(frozen=True, slots=True)
class Header:
    run_id: int
    vendor_code: str
    manifest_sha256: str


@dataclass(frozen=True, slots=True)
class Line:
    """One card's result, as read (checked against the cards by `check_lines`)."""

    line: int  # 1-based line number in the file (the header is line 1)
    card_number: str
    result: Result
    chip_serial: str | None = None
    failure_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Refused:
    line: int
    reason: LineRefusal

    def to_json(self) -> dict[str, object]:
        return {"line": self.line, "reason": self.reason.value}


@dataclass(frozen=True, slots=True)
class ReturnFile:
    """A parsed return file: its digest, header, the well-formed lines and the refused ones."""

    sha256: str
    header: Header
    lines: tuple[Line, ...]
    refused: tuple[Refused, ...]


@dataclass(frozen=True, slots=True)
class VendorFile:
    """The vendor file the bureau wrote and recorded (a `vendor_files` row)."""

    run_id: int
    vendor_code: str
    sha256: str
    record_count: int


@dataclass(frozen=True, slots=True)
class CardInProduction:
    """What the checks need of a card named by a line."""

    card_number: str
    status: CardStatus
    production_run_id: int | None
    vendor_code: str | None


def signature_path(path: Path) -> Path:
    """Where the signature of a return file is: `<file>.sig` beside it."""
    return path.with_name(path.name + SIGNATURE_SUFFIX)


def parse_signature(text: bytes) -> bytes:
    """The file signature in a `.sig` file's text (ReturnFileRefused when it is not base64 of one)."""
    try:
        signature = base64.b64decode(text.strip(), validate=True)
    except ValueError as exc:
        raise ReturnFileRefused(
            "the return file's signature is not base64: ask the vendor to sign it"
        ) from exc
    if not signature:
        raise ReturnFileRefused("the return file's signature is empty: ask the vendor to sign it")
    return signature


def digest(data: bytes) -> str:
    """The SHA-256 of a file's bytes (hex): a return file is applied once by it."""
    return hashlib.sha256(data).hexdigest()


def _object(raw: bytes) -> Mapping[str, Any] | None:
    if len(raw) > MAX_LINE_BYTES:
        return None
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _text(record: Mapping[str, Any], name: str, pattern: re.Pattern[str]) -> str | None:
    value = record.get(name)
    return value if isinstance(value, str) and pattern.fullmatch(value) else None


def parse_header(raw: bytes) -> Header:
    """The header line, or ReturnFileRefused saying which field is wrong (never its value)."""
    record = _object(raw)
    if record is None:
        raise ReturnFileRefused("the first line of the return file is not a JSON header object")
    run_id = record.get("run_id")
    if not isinstance(run_id, int) or isinstance(run_id, bool) or run_id < 1:
        raise ReturnFileRefused("the return file's header has no valid run_id (a positive integer)")
    vendor_code = _text(record, "vendor_code", VENDOR_CODE)
    if vendor_code is None:
        raise ReturnFileRefused("the return file's header has no valid vendor_code")
    manifest_sha256 = _text(record, "manifest_sha256", SHA256_HEX)
    if manifest_sha256 is None:
        raise ReturnFileRefused("the return file's header has no valid manifest_sha256 (64 lowercase hex)")
    return Header(run_id, vendor_code, manifest_sha256)


def parse_line(number: int, raw: bytes) -> Line | Refused:
    """One card line, or why it is refused."""
    record = _object(raw)
    if record is None:
        return Refused(number, LineRefusal.NOT_JSON)
    card_number = _text(record, "card_number", CARD_NUMBER)
    if card_number is None:
        return Refused(number, LineRefusal.CARD_NUMBER_INVALID)
    result = record.get("result")
    if result == Result.PRODUCED:
        chip_serial = _text(record, "chip_serial", CHIP_SERIAL)
        if chip_serial is None:
            return Refused(number, LineRefusal.CHIP_SERIAL_INVALID)
        return Line(number, card_number, Result.PRODUCED, chip_serial=chip_serial)
    if result == Result.FAILED:
        reason = _text(record, "failure_reason", FAILURE_REASON)
        if reason is None:
            return Refused(number, LineRefusal.FAILURE_REASON_INVALID)
        return Line(number, card_number, Result.FAILED, failure_reason=reason)
    return Refused(number, LineRefusal.RESULT_INVALID)


def parse(data: bytes) -> ReturnFile:
    """Read a whole return file (ReturnFileRefused when it has no usable header). Blank lines are skipped."""
    rows = data.split(b"\n")
    numbered = [(n, row.strip()) for n, row in enumerate(rows, start=1) if row.strip()]
    if not numbered or numbered[0][0] != 1:
        raise ReturnFileRefused("the return file is empty or does not start with its header line")
    header = parse_header(numbered[0][1])
    lines: list[Line] = []
    refused: list[Refused] = []
    for number, raw in numbered[1:]:
        parsed = parse_line(number, raw)
        if isinstance(parsed, Line):
            lines.append(parsed)
        else:
            refused.append(parsed)
    return ReturnFile(digest(data), header, tuple(lines), tuple(refused))


def check_header(header: Header, recorded: VendorFile | None) -> None:
    """ReturnFileRefused unless the header names a vendor file the bureau wrote, by its digest."""
    where = f"run {header.run_id}, vendor {header.vendor_code}"
    if recorded is None:
        raise ReturnFileRefused(
            f"no vendor file was written for {where}: check the header names the right run and vendor"
        )
    if recorded.sha256 != header.manifest_sha256:
        raise ReturnFileRefused(
            f"the return file answers another vendor file than the one written for {where} (manifest_sha256"
            " differs): ask the vendor for the return file of this vendor file"
        )


def check_lines(
    header: Header, lines: tuple[Line, ...], cards: Mapping[str, CardInProduction]
) -> tuple[list[Line], list[Refused]]:
    """The lines to apply and the ones refused: each card once, of this vendor file, still in production."""
    accepted: list[Line] = []
    refused: list[Refused] = []
    seen: set[str] = set()
    for line in lines:
        card = cards.get(line.card_number)
        if line.card_number in seen:
            refused.append(Refused(line.line, LineRefusal.REPEATED_CARD))
        elif (
            card is None or card.production_run_id != header.run_id or card.vendor_code != header.vendor_code
        ):
            refused.append(Refused(line.line, LineRefusal.NOT_IN_THIS_FILE))
        elif card.status is not CardStatus.IN_PRODUCTION:
            refused.append(Refused(line.line, LineRefusal.NOT_IN_PRODUCTION))
        else:
            accepted.append(line)
        seen.add(line.card_number)
    return accepted, refused
