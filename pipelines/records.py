"""The values that flow between the nightly stages: planned ranges, chunks of raw records, staged rows.

Elements are batches (one chunk of records processed as a list in one DoFn call): per-element overhead on the
DirectRunner is far higher than the work of one record, so a chunk is the unit of parallelism and of retry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class PartitionRange:
    """The offsets [start, end) of one partition that one run reads, in the log the broker identified by its
    topic id and cluster id when the run was planned (None where it reports none, or in older plans)."""

    topic: str
    partition: int
    start: int
    end: int
    topic_id: str | None = None
    cluster_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "partition": self.partition,
            "start": self.start,
            "end": self.end,
            "topic_id": self.topic_id,
            "cluster_id": self.cluster_id,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PartitionRange:
        return cls(
            str(data["topic"]),
            int(data["partition"]),
            int(data["start"]),
            int(data["end"]),
            data.get("topic_id"),
            data.get("cluster_id"),
        )

    @property
    def size(self) -> int:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class Chunk:
    """A slice [start, end) of a planned range: the unit read, staged and retried together."""

    run_id: int
    kind: str  # "application" | "agreement": which contract the topic carries
    topic: str
    partition: int
    start: int
    end: int
    first_slot: int = 0  # applications: the slot of the record at `start` (see pipelines/personalize.py)

    def slot(self, offset: int) -> int:
        return self.first_slot + offset - self.start


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One Kafka record as read: where it came from, its bytes (None: a null value, which Kafka allows) and
    its headers (the sender's channel headers, when it was signed)."""

    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class RecordBatch:
    """The records of one chunk, in offset order."""

    chunk: Chunk
    records: list[RawRecord]


@dataclass(slots=True)
class StagedBatch:
    """One chunk's rows ready to COPY into the staging tables (tuples in the tables' column order)."""

    chunk: Chunk
    applications: list[tuple[Any, ...]] = field(default_factory=list)
    agreements: list[tuple[Any, ...]] = field(default_factory=list)
    dead_letters: list[tuple[Any, ...]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ChunkSummary:
    """What staging one chunk produced, counted by stage and outcome (e.g. ("verify", "NAME_MISMATCH"))."""

    chunk: Chunk
    counts: tuple[tuple[str, str, int], ...]
