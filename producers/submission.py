"""Submitting a JSON-lines file: every line validated, the valid ones published, every line accounted for.

Each non-blank line ends in exactly one status: PUBLISHED (the broker acknowledged it), REJECTED (not JSON,
not an object, or a contract violation: never sent) or UNCONFIRMED (sent or not, the broker did not
acknowledge it in time). When the broker stops answering, the remaining lines are still validated but no
longer sent. The per-line status lives in compact arrays, so a file of a million lines costs a few MiB.

Fields a line carries beyond the contract are allowed but not sent (the Avro record has no place for them):
the summary counts the lines that carried each such field (`ignored_fields`), so that nothing is dropped
silently; the line is still published.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import IO, Any

from issuance.errors import BrokerUnavailable, ConfigurationError, InputError, SchemaViolation
from issuance.trust.parties import Party
from producers.client import Acknowledged, BranchClient, Outcome, Prepared, Preparer
from producers.raw_prepare import Forgery, encode_record, sign_raw

MAX_REJECTIONS_SHOWN = 100
MAX_RANGES_SHOWN = 50
MAX_IGNORED_FIELDS_SHOWN = 50  # distinct names in the summary; the rest count as OTHER_FIELDS
OTHER_FIELDS = "(other fields)"
PROGRESS_EVERY = 500


class Kind(StrEnum):
    """What a file holds."""

    APPLICATIONS = "applications"
    AGREEMENTS = "agreements"
    RAW = "raw"


class LineStatus(IntEnum):
    PENDING = 0
    PUBLISHED = 1
    REJECTED = 2
    UNCONFIRMED = 3


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a line was not published: the offending fields (never their values)."""

    line: int
    problems: tuple[tuple[str, str], ...]

    def to_json(self) -> dict[str, Any]:
        """The first problem as field/reason, and every problem."""
        first_field, first_reason = self.problems[0]
        return {
            "line": self.line,
            "field": first_field,
            "reason": first_reason,
            "problems": [{"field": f, "reason": r} for f, r in self.problems],
        }


@dataclass(slots=True)
class SubmissionReport:
    """What happened to a file's lines."""

    file: str
    kind: str
    topic: str
    lines: int = 0
    published: int = 0
    rejected: int = 0
    unconfirmed: int = 0
    rejections: list[Rejection] = field(default_factory=list)  # the first MAX_REJECTIONS_SHOWN
    ignored_fields: dict[str, int] = field(default_factory=dict)  # field beyond the contract -> lines
    unconfirmed_ranges: list[tuple[int, int]] = field(default_factory=list)  # line ranges, the first ones
    error: str | None = None
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        """0 all published, 2 some lines rejected, 1 some lines not confirmed by the broker."""
        if self.unconfirmed:
            return 1
        return 2 if self.rejected else 0

    def to_json(self) -> dict[str, Any]:
        """The --json summary."""
        return {
            "file": self.file,
            "kind": self.kind,
            "topic": self.topic,
            "lines": self.lines,
            "published": self.published,
            "rejected": self.rejected,
            "unconfirmed": self.unconfirmed,
            "rejections": [r.to_json() for r in self.rejections],
            "ignored_fields": dict(sorted(self.ignored_fields.items())),
            "unconfirmed_lines": [[a, b] for a, b in self.unconfirmed_ranges],
            "error": self.error,
            "seconds": round(self.seconds, 3),
            "records_per_second": round(self.published / self.seconds) if self.seconds > 0 else None,
            "exit_code": self.exit_code,
        }


class LineRejected(Exception):
    """A line that is not a valid record (internal: becomes a Rejection)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{f}: {r}" for f, r in problems))
        self.problems = tuple(problems)


class Ledger:
    """Per-line status, partition and offset, in arrays; acknowledgements arrive on the producer's thread."""

    def __init__(self) -> None:
        self.line_numbers = array("q")
        self.status = bytearray()
        self.partitions = array("i")
        self.offsets = array("q")
        self.problems: dict[int, tuple[tuple[str, str], ...]] = {}
        # Only the lines that carried fields beyond the contract.
        self.ignored: dict[int, tuple[str, ...]] = {}
        self.published = 0
        self._lock = threading.Lock()
        self._final = False

    def add(self, line_number: int) -> int:
        """Start tracking a line; returns its index."""
        self.line_numbers.append(line_number)
        self.status.append(LineStatus.PENDING)
        self.partitions.append(-1)
        self.offsets.append(-1)
        return len(self.status) - 1

    def reject(self, index: int, problems: tuple[tuple[str, str], ...]) -> None:
        """The line is not a valid record."""
        self.status[index] = LineStatus.REJECTED
        self.problems[index] = problems

    def unconfirmed(self, index: int) -> None:
        """The line was not (or not provably) stored by the broker."""
        with self._lock:
            self.status[index] = LineStatus.UNCONFIRMED

    def callback(self, index: int) -> Callable[[Outcome], None]:
        """The acknowledgement handler of one line."""

        def done(outcome: Outcome) -> None:
            with self._lock:
                if self._final:
                    return  # counted as unconfirmed already: the report stays as printed
                if isinstance(outcome, Acknowledged):
                    self.status[index] = LineStatus.PUBLISHED
                    self.partitions[index] = outcome.partition
                    self.offsets[index] = outcome.offset
                    self.published += 1
                else:
                    self.status[index] = LineStatus.UNCONFIRMED

        return done

    def finalize(self) -> None:
        """Whatever has no answer now is unconfirmed; later answers are ignored."""
        with self._lock:
            self._final = True
            for index, status in enumerate(self.status):
                if status == LineStatus.PENDING:
                    self.status[index] = LineStatus.UNCONFIRMED

    def write_report(self, out: IO[str]) -> None:
        """One JSON line per input line, in file order."""
        for index, status in enumerate(self.status):
            entry: dict[str, Any] = {
                "line": self.line_numbers[index],
                "status": LineStatus(status).name.lower(),
            }
            if status == LineStatus.PUBLISHED:
                entry.update(partition=self.partitions[index], offset=self.offsets[index])
            elif status == LineStatus.REJECTED:
                entry["problems"] = [{"field": f, "reason": r} for f, r in self.problems[index]]
            if index in self.ignored:
                entry["ignored_fields"] = list(self.ignored[index])
            out.write(json.dumps(entry) + "\n")


def _parse_line(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise LineRejected([("$", f"not UTF-8 text (byte {exc.start})")]) from exc
    except json.JSONDecodeError as exc:
        raise LineRejected([("$", f"not JSON: {exc.msg} at column {exc.colno}")]) from exc


def _prepare_raw(preparer: Preparer, record: Any) -> Prepared:
    """A prepared raw message: {"message_id", "topic": applications|agreements, "key", then either
    "value_b64" (bytes verbatim; null: a null record, what a tombstone looks like on the topic) or "record"
    (encoded here, an application's personal fields sealed), "sender" ("kind:code" that signs it; null or
    absent: unsigned) and "forgery" (producers/raw_prepare.py)}."""
    if not isinstance(record, dict):
        raise LineRejected([("$", "must be an object")])
    problems: list[tuple[str, str]] = []
    topics = {"applications": preparer.topics.applications, "agreements": preparer.topics.agreements}
    topic = topics.get(record.get("topic"))  # type: ignore[arg-type]
    if topic is None:
        problems.append(("topic", "must be applications or agreements"))
    key = record.get("key")
    if key is not None and not isinstance(key, str):
        problems.append(("key", "must be a string or null"))
    sender = _sender(record.get("sender"), problems)
    forgery = _forgery(record.get("forgery"), problems)
    value: bytes | None = None
    encoded = record.get("value_b64")
    fields = record.get("record")
    if encoded is not None and fields is not None:
        problems.append(("record", "give value_b64 or record, not both"))
    elif encoded is not None:
        try:
            value = base64.b64decode(str(encoded), validate=True)
        except (binascii.Error, ValueError):
            problems.append(("value_b64", "must be base64 or null"))
    elif fields is not None and not isinstance(fields, dict):
        problems.append(("record", "must be an object"))
    if problems:
        raise LineRejected(problems)
    assert topic is not None
    if isinstance(fields, dict):
        try:
            value = encode_record(preparer, topic, fields, sender, forgery)
        except SchemaViolation as exc:
            raise LineRejected(list(exc.problems) or [("record", "does not fit the schema")]) from exc
        except ValueError as exc:
            raise LineRejected([("forgery", str(exc))]) from exc
    prepared = Prepared(
        topic, key.encode() if key is not None else None, value, str(record.get("message_id", ""))
    )
    return sign_raw(preparer, prepared, sender, forgery)


def _sender(text: Any, problems: list[tuple[str, str]]) -> Party | None:
    if text is None:
        return None
    try:
        return Party.parse(str(text))
    except ConfigurationError:
        problems.append(("sender", "must be kind:code (e.g. branch:ICBC11010501) or null"))
        return None


def _forgery(text: Any, problems: list[tuple[str, str]]) -> Forgery | None:
    if text is None:
        return None
    try:
        return Forgery(text)
    except ValueError:
        problems.append(("forgery", f"must be one of {', '.join(Forgery)} or null"))
        return None


def prepare_line(preparer: Preparer, kind: Kind, raw: bytes) -> Prepared:
    """Validate one line and encode it; LineRejected says which fields are wrong."""
    record = _parse_line(raw)
    try:
        if kind is Kind.RAW:
            return _prepare_raw(preparer, record)
        if not isinstance(record, dict):
            raise LineRejected([("$", "must be a JSON object")])
        if kind is Kind.APPLICATIONS:
            return preparer.prepare_application(record)
        return preparer.prepare_agreement(record)
    except SchemaViolation as exc:
        raise LineRejected(list(exc.problems) or [("$", "contract violation")]) from exc
    except ConfigurationError as exc:  # no key for the record's party in this keystore, or none registered
        field = "sender" if kind is Kind.RAW else "branch_code" if kind is Kind.APPLICATIONS else "bank_code"
        raise LineRejected([(field, str(exc))]) from exc


def count_lines(path: Path) -> int:
    """Newlines in the file (a last line without one counts too): the progress bar's total."""
    total, last = 0, b"\n"
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            total += chunk.count(b"\n")
            last = chunk[-1:]
    return total + (last != b"\n")


def submit_file(
    client: BranchClient,
    path: Path,
    kind: Kind,
    progress: Callable[[int, int], None] | None = None,
    report_file: Path | None = None,
) -> SubmissionReport:
    """Validate and publish every line of `path`; never raises for a bad line or a dead broker."""
    topic = {
        Kind.APPLICATIONS: client.topics.applications,
        Kind.AGREEMENTS: client.topics.agreements,
        Kind.RAW: "applications/agreements",
    }[kind]
    report = SubmissionReport(str(path), kind.value, topic)
    ledger = Ledger()
    started = time.monotonic()
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    with handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            index = ledger.add(number)
            try:
                prepared = prepare_line(client.preparer, kind, raw)
            except LineRejected as exc:
                ledger.reject(index, exc.problems)
                continue
            if prepared.ignored:
                ledger.ignored[index] = prepared.ignored
            if report.error is not None:
                ledger.unconfirmed(index)  # the broker is gone: keep validating, stop sending
                continue
            try:
                client.send(prepared, ledger.callback(index))
            except BrokerUnavailable as exc:
                report.error = str(exc)
                ledger.unconfirmed(index)
            if progress is not None and number % PROGRESS_EVERY == 0:
                progress(number, ledger.published)
    try:
        client.flush()
    except BrokerUnavailable as exc:
        report.error = report.error or str(exc)
    ledger.finalize()
    report.seconds = time.monotonic() - started
    _summarize(ledger, report)
    if progress is not None:
        progress(ledger.line_numbers[-1] if ledger.line_numbers else 0, ledger.published)
    if report_file is not None:
        with report_file.open("w", encoding="utf-8") as out:
            ledger.write_report(out)
    return report


def _summarize(ledger: Ledger, report: SubmissionReport) -> None:
    report.lines = len(ledger.status)
    ignored: dict[str, int] = {}
    for names in ledger.ignored.values():
        for name in names:
            if name not in ignored and len(ignored) >= MAX_IGNORED_FIELDS_SHOWN:
                name = OTHER_FIELDS
            ignored[name] = ignored.get(name, 0) + 1
    report.ignored_fields = ignored
    ranges: list[list[int]] = []
    in_range = False
    for index, status in enumerate(ledger.status):
        line = ledger.line_numbers[index]
        if status == LineStatus.UNCONFIRMED:
            report.unconfirmed += 1
            if in_range:
                ranges[-1][1] = line
            else:
                ranges.append([line, line])
            in_range = True
            continue
        in_range = False
        if status == LineStatus.PUBLISHED:
            report.published += 1
        else:
            report.rejected += 1
            if len(report.rejections) < MAX_REJECTIONS_SHOWN:
                report.rejections.append(Rejection(line, ledger.problems[index]))
    report.unconfirmed_ranges = [(a, b) for a, b in ranges[:MAX_RANGES_SHOWN]]
    if report.unconfirmed and report.error is None:
        report.error = "the broker did not acknowledge every record in time"
