"""A coder for the batch elements: pickled when they must cross a worker boundary, sized cheaply.

Beam samples element sizes for its metrics through the coder; the default fallback coder pickles a whole batch
(thousands of records) to learn its size. Batches estimate their size from their record count instead.
"""

from __future__ import annotations

import pickle
from typing import Any

import apache_beam as beam

from pipelines.records import ChunkSummary, RecordBatch, StagedBatch

BYTES_PER_RECORD = 256


def _record_count(value: Any) -> int:
    for name in ("records", "applications"):
        items = getattr(value, name, None)
        if items is not None:
            return (
                len(items)
                + len(getattr(value, "agreements", ()) or ())
                + len(getattr(value, "dead_letters", ()) or ())
            )
    return 1


class BatchCoder(beam.coders.Coder):  # type: ignore[misc]
    """Pickle (protocol 5) for batch elements; estimate_size from the number of records."""

    def encode(self, value: Any) -> bytes:
        return pickle.dumps(value, protocol=5)

    def decode(self, encoded: bytes) -> Any:
        return pickle.loads(encoded)

    def is_deterministic(self) -> bool:
        return False

    def estimate_size(self, value: Any) -> int:
        return BYTES_PER_RECORD * _record_count(value)


def register_batch_coders() -> None:
    """Use BatchCoder for every batch type (idempotent)."""
    from pipelines.transforms.decode import DecodedBatch

    for batch_type in (RecordBatch, DecodedBatch, StagedBatch, ChunkSummary):
        beam.coders.registry.register_coder(batch_type, BatchCoder)
