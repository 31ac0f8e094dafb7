"""Verify stage: each application against the registry (bulk lookups per batch) and the catalog. Those that
pass are personalized beside the final transaction (`pipelines.personalize_staged`), from the slot staged
here."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from psycopg import Connection

from issuance.crypto import Vault
from issuance.domain.contract import record_bytes, valid_code
from issuance.domain.duplicates import content_parts
from issuance.domain.model import Application, DeadLetterReason, ReferenceData
from issuance.domain.verification import verify
from issuance.store.db import connect
from issuance.store.reference_repo import lookup_cards, lookup_persons
from issuance.store.run_repo import issued_card_holders
from pipelines.records import Chunk, StagedBatch
from pipelines.transforms.decode import DecodedBatch, dead_letter_row

STAGE = "verify"


def _utc_offset_seconds(application: Application) -> int:
    offset = application.submitted_at.utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


class VerifyBatch(beam.DoFn):  # type: ignore[misc]
    """DecodedBatch -> StagedBatch: verification reasons per application, personal data encrypted."""

    def __init__(self, database_url: str, vault: Vault, catalog: ReferenceData) -> None:
        self._database_url = database_url
        self._vault = vault
        self._catalog = catalog
        self._conn: Connection[Any] | None = None

    def setup(self) -> None:
        self._conn = connect(self._database_url, autocommit=True, application_name="issuance-nightly-verify")

    def process(self, batch: DecodedBatch) -> Iterator[StagedBatch]:
        catalog = self._catalog
        conn = self._conn
        assert conn is not None, "setup() opens the connection"
        chunk = batch.chunk
        out = StagedBatch(chunk, agreements=_agreement_rows(batch), dead_letters=list(batch.dead_letters))
        apps = [app for _, app in batch.applications]
        vault = self._vault
        keys = [vault.blind_index(app.applicant.id_number) for app in apps]
        guardian_keys = [
            vault.blind_index(app.guardian_id_number) if app.guardian_id_number else None for app in apps
        ]
        persons = lookup_persons(conn, vault, set(keys) | {k for k in guardian_keys if k is not None})
        registered = lookup_cards(conn, {app.card_number for app in apps if app.card_number})
        holders = issued_card_holders(conn, set(keys))
        sealed = vault.encrypt_many(
            value
            for app in apps
            for value in (
                app.applicant.id_number,
                app.applicant.name,
                app.applicant.phone,
                app.guardian_id_number,
            )
        )
        rows: list[tuple[Any, ...]] = []
        outcomes: Counter[str] = Counter()
        for index, ((offset, app), key, guardian_key) in enumerate(
            zip(batch.applications, keys, guardian_keys, strict=True)
        ):
            try:
                reasons = verify(
                    app,
                    persons.get(key),
                    catalog,
                    app.card_number in registered if app.card_number else False,
                    key in holders,
                    persons.get(guardian_key) if guardian_key is not None else None,
                )
            except Exception as exc:  # the safety net: one record never stops a night
                outcomes.update([DeadLetterReason.UNPROCESSABLE_RECORD.value])
                out.dead_letters.append(self._unprocessable(chunk, offset, app, exc))
                continue
            outcomes.update([r.value for r in reasons] or ["passed"])
            branch = catalog.branches.get(app.branch_code)
            area_code = branch.area_code if branch else None
            id_enc, name_enc, phone_enc, guardian_enc = sealed[4 * index : 4 * index + 4]
            rows.append(
                (
                    chunk.run_id,
                    chunk.topic,
                    chunk.partition,
                    offset,
                    app.application_id,
                    app.application_type.value,
                    app.branch_code,
                    app.bank_code,
                    app.channel.value,
                    key,
                    id_enc,
                    name_enc,
                    phone_enc,
                    guardian_enc,
                    app.card_number,
                    [m.value for m in app.materials],
                    app.submitted_at,
                    _utc_offset_seconds(app),
                    area_code,
                    [r.value for r in reasons],
                    chunk.slot(offset),
                    vault.digest(*content_parts(app)),
                )
            )
        for outcome, count in outcomes.items():
            Metrics.counter(STAGE, outcome).inc(count)
        out.applications = rows
        yield out

    def _unprocessable(self, chunk: Chunk, offset: int, app: Application, exc: Exception) -> tuple[Any, ...]:
        """The dead-letter row of an application the rules could not judge (a bug the night survives)."""
        detail = f"verification failed unexpectedly ({type(exc).__name__}); see the runbook (a poison record)"
        return dead_letter_row(
            chunk,
            offset,
            STAGE,
            DeadLetterReason.UNPROCESSABLE_RECORD.value,
            detail,
            self._vault.encrypt_bytes(record_bytes(app)),
            valid_code(app.branch_code),
        )

    def teardown(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _agreement_rows(batch: DecodedBatch) -> list[tuple[Any, ...]]:
    chunk = batch.chunk
    return [
        (
            chunk.run_id,
            chunk.topic,
            chunk.partition,
            offset,
            a.agreement_id,
            a.application_id,
            a.bank_code,
            a.terms_version,
            a.document_sha256,
            a.signed_at,
            a.channel.value,
        )
        for offset, a in batch.agreements
    ]


class VerifyApplications(beam.PTransform):  # type: ignore[misc]
    """PCollection[DecodedBatch] -> PCollection[StagedBatch].

    The catalog (issuing areas, banks, branches: a few hundred rows) travels with the DoFn, fixed when the run
    starts. That is what a singleton side input gives, without the fusion break a side input costs on the
    portable runners (the batches would be pickled between decode and verify).
    """

    def __init__(self, database_url: str, vault: Vault, catalog: ReferenceData) -> None:
        super().__init__()
        self._database_url = database_url
        self._vault = vault
        self._catalog = catalog

    def expand(self, batches: beam.PCollection) -> beam.PCollection:
        return batches | "VerifyEachApplication" >> beam.ParDo(
            VerifyBatch(self._database_url, self._vault, self._catalog)
        ).with_output_types(StagedBatch)  # StagedBatch
