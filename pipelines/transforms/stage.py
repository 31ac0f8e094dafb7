"""Stage step: COPY one chunk's rows into the run-scoped staging tables, replacing any earlier attempt's.

A value PostgreSQL refuses (a data exception such as a NUL character, or a constraint of the table) must not
fail the chunk, and with it every later night over the same plan: the refused rows are found by bisection in
a transaction that is rolled back, become dead letters (UNPROCESSABLE_RECORD, detail naming the column, never
the value), and the chunk is staged again without them. The contract refuses every such value first; this is
the safety net behind it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from psycopg import Connection, sql
from psycopg.errors import DataError, IntegrityError

from issuance.crypto import Vault
from issuance.domain.contract import valid_code
from issuance.domain.model import DeadLetterReason
from issuance.store.db import connect, copy_rows
from issuance.store.run_repo import STAGED_AGREEMENT_COLUMNS, STAGED_APPLICATION_COLUMNS, replace_chunk
from pipelines.faults import crash_point
from pipelines.records import ChunkSummary, StagedBatch
from pipelines.transforms.decode import dead_letter_row

STAGE = "stage"
REFUSED = (DataError, IntegrityError)  # what a record's values can make PostgreSQL raise
_COLUMN = re.compile(r"column (\w+)")
# Column positions in the staged rows (run_repo's column order): offset, business id, branch code.
_OFFSET, _ID, _APPLICATION_BRANCH = 3, 4, 6
_ROW_TABLES = (
    ("staged_applications", STAGED_APPLICATION_COLUMNS),
    ("staged_agreements", STAGED_AGREEMENT_COLUMNS),
)

Row = tuple[Any, ...]


def refused_rows(
    conn: Connection[Any], table: str, columns: Sequence[str], rows: Sequence[Row]
) -> list[tuple[int, DataError | IntegrityError]]:
    """(index, error) of each row PostgreSQL refuses, by bisection; to call inside a transaction that is
    rolled back (every row that fits is written into it)."""
    try:
        with conn.transaction():
            copy_rows(conn, table, columns, rows)
        return []
    except REFUSED as exc:
        if len(rows) == 1:
            return [(0, exc)]
        middle = len(rows) // 2
        return refused_rows(conn, table, columns, rows[:middle]) + [
            (middle + index, error) for index, error in refused_rows(conn, table, columns, rows[middle:])
        ]


def refusal_detail(table: str, error: DataError | IntegrityError) -> str:
    """What PostgreSQL refused, by column and SQLSTATE; its message is not quoted (it may hold the value)."""
    column = _COLUMN.search(error.diag.context or "") if error.diag else None
    where = f"{column.group(1)}: " if column else ""
    return (
        f"{where}PostgreSQL refused a value of the record when staging it into {table}"
        f" ({type(error).__name__}, SQLSTATE {error.sqlstate}); see the runbook (a poison record)"
    )


class StageBatch(beam.DoFn):  # type: ignore[misc]
    """StagedBatch -> ChunkSummary, after the chunk's rows are committed to the staging tables."""

    def __init__(self, database_url: str, vault: Vault) -> None:
        self._database_url = database_url
        self._vault = vault
        self._conn: Connection[Any] | None = None

    def setup(self) -> None:
        self._conn = connect(self._database_url, application_name="issuance-nightly-stage")

    def process(self, batch: StagedBatch) -> Iterator[ChunkSummary]:
        conn = self._conn
        assert conn is not None, "setup() opens the connection"
        try:
            self._replace(conn, batch)
        except REFUSED:
            conn.rollback()
            batch = self._without_refused(conn, batch)
            self._replace(conn, batch)
        counts = (
            (STAGE, "applications", len(batch.applications)),
            (STAGE, "agreements", len(batch.agreements)),
            (STAGE, "dead_letters", len(batch.dead_letters)),
        )
        for stage, name, n in counts:
            Metrics.counter(stage, name).inc(n)
        crash_point("staged_chunk")
        yield ChunkSummary(batch.chunk, counts)

    @staticmethod
    def _replace(conn: Connection[Any], batch: StagedBatch) -> None:
        chunk = batch.chunk
        replace_chunk(
            conn,
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

    def _without_refused(self, conn: Connection[Any], batch: StagedBatch) -> StagedBatch:
        """The batch with every row PostgreSQL refuses moved to its dead letters."""
        chunk = batch.chunk
        kept: dict[str, list[Row]] = {}
        dead_letters = list(batch.dead_letters)
        with conn.transaction(force_rollback=True):
            for table, columns in _ROW_TABLES:
                conn.execute(
                    sql.SQL(
                        "DELETE FROM {} WHERE run_id = %s AND source_topic = %s AND source_partition = %s"
                        " AND source_offset >= %s AND source_offset < %s"
                    ).format(sql.Identifier(table)),
                    (chunk.run_id, chunk.topic, chunk.partition, chunk.start, chunk.end),
                )
                rows = batch.applications if table == "staged_applications" else batch.agreements
                refused = dict(refused_rows(conn, table, columns, rows)) if rows else {}
                kept[table] = [row for index, row in enumerate(rows) if index not in refused]
                for index, error in sorted(refused.items()):
                    row = rows[index]
                    Metrics.counter(STAGE, DeadLetterReason.UNPROCESSABLE_RECORD.value).inc()
                    branch = valid_code(row[_APPLICATION_BRANCH]) if table == "staged_applications" else None
                    business_id = row[_ID] if isinstance(row[_ID], str) else ""
                    dead_letters.append(
                        dead_letter_row(
                            chunk,
                            row[_OFFSET],
                            STAGE,
                            DeadLetterReason.UNPROCESSABLE_RECORD.value,
                            refusal_detail(table, error),
                            # The record was decoded; its bytes are not kept here: its id, encrypted.
                            self._vault.encrypt_bytes(business_id.encode("utf-8", "replace")),
                            branch,
                        )
                    )
        return StagedBatch(chunk, kept["staged_applications"], kept["staged_agreements"], dead_letters)

    def teardown(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class StageChunks(beam.PTransform):  # type: ignore[misc]
    """PCollection[StagedBatch] -> PCollection[ChunkSummary]."""

    def __init__(self, database_url: str, vault: Vault) -> None:
        super().__init__()
        self._database_url = database_url
        self._vault = vault

    def expand(self, batches: beam.PCollection) -> beam.PCollection:
        return batches | "CopyIntoStaging" >> beam.ParDo(
            StageBatch(self._database_url, self._vault)
        ).with_output_types(ChunkSummary)  # ChunkSummary
