"""The planned, bounded read of one night: which offsets of which partitions a run reads.

Each partition's end is snapshotted once, at the start of the run, as the larger of ListOffsets(latest) and
the fetch response's high watermark (tansu answers ListOffsets with the base offset of the last record batch,
see broker-notes.md). Reading starts at the checkpoint stored in PostgreSQL. The plan is stored with the run,
so a crashed run is re-run over exactly the same ranges; records produced after the snapshot wait for the next
night.

A checkpoint is an offset in one particular log. Before planning, the broker's view (cluster id, topic ids,
each partition's log start and end) is held against the checkpoints, and a resumed run's stored ranges
against the broker: a broker that lost its state, a topic created again or another cluster would otherwise
read as an empty night (or skip the new log's first records). Any break stops the run with `BrokerStateLost`;
the operator re-baselines (`issuance checkpoints rebaseline`)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from issuance.errors import BrokerStateLost, BrokerUnavailable
from issuance.kafka.client_config import KafkaClientConfig
from issuance.store.run_repo import Checkpoint
from pipelines.records import Chunk, PartitionRange

HIGHWATER_TIMEOUT_S = 15.0
APPLICATION = "application"  # the kind of the applications topic (agreements: "agreement")
NO_TOPIC_ID = str(uuid.UUID(int=0))  # what a broker without topic ids answers


@dataclass(frozen=True, slots=True)
class PartitionState:
    """What the broker holds of one partition now: offsets [log_start, end)."""

    log_start: int
    end: int


@dataclass(frozen=True, slots=True)
class BrokerView:
    """The broker's identity and offsets for the topics a night reads, as observed once."""

    cluster_id: str | None
    topic_ids: Mapping[str, str | None]  # every topic that exists (None: the broker reports no id)
    partitions: Mapping[tuple[str, int], PartitionState]

    def partitions_of(self, topic: str) -> list[int]:
        return sorted(p for t, p in self.partitions if t == topic)


class Break(StrEnum):
    """How a partition's log no longer continues from where the system stopped reading."""

    MISSING = "partition missing on the broker"
    OTHER_CLUSTER = "another cluster (cluster id changed)"
    RECREATED = "topic created again (topic id changed)"
    WENT_BACK = "offsets went backwards (the log ends below the checkpoint)"
    REMOVED_UNREAD = "records removed before they were read (the log starts above the checkpoint)"


@dataclass(frozen=True, slots=True)
class Expectation:
    """What the system relies on in one partition: offsets [first, last) present, in this log."""

    topic: str
    partition: int
    first: int
    last: int
    topic_id: str | None
    cluster_id: str | None


@dataclass(frozen=True, slots=True)
class Discontinuity:
    """One partition whose log breaks an expectation."""

    topic: str
    partition: int
    kind: Break
    first: int  # the offsets the system relies on: [first, last) (a checkpoint: first == last)
    last: int
    held: PartitionState | None  # what the broker holds now (None: partition missing)


def from_checkpoint(cp: Checkpoint) -> Expectation:
    """A checkpoint expects its offset to be the next to read: the log reaches it and still holds it."""
    return Expectation(cp.topic, cp.partition, cp.next_offset, cp.next_offset, cp.topic_id, cp.cluster_id)


def from_range(part: PartitionRange) -> Expectation:
    """A stored plan's range expects every one of its offsets to be readable (none needed when empty)."""
    return Expectation(part.topic, part.partition, part.start, part.end, part.topic_id, part.cluster_id)


def discontinuities(expected: Iterable[Expectation], view: BrokerView) -> list[Discontinuity]:
    """Every expectation the broker's view breaks, the first reason each (pure)."""
    found = []
    for exp in expected:
        state = view.partitions.get((exp.topic, exp.partition))
        kind: Break | None = None
        if state is None:
            kind = Break.MISSING
        elif exp.cluster_id and view.cluster_id and exp.cluster_id != view.cluster_id:
            kind = Break.OTHER_CLUSTER
        elif exp.topic_id and view.topic_ids.get(exp.topic) and exp.topic_id != view.topic_ids[exp.topic]:
            kind = Break.RECREATED
        elif state.end < exp.last:
            kind = Break.WENT_BACK
        elif state.log_start > exp.first:
            kind = Break.REMOVED_UNREAD
        if kind is not None:
            found.append(Discontinuity(exp.topic, exp.partition, kind, exp.first, exp.last, state))
    return found


def describe(breaks: Iterable[Discontinuity], offsets: bool = False) -> str:
    """One line: each kind of break with its topic and partitions (with `offsets`: what was needed and what
    the broker holds). Offsets only, never record content."""
    by_kind: dict[tuple[Break, str], list[Discontinuity]] = {}
    for item in breaks:
        by_kind.setdefault((item.kind, item.topic), []).append(item)
    parts = []
    for (kind, topic), items in by_kind.items():
        ordered = sorted(items, key=lambda d: d.partition)
        where = ", ".join(_where(d) if offsets else str(d.partition) for d in ordered)
        parts.append(f"{kind.value}: {topic} partitions {where}")
    return "; ".join(parts)


def _where(item: Discontinuity) -> str:
    needs = f"{item.first:,}" if item.first == item.last else f"{item.first:,}-{item.last:,}"
    held = "nothing" if item.held is None else f"{item.held.log_start:,}-{item.held.end:,}"
    return f"{item.partition} (needs {needs}, broker holds {held})"


def broker_state_lost(breaks: list[Discontinuity], what: str) -> BrokerStateLost:
    """The operator's one-line error for `breaks`; `what` says what was stopped."""
    return BrokerStateLost(
        f"the broker no longer holds what the night expects, {what}: {describe(breaks)}."
        " Check the broker (restarted without its data? topic deleted and created again?), compare with"
        " `issuance checkpoints show`, then `issuance checkpoints rebaseline --operator NAME --yes`"
    )


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


def observe(kafka: KafkaClientConfig, topics: Iterable[str]) -> BrokerView:
    """The broker's cluster id, topic ids and each partition's log start and end (see `snapshot_ends`)."""
    names = list(topics)
    try:
        admin = KafkaAdminClient(**kafka.client_kwargs(), client_id="issuance-plan")
        try:
            cluster_id = admin.describe_cluster().get("cluster_id")
            described = admin.describe_topics(names)
        finally:
            admin.close()
    except KafkaError as exc:
        raise BrokerUnavailable(f"could not read the broker's metadata at {kafka.bootstrap}: {exc}") from exc
    topic_ids: dict[str, str | None] = {}
    partitions: list[TopicPartition] = []
    for topic in described:
        if topic["error_code"] != 0 or topic["name"] not in names:
            continue
        topic_id = topic.get("topic_id")
        topic_ids[topic["name"]] = None if not topic_id or str(topic_id) == NO_TOPIC_ID else str(topic_id)
        for part in sorted(p["partition_index"] for p in topic["partitions"]):
            partitions.append(TopicPartition(topic["name"], part))
    consumer = KafkaConsumer(
        **kafka.client_kwargs(), group_id=None, enable_auto_commit=False, client_id="issuance-plan"
    )
    try:
        begins = consumer.beginning_offsets(partitions) if partitions else {}
        ends = snapshot_ends(consumer, partitions)
    finally:
        consumer.close()
    return BrokerView(
        str(cluster_id) if cluster_id else None,
        topic_ids,
        {(tp.topic, tp.partition): PartitionState(int(begins[tp]), int(ends[tp])) for tp in partitions},
    )


def ranges(
    view: BrokerView, topics: Iterable[str], checkpoints: Mapping[tuple[str, int], Checkpoint]
) -> list[PartitionRange]:
    """The ranges from each partition's checkpoint to its end, for every partition of `topics` (pure; the
    checkpoints must have been checked against `view`). A partition without a checkpoint starts at its log
    start."""
    plan = []
    for topic in topics:
        for partition in view.partitions_of(topic):
            state = view.partitions[(topic, partition)]
            cp = checkpoints.get((topic, partition))
            start = max(cp.next_offset if cp else 0, state.log_start)
            end = max(start, state.end)
            plan.append(
                PartitionRange(topic, partition, start, end, view.topic_ids.get(topic), view.cluster_id)
            )
    return plan


def plan_ranges(
    kafka: KafkaClientConfig, topics: Iterable[str], checkpoints: Mapping[tuple[str, int], Checkpoint]
) -> list[PartitionRange]:
    """The night's ranges; `BrokerStateLost` when the broker's log no longer continues from a checkpoint."""
    names = list(topics)
    view = observe(kafka, names)
    breaks = discontinuities(map(from_checkpoint, checkpoints.values()), view)
    if breaks:
        raise broker_state_lost(breaks, "so the night was not planned (no run recorded)")
    return ranges(view, names, checkpoints)


def check_stored_plan(kafka: KafkaClientConfig, run_id: int, plan: Iterable[PartitionRange]) -> None:
    """A crashed run is resumed only if the broker still holds every range of its stored plan."""
    stored = list(plan)
    view = observe(kafka, sorted({p.topic for p in stored}))
    breaks = discontinuities(map(from_range, stored), view)
    if breaks:
        raise broker_state_lost(breaks, f"so run {run_id}, left in flight by a crash, cannot be resumed")


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
