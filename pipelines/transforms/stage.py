"""Stage step: COPY one chunk's rows into the run-scoped staging tables, replacing any earlier attempt's."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from psycopg import Connection

from issuance.store.db import connect
from issuance.store.run_repo import replace_chunk
from pipelines.faults import crash_point
from pipelines.records import ChunkSummary, StagedBatch

STAGE = "stage"


class StageBatch(beam.DoFn):  # type: ignore[misc]
    """StagedBatch -> ChunkSummary, after the chunk's rows are committed to the staging tables."""

    def __init__(self, database_url: str) -> None:
        self._database_url = database_url
        self._conn: Connection[Any] | None = None

    def setup(self) -> None:
        self._conn = connect(self._database_url, application_name="issuance-nightly-stage")

    def process(self, batch: StagedBatch) -> Iterator[ChunkSummary]:
        assert self._conn is not None, "setup() opens the connection"
        chunk = batch.chunk
        replace_chunk(
            self._conn,
            chunk.run_id,
            chunk.topic,
            chunk.partition,
            chunk.start,
            chunk.end,
            {
                "staged_applications": batch.applications,
                "staged_agreements": batch.agreements,
                "staged_dead_letters": batch.dead_letters,
            },
        )
        counts = (
            (STAGE, "applications", len(batch.applications)),
            (STAGE, "agreements", len(batch.agreements)),
            (STAGE, "dead_letters", len(batch.dead_letters)),
        )
        for stage, name, n in counts:
            Metrics.counter(stage, name).inc(n)
        crash_point("staged_chunk")
        yield ChunkSummary(chunk, counts)

    def teardown(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class StageChunks(beam.PTransform):  # type: ignore[misc]
    """PCollection[StagedBatch] -> PCollection[ChunkSummary]."""

    def __init__(self, database_url: str) -> None:
        super().__init__()
        self._database_url = database_url

    def expand(self, batches: beam.PCollection) -> beam.PCollection:
        return batches | "CopyIntoStaging" >> beam.ParDo(StageBatch(self._database_url)).with_output_types(
            ChunkSummary
        )  # ChunkSummary
