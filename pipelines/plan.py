"""The planned, bounded read of one night: which offsets of which partitions a run reads.

Each partition's end is snapshotted once, at the start of the run, as the larger of ListOffsets(latest) and
the fetch response's high watermark (tansu answers ListOffsets with the base offset of the last record batch,
see broker-notes.md). Reading starts at the checkpoint stored in PostgreSQL. The plan is stored with the run,
so a crashed run is re-run over exactly the same ranges; records produced after the snapshot wait for the next
night."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

from kafka import KafkaConsumer, TopicPartition

from issuance.errors import BrokerUnavailable
from pipelines.records import Chunk, PartitionRange

HIGHWATER_TIMEOUT_S = 15.0
APPLICATION = "application"  # the kind of the applications topic (agreements: "agreement")


def snapshot_ends(consumer: KafkaConsumer, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
    """Each partition's end: max(ListOffsets latest, fetch high watermark)."""
    if not partitions:
        return {}
    listed: dict[TopicPartition, int] = consumer.end_offsets(partitions)
    ends = dict(listed)
    nonempty = [tp for tp in partitions if listed[tp] > 0]
    if not nonempty:
        return ends
    # A fetch from the last listed batch carries the true high watermark in its response.
    consumer.assign(nonempty)
    for tp in nonempty:
        consumer.seek(tp, max(listed[tp] - 1, 0))
    deadline = time.monotonic() + HIGHWATER_TIMEOUT_S
    pending = set(nonempty)
    while pending:
        if time.monotonic() > deadline:
            raise BrokerUnavailable(f"no high watermark for {sorted(str(tp) for tp in pending)}")
        consumer.poll(timeout_ms=200, max_records=1)
        for tp in list(pending):
            high = consumer.highwater(tp)
            if high is not None:
                ends[tp] = max(listed[tp], int(high))
                pending.discard(tp)
        # Keep fetching from the same place: poll() moved the position forward.
        for tp in pending:
            consumer.seek(tp, max(listed[tp] - 1, 0))
    consumer.assign([])
    return ends


def plan_ranges(
    bootstrap: str, topics: Iterable[str], checkpoints: Mapping[tuple[str, int], int]
) -> list[PartitionRange]:
    """The ranges from each partition's checkpoint to its snapshotted end, for every partition of `topics`."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, client_id="issuance-plan"
    )
    try:
        partitions: list[TopicPartition] = []
        for topic in topics:
            for partition in sorted(consumer.partitions_for_topic(topic) or ()):
                partitions.append(TopicPartition(topic, partition))
        begins = consumer.beginning_offsets(partitions) if partitions else {}
        ends = snapshot_ends(consumer, partitions)
    finally:
        consumer.close()
    plan = []
    for tp in partitions:
        start = max(checkpoints.get((tp.topic, tp.partition), 0), int(begins.get(tp, 0)))
        plan.append(PartitionRange(tp.topic, tp.partition, start, max(start, ends[tp])))
    return plan


def split_chunks(
    run_id: int, plan: Iterable[PartitionRange], kinds: Mapping[str, str], size: int, first_slot: int = 0
) -> list[Chunk]:
    """The plan cut into chunks of at most `size` offsets; `kinds` maps a topic to the contract it carries.

    Application records take consecutive slots from `first_slot`, in plan order (each chunk knows the slot of
    its first offset)."""
    chunks = []
    slot = first_slot
    for part in plan:
        kind = kinds[part.topic]
        for start in range(part.start, part.end, size):
            end = min(start + size, part.end)
            chunk_slot = slot if kind == APPLICATION else 0
            chunks.append(Chunk(run_id, kind, part.topic, part.partition, start, end, chunk_slot))
            if kind == APPLICATION:
                slot += end - start
    return chunks


def application_records(plan: Iterable[PartitionRange], kinds: Mapping[str, str]) -> int:
    """How many application records the plan reads: the slots its run reserves."""
    return sum(part.size for part in plan if kinds[part.topic] == APPLICATION)
