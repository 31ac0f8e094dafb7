"""Decode stage: raw records -> contract records; undecodable or contract-breaking ones: dead letters."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import apache_beam as beam
from apache_beam.metrics import Metrics

from issuance.codec.avro import decode
from issuance.crypto import Vault
from issuance.domain.contract import parse_agreement, parse_application
from issuance.domain.model import Agreement, Application
from issuance.errors import DecodeError
from pipelines.records import Chunk, RecordBatch

STAGE = "decode"
RECORD_NAMES = {"application": "ApplicationSubmitted", "agreement": "AgreementSigned"}


@dataclass(slots=True)
class DecodedBatch:
    """One chunk after decoding: contract records by offset, and dead-letter rows for the staging table."""

    chunk: Chunk
    applications: list[tuple[int, Application]] = field(default_factory=list)
    agreements: list[tuple[int, Agreement]] = field(default_factory=list)
    dead_letters: list[tuple[object, ...]] = field(default_factory=list)


class DecodeBatch(beam.DoFn):  # type: ignore[misc]
    """RecordBatch -> DecodedBatch; a record that fails to decode is routed, never raised."""

    def __init__(self, vault: Vault) -> None:
        self._vault = vault

    def process(self, batch: RecordBatch) -> Iterator[DecodedBatch]:
        chunk = batch.chunk
        out = DecodedBatch(chunk)
        expected = RECORD_NAMES[chunk.kind]
        for record in batch.records:
            branch_code: str | None = None
            try:
                decoded = decode(record.value, expected)
                raw_branch = decoded.record.get("branch_code")
                branch_code = raw_branch if isinstance(raw_branch, str) else None
                if chunk.kind == "application":
                    out.applications.append((record.offset, parse_application(decoded.record)))
                else:
                    out.agreements.append((record.offset, parse_agreement(decoded.record)))
            except DecodeError as exc:
                Metrics.counter(STAGE, exc.reason).inc()
                out.dead_letters.append(
                    (
                        chunk.run_id,
                        chunk.topic,
                        chunk.partition,
                        record.offset,
                        STAGE,
                        exc.reason,
                        str(exc),
                        self._vault.encrypt_bytes(record.value),
                        branch_code,
                    )
                )
        Metrics.counter(STAGE, f"{chunk.kind}s_read").inc(len(batch.records))
        yield out


class DecodeRecords(beam.PTransform):  # type: ignore[misc]
    """PCollection[RecordBatch] -> PCollection[DecodedBatch]."""

    def __init__(self, vault: Vault) -> None:
        super().__init__()
        self._vault = vault

    def expand(self, batches: beam.PCollection) -> beam.PCollection:
        return batches | "DecodeEachRecord" >> beam.ParDo(DecodeBatch(self._vault)).with_output_types(
            DecodedBatch
        )  # DecodedBatch
