"""Reading one planned chunk with an assigned consumer: no consumer group, no offset commits."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from kafka import KafkaConsumer, TopicPartition

from issuance.errors import BrokerUnavailable
from issuance.gc_policy import use_batch_thresholds
from issuance.kafka.client_config import KafkaClientConfig
from pipelines.records import Chunk, RawRecord, RecordBatch

STALL_TIMEOUT_S = 60.0


class ReadChunk(beam.DoFn):  # type: ignore[misc]
    """Chunk -> RecordBatch with every record at offsets [start, end) of the chunk's partition."""

    def __init__(self, kafka: KafkaClientConfig) -> None:
        self._kafka = kafka
        self._consumer: KafkaConsumer | None = None

    def setup(self) -> None:
        use_batch_thresholds()  # this worker decodes, verifies and stages the chunks it reads
        self._consumer = KafkaConsumer(
            **self._kafka.client_kwargs(),
            group_id=None,
            enable_auto_commit=False,
            client_id="issuance-nightly",
            max_partition_fetch_bytes=8 * 1024 * 1024,
            fetch_max_bytes=32 * 1024 * 1024,
        )

    def process(self, chunk: Chunk) -> Iterator[RecordBatch]:
        consumer = self._consumer
        assert consumer is not None, "setup() opens the consumer"
        tp = TopicPartition(chunk.topic, chunk.partition)
        consumer.assign([tp])
        consumer.seek(tp, chunk.start)
        records: list[RawRecord] = []
        position = chunk.start
        last_progress = time.monotonic()
        while position < chunk.end:
            polled: dict[Any, list[Any]] = consumer.poll(timeout_ms=500, max_records=chunk.end - position)
            for record in polled.get(tp, ()):
                if chunk.start <= record.offset < chunk.end:
                    records.append(
                        RawRecord(record.offset, record.key, record.value, tuple(record.headers or ()))
                    )
            new_position = consumer.position(tp)
            if new_position > position:
                position = new_position
                last_progress = time.monotonic()
            elif time.monotonic() - last_progress > STALL_TIMEOUT_S:
                raise BrokerUnavailable(
                    f"no progress reading {tp} at offset {position} (planned to {chunk.end})"
                )
        yield RecordBatch(chunk, records)

    def teardown(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
