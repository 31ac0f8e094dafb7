"""The floors the nightly is measured against: one process reads the night's planned records into PostgreSQL.

Two floors over the same planned ranges:
  honest floor:   what this machine can do in one process. Every partition assigned at once, fetches
                  tuned for throughput (short broker wait, large fetches, many records per poll), the
                  single-object header checked by hand and the body read by fastavro with the writer's schema
                  looked up by its fingerprint, a binary COPY of the kept columns into an unlogged table.
                  Measured in three passes so that the breakdown shows: consume alone, consume + decode,
                  consume + decode + COPY (the floor's figure).
  contract floor: the floor of the earlier rounds, kept so that their figures stay comparable. Partitions
                  one after another with the consumer's default fetch wait, the project's decode and contract
                  parse into its message objects, a text COPY.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from io import BytesIO
from typing import Any

from fastavro import schemaless_reader
from kafka import KafkaConsumer, TopicPartition

from issuance.codec.avro import _BODY_ERRORS, HEADER_SIZE
from issuance.codec.registry import MAGIC, default_registry
from issuance.errors import BrokerUnavailable
from issuance.kafka.client_config import KafkaClientConfig
from pipelines.records import PartitionRange

HONEST_TABLE = "bench_honest_floor"
CONTRACT_TABLE = "bench_floor"
MIB = 1024 * 1024
# Fetch settings of the honest floor. The broker answers a fetch at once when it has data; the short wait only
# matters for the last, empty fetches (the default 500 ms made every partition switch cost half a second).
FETCH_MAX_WAIT_MS = 10
MAX_PARTITION_FETCH_BYTES = 16 * MIB
FETCH_MAX_BYTES = 64 * MIB
MAX_POLL_RECORDS = 50_000
POLL_TIMEOUT_MS = 50
STALL_S = 60.0  # no record for this long while planned records are missing: the broker lost them
# The columns both floors keep, binary-typed for the honest floor's COPY.
COLUMNS = (
    ("topic", "text"),
    ("part", "int4"),
    ("off", "int8"),
    ("id", "text"),
    ("branch", "text"),
    ("bank", "text"),
    ("at", "timestamptz"),
    ("ok", "bool"),
)
# The record each topic kind carries: (record name, id field, branch field or None, bank field, time field).
_FIELDS = {
    "application": ("ApplicationSubmitted", "application_id", "branch_code", "bank_code", "submitted_at"),
    "agreement": ("AgreementSigned", "agreement_id", None, "bank_code", "signed_at"),
}

Row = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class FloorPass:
    """One timed pass over the plan."""

    label: str
    records: int  # planned records read
    decoded: int  # of those, the ones decoded (0 when the pass does not decode)
    started: float  # on the monotonic clock
    seconds: float

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True, slots=True)
class HonestFloor:
    """The honest floor's three passes; `full` is the floor's figure."""

    consume: FloorPass
    decode: FloorPass
    full: FloorPass

    def passes(self) -> tuple[FloorPass, FloorPass, FloorPass]:
        return (self.consume, self.decode, self.full)


def kind_of(topic: str) -> str:
    """The contract a topic carries, from its name (`<prefix>branch.applications` or `.agreements`)."""
    return "application" if topic.endswith("applications") else "agreement"


def create_table(conn: Any, table: str) -> None:
    """An empty unlogged table with the floors' columns."""
    columns = ", ".join(f"{name} {kind}" for name, kind in COLUMNS)
    conn.execute(f"CREATE UNLOGGED TABLE IF NOT EXISTS {table} ({columns})")
    conn.execute(f"TRUNCATE {table}")


def decoder(kind: str) -> Callable[[bytes | None], Row | None]:
    """The honest floor's decode for one topic kind: (id, branch, bank, at) of a decodable record, else None.

    Decodable means what the project's codec accepts: the single-object marker, a known writer fingerprint
    of the topic's record, a body fastavro reads to its last byte. The body is read with the writer's schema
    alone: every known version resolves to the newest (a tested guarantee of the registry), so the resolution
    step adds nothing the floor keeps."""
    record_name, id_field, branch_field, bank_field, at_field = _FIELDS[kind]
    writers = {fp: s.parsed for fp, s in default_registry().by_fingerprint.items() if s.name == record_name}

    def decode(value: bytes | None) -> Row | None:
        if value is None or len(value) < HEADER_SIZE or value[:2] != MAGIC:
            return None
        writer = writers.get(value[2:HEADER_SIZE])
        if writer is None:
            return None
        buffer = BytesIO(value)
        buffer.seek(HEADER_SIZE)
        try:
            record: Any = schemaless_reader(buffer, writer, None)  # a dict: our schemas are all records
        except _BODY_ERRORS:
            return None
        if buffer.tell() != len(value):
            return None
        try:
            at: datetime | None = datetime.fromisoformat(record[at_field])
        except ValueError:
            at = None
        if at is not None and at.tzinfo is None:
            at = None  # decodable, but no time with an offset: the contract rejects it, the floor keeps None
        branch = record[branch_field] if branch_field else None
        return (record[id_field], branch, record[bank_field], at)

    return decode


def consume(kafka: KafkaClientConfig, plan: Sequence[PartitionRange]) -> Iterator[tuple[str, int, list[Any]]]:
    """Every planned record, as (topic, partition, records) batches, all partitions assigned at once.

    A partition is paused once its planned end is read; records past the end are dropped."""
    ranges = {TopicPartition(p.topic, p.partition): p for p in plan if p.end > p.start}
    if not ranges:
        return
    consumer = KafkaConsumer(
        **kafka.client_kwargs(),
        group_id=None,
        enable_auto_commit=False,
        client_id="bench-honest-floor",
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        max_partition_fetch_bytes=MAX_PARTITION_FETCH_BYTES,
        fetch_max_bytes=FETCH_MAX_BYTES,
        max_poll_records=MAX_POLL_RECORDS,
    )
    try:
        consumer.assign(list(ranges))
        for tp, part in ranges.items():
            consumer.seek(tp, part.start)
        remaining = set(ranges)
        last_progress = time.monotonic()
        while remaining:
            batch = consumer.poll(timeout_ms=POLL_TIMEOUT_MS)
            for tp, records in batch.items():
                end = ranges[tp].end
                if records and records[-1].offset >= end:
                    records = [r for r in records if r.offset < end]
                if records:
                    last_progress = time.monotonic()
                    yield tp.topic, tp.partition, records
            done = [tp for tp in remaining if consumer.position(tp) >= ranges[tp].end]
            if done:
                consumer.pause(*done)
                remaining.difference_update(done)
            if remaining and time.monotonic() - last_progress > STALL_S:
                missing = sorted(f"{tp.topic}[{tp.partition}]" for tp in remaining)
                raise BrokerUnavailable(
                    f"honest floor: no record for {STALL_S:.0f} s from {', '.join(missing)}"
                )
    finally:
        consumer.close()


def honest_pass(
    kafka: KafkaClientConfig,
    database_url: str,
    plan: Sequence[PartitionRange],
    *,
    decode: bool = True,
    copy: bool = True,
    table: str = HONEST_TABLE,
) -> FloorPass:
    """One pass of the honest floor: consume, then optionally decode, then optionally COPY what it decoded."""
    import psycopg

    label = "consume" + (" + decode" if decode else "") + (" + COPY" if copy else "")
    decoders = {kind: decoder(kind) for kind in _FIELDS}
    count = decoded = 0
    started = time.monotonic()
    with psycopg.connect(database_url, application_name="bench-honest-floor") as conn:
        if copy:
            create_table(conn, table)
            conn.commit()
        sink: AbstractContextManager[Any] = (
            conn.cursor().copy(f"COPY {table} FROM STDIN (FORMAT BINARY)") if copy else nullcontext()
        )
        with sink as writer:
            if writer is not None:
                writer.set_types([kind for _name, kind in COLUMNS])
            for topic, partition, records in consume(kafka, plan):
                count += len(records)
                if not decode:
                    continue
                decode_one = decoders[kind_of(topic)]
                for record in records:
                    fields = decode_one(record.value)
                    if fields is not None:
                        decoded += 1
                    if writer is not None:
                        if fields is None:
                            writer.write_row((topic, partition, record.offset, None, None, None, None, False))
                        else:
                            writer.write_row((topic, partition, record.offset, *fields, True))
        conn.commit()
    return FloorPass(label, count, decoded, started, time.monotonic() - started)


def honest_floor(
    kafka: KafkaClientConfig,
    database_url: str,
    plan: Sequence[PartitionRange],
    *,
    table: str = HONEST_TABLE,
) -> HonestFloor:
    """The honest floor's breakdown: consume alone, + decode, + COPY."""
    results = []
    for decode, copy in ((False, False), (True, False), (True, True)):
        results.append(honest_pass(kafka, database_url, plan, decode=decode, copy=copy, table=table))
    return HonestFloor(*results)


def contract_floor(
    kafka: KafkaClientConfig, database_url: str, plan: Sequence[PartitionRange]
) -> tuple[int, float]:
    """The contract floor: the planned ranges one partition after another, decode and contract parse, COPY
    as text into an unlogged table (the benchmark's floor before the honest floor; unchanged)."""
    from issuance.codec.avro import decode
    from issuance.domain.contract import parse_agreement, parse_application
    from issuance.errors import DecodeError
    from issuance.store.db import connect

    started = time.monotonic()
    consumer = KafkaConsumer(
        **kafka.client_kwargs(),
        group_id=None,
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=32 * 1024 * 1024,
    )
    rows: list[Row] = []
    count = 0
    with connect(database_url) as conn:
        create_table(conn, CONTRACT_TABLE)

        def flush() -> None:
            with conn.cursor() as cur, cur.copy(f"COPY {CONTRACT_TABLE} FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            rows.clear()

        for part in plan:
            if part.end <= part.start:
                continue
            tp = TopicPartition(part.topic, part.partition)
            consumer.assign([tp])
            consumer.seek(tp, part.start)
            applications = "applications" in part.topic
            while consumer.position(tp) < part.end:
                for record in consumer.poll(timeout_ms=500).get(tp, ()):
                    if record.offset >= part.end:
                        continue
                    count += 1
                    try:
                        decoded = decode(record.value or b"")  # a null record: not decodable
                        if applications:
                            a = parse_application(decoded.record)
                            rows.append(
                                (
                                    part.topic,
                                    part.partition,
                                    record.offset,
                                    a.application_id,
                                    a.branch_code,
                                    a.bank_code,
                                    a.submitted_at,
                                    True,
                                )
                            )
                        else:
                            g = parse_agreement(decoded.record)
                            rows.append(
                                (
                                    part.topic,
                                    part.partition,
                                    record.offset,
                                    g.agreement_id,
                                    None,
                                    g.bank_code,
                                    g.signed_at,
                                    True,
                                )
                            )
                    except DecodeError:
                        rows.append(
                            (part.topic, part.partition, record.offset, None, None, None, None, False)
                        )
                if len(rows) >= 20_000:
                    flush()
        flush()
        conn.commit()
    consumer.close()
    return count, time.monotonic() - started
