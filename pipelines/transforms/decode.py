"""Decode stage: raw records -> contract records; every record that cannot become one is a dead letter.

No record can stop the night here: an empty or oversized value, a record that does not authenticate, bytes
that do not decode, a record sent by another party than the one it speaks for, personal fields that do not
open, a record that breaks the contract, and (the safety net) any unexpected error while reading one record
all become a dead-letter row with a reason code and a detail naming fields, never values. The record's own
bytes go, encrypted, with it.

Trust comes first (`NightTrust`): the channel headers are verified before the body is decoded
(SIGNATURE_MISSING, SIGNATURE_INVALID), the decoded record must speak for its authenticated sender (an
application for its branch, an agreement for its bank: SENDER_MISMATCH), and an application's personal fields
must open with the bureau's key (SEAL_INVALID). Only then is the contract checked, on the same record as
before.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date

import apache_beam as beam
from apache_beam.metrics import Metrics

from issuance.application_wire import check_sender, open_application
from issuance.codec.avro import decode
from issuance.crypto import Vault
from issuance.dead_letter_events import encode_headers
from issuance.domain.contract import (
    DEFAULT_MAX_RECORD_BYTES,
    check_size,
    parse_agreement,
    parse_application,
    valid_code,
)
from issuance.domain.model import Agreement, Application, DeadLetterReason
from issuance.errors import DecodeError
from issuance.trust.channel import Verifier
from issuance.trust.errors import TrustFailure
from issuance.trust.keys import Directory, PartyKeys
from issuance.trust.sealing import Unsealer
from pipelines.records import Chunk, RawRecord, RecordBatch

STAGE = "decode"
RECORD_NAMES = {"application": "ApplicationSubmitted", "agreement": "AgreementSigned"}


@dataclass(frozen=True, slots=True)
class NightTrust:
    """What the night verifies senders and opens personal fields with: the bureau's key pairs (current and
    earlier) and the directory of registered public keys, loaded once by the driver and shipped to the
    workers, which build their Verifier and Unsealer from them (their caches stay per worker)."""

    bureau: Sequence[PartyKeys]
    directory: Directory

    def verifier(self) -> Verifier:
        return Verifier(self.bureau, self.directory)

    def unsealer(self) -> Unsealer:
        return Unsealer(self.bureau)


@dataclass(slots=True)
class DecodedBatch:
    """One chunk after decoding: contract records by offset, and dead-letter rows for the staging table."""

    chunk: Chunk
    applications: list[tuple[int, Application]] = field(default_factory=list)
    agreements: list[tuple[int, Agreement]] = field(default_factory=list)
    dead_letters: list[tuple[object, ...]] = field(default_factory=list)


def dead_letter_row(
    chunk: Chunk,
    offset: int,
    stage: str,
    reason: str,
    detail: str,
    payload_enc: bytes,
    branch_code: str | None,
    headers_enc: bytes | None = None,
) -> tuple[object, ...]:
    """A staged_dead_letters row (the table's column order); `headers_enc`: the message's headers sealed
    with the Vault, kept so that a re-drive of the original goes with its sender's authentication."""
    return (
        chunk.run_id,
        chunk.topic,
        chunk.partition,
        offset,
        stage,
        reason,
        detail,
        payload_enc,
        branch_code,
        headers_enc,
    )


class DecodeBatch(beam.DoFn):  # type: ignore[misc]
    """RecordBatch -> DecodedBatch; a record that fails to authenticate or decode is routed, never raised."""

    def __init__(
        self,
        vault: Vault,
        trust: NightTrust,
        business_date: date | None = None,
        max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    ) -> None:
        self._vault = vault
        self._trust = trust
        self._business_date = business_date
        self._max_bytes = max_record_bytes
        self._verifier: Verifier | None = None
        self._unsealer: Unsealer | None = None

    def setup(self) -> None:
        self._verifier = self._trust.verifier()
        self._unsealer = self._trust.unsealer()

    def process(self, batch: RecordBatch) -> Iterator[DecodedBatch]:
        chunk = batch.chunk
        out = DecodedBatch(chunk)
        for record in batch.records:
            self._decode(chunk, record, out)
        Metrics.counter(STAGE, f"{chunk.kind}s_read").inc(len(batch.records))
        yield out

    def _decode(self, chunk: Chunk, record: RawRecord, out: DecodedBatch) -> None:
        verifier, unsealer = self._verifier, self._unsealer
        assert verifier is not None and unsealer is not None, "setup() builds them"
        branch_code: str | None = None
        try:
            value = check_size(record.value, self._max_bytes)
            sender = verifier.sender(record.headers, record.key, value)
            fields = decode(value, RECORD_NAMES[chunk.kind]).record
            check_sender(chunk.kind, fields, sender)
            branch_code = valid_code(fields.get("branch_code"))
            if chunk.kind == "application":
                contract = open_application(fields, unsealer)
                out.applications.append((record.offset, parse_application(contract, self._business_date)))
            else:
                out.agreements.append((record.offset, parse_agreement(fields, self._business_date)))
        except DecodeError as exc:
            self._dead_letter(chunk, record, exc.reason, str(exc), branch_code, out)
        except TrustFailure as exc:
            self._dead_letter(chunk, record, exc.reason.value, exc.detail, branch_code, out)
        except Exception as exc:  # the safety net: one record never stops a night
            detail = (
                f"the record could not be decoded ({type(exc).__name__}); see the runbook (a poison record)"
            )
            self._dead_letter(
                chunk, record, DeadLetterReason.UNPROCESSABLE_RECORD.value, detail, branch_code, out
            )

    def _dead_letter(
        self,
        chunk: Chunk,
        record: RawRecord,
        reason: str,
        detail: str,
        branch_code: str | None,
        out: DecodedBatch,
    ) -> None:
        Metrics.counter(STAGE, reason).inc()
        # The whole value is kept (sealed) in the dead letter, however large: its event carries only a bounded
        # excerpt with size and digest (issuance/dead_letter_events.py); re-drive and export need all of it.
        payload = record.value or b""
        headers = self._vault.encrypt_bytes(encode_headers(record.headers)) if record.headers else None
        out.dead_letters.append(
            dead_letter_row(
                chunk,
                record.offset,
                STAGE,
                reason,
                detail,
                self._vault.encrypt_bytes(payload),
                branch_code,
                headers,
            )
        )


class DecodeRecords(beam.PTransform):  # type: ignore[misc]
    """PCollection[RecordBatch] -> PCollection[DecodedBatch].

    `business_date` is the run's (stored with it): the contract's timestamp bound, the same on a re-run."""

    def __init__(
        self,
        vault: Vault,
        trust: NightTrust,
        business_date: date | None = None,
        max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    ) -> None:
        super().__init__()
        self._vault = vault
        self._trust = trust
        self._business_date = business_date
        self._max_bytes = max_record_bytes

    def expand(self, batches: beam.PCollection) -> beam.PCollection:
        return batches | "DecodeEachRecord" >> beam.ParDo(
            DecodeBatch(self._vault, self._trust, self._business_date, self._max_bytes)
        ).with_output_types(DecodedBatch)  # DecodedBatch
