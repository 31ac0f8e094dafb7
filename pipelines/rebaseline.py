"""Review and re-baseline the nightly checkpoints after the broker lost its state (an operator's decision).

A re-baseline points each broken checkpoint at the log start of the log the broker holds now, so the next
night reads everything now on the topic: nothing is skipped. Checkpoints that still continue are left alone.
A run left in flight whose planned ranges are gone is closed as FAILED (nothing of it was applied); a run that
has staged everything commits from PostgreSQL alone, so it must be finished first. Every change is written
with its audit line in one transaction, under the nightly lock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from issuance.errors import BrokerStateLost
from issuance.kafka.client_config import KafkaClientConfig
from issuance.store import run_repo
from issuance.store.audit import record_action
from issuance.store.run_repo import Checkpoint, Conn, Run
from pipelines.plan import (
    BrokerView,
    Discontinuity,
    describe,
    discontinuities,
    from_checkpoint,
    from_range,
    observe,
)
from pipelines.records import PartitionRange

ACTION = "checkpoints.rebaseline"
RUN_ACTION = "run.abandon"


@dataclass(frozen=True, slots=True)
class PartitionReview:
    """One partition as the system and the broker see it."""

    topic: str
    partition: int
    checkpoint: int | None
    checkpoint_topic_id: str | None
    log_start: int | None  # None: the broker does not have the partition
    end: int | None
    topic_id: str | None
    status: str  # "ok", "new" (no checkpoint yet) or the break

    def as_dict(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "partition": self.partition,
            "checkpoint": self.checkpoint,
            "checkpoint_topic_id": self.checkpoint_topic_id,
            "log_start": self.log_start,
            "end": self.end,
            "topic_id": self.topic_id,
            "status": self.status,
        }


@dataclass(frozen=True, slots=True)
class Step:
    """One checkpoint change: to `next_offset` of the log now held, or dropped (`next_offset` None)."""

    topic: str
    partition: int
    old_offset: int
    next_offset: int | None
    readable: int  # records the next night reads from there
    why: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "partition": self.partition,
            "from": self.old_offset,
            "to": self.next_offset,
            "records_to_read": self.readable,
            "why": self.why,
        }


@dataclass(frozen=True, slots=True)
class Review:
    """The checkpoints against the broker, and what a re-baseline would do."""

    cluster_id: str | None
    topic_ids: Mapping[str, str | None]  # of the topics the broker holds now
    partitions: list[PartitionReview]
    steps: list[Step]
    run_in_flight: Run | None
    run_breaks: list[Discontinuity]  # the in-flight run's ranges the broker no longer holds
    refusal: str | None  # why a re-baseline cannot be applied now

    @property
    def abandons_run(self) -> bool:
        return self.run_in_flight is not None and bool(self.run_breaks) and not self.run_in_flight.staged

    @property
    def needed(self) -> bool:
        return bool(self.steps) or self.abandons_run

    def as_dict(self) -> dict[str, Any]:
        run = self.run_in_flight
        return {
            "cluster_id": self.cluster_id,
            "partitions": [p.as_dict() for p in self.partitions],
            "steps": [s.as_dict() for s in self.steps],
            "run_in_flight": None
            if run is None
            else {
                "run_id": run.run_id,
                "staged": run.staged,
                "ranges_lost": describe(self.run_breaks, offsets=True) or None,
                "abandoned_by_rebaseline": self.abandons_run,
            },
            "refusal": self.refusal,
        }


def review(
    checkpoints: Mapping[tuple[str, int], Checkpoint],
    view: BrokerView,
    topics: Iterable[str],
    run_in_flight: Run | None,
) -> Review:
    """What the checkpoints and the in-flight run look like against `view`, and the steps that mend them."""
    names = list(topics)
    breaks = {
        (d.topic, d.partition): d for d in discontinuities(map(from_checkpoint, checkpoints.values()), view)
    }
    partitions = []
    keys = sorted(set(checkpoints) | {k for k in view.partitions if k[0] in names})
    for key in keys:
        cp, held = checkpoints.get(key), view.partitions.get(key)
        status = breaks[key].kind.value if key in breaks else ("new" if cp is None else "ok")
        partitions.append(
            PartitionReview(
                key[0],
                key[1],
                None if cp is None else cp.next_offset,
                None if cp is None else cp.topic_id,
                None if held is None else held.log_start,
                None if held is None else held.end,
                view.topic_ids.get(key[0]),
                status,
            )
        )
    steps = []
    missing_topics = sorted({t for t, _ in breaks if t not in view.topic_ids})
    for key, item in sorted(breaks.items()):
        if item.held is None:
            if key[0] in view.topic_ids:  # the topic has fewer partitions now
                steps.append(Step(key[0], key[1], item.first, None, 0, item.kind.value))
            continue
        steps.append(
            Step(
                key[0],
                key[1],
                item.first,
                item.held.log_start,
                item.held.end - item.held.log_start,
                item.kind.value,
            )
        )
    run_breaks: list[Discontinuity] = []
    if run_in_flight is not None:
        plan = [PartitionRange.from_json(p) for p in run_in_flight.plan]
        run_breaks = discontinuities(map(from_range, plan), view)
    refusal = None
    if missing_topics:
        refusal = (
            f"topic(s) {', '.join(missing_topics)} do not exist on the broker: run `issuance setup` to create"
            " them, then re-baseline"
        )
    elif run_in_flight is not None and run_in_flight.staged and (breaks or run_breaks):
        refusal = (
            f"run {run_in_flight.run_id} has staged everything it planned and commits without the broker: run"
            " `issuance batch run` to finish it first, then re-baseline"
        )
    return Review(view.cluster_id, view.topic_ids, partitions, steps, run_in_flight, run_breaks, refusal)


def inspect(conn: Conn, kafka: KafkaClientConfig, topics: list[str]) -> Review:
    """The review against the broker as it is now (reads only)."""
    checkpoints = run_repo.checkpoints(conn, topics)
    run_in_flight = run_repo.open_run(conn)
    conn.commit()
    return review(checkpoints, observe(kafka, topics), topics, run_in_flight)


def rebaseline(conn: Conn, kafka: KafkaClientConfig, topics: list[str], operator: str) -> Review:
    """Apply the review's steps under the nightly lock, each with its audit line, in one transaction."""
    run_repo.lock_nightly(conn)
    conn.commit()
    found = inspect(conn, kafka, topics)
    if found.refusal:
        raise BrokerStateLost(f"nothing re-baselined: {found.refusal}")
    if not found.needed:
        return found
    with conn.transaction():
        for step in found.steps:
            topic_id = found.topic_ids.get(step.topic)
            if step.next_offset is None:
                run_repo.drop_checkpoint(conn, step.topic, step.partition)
            else:
                run_repo.rebaseline_checkpoint(
                    conn, step.topic, step.partition, step.next_offset, topic_id, found.cluster_id
                )
            record_action(
                conn,
                actor=operator,
                action=ACTION,
                entity="checkpoint",
                entity_id=f"{step.topic}:{step.partition}",
                detail=step.as_dict() | {"topic_id": topic_id, "cluster_id": found.cluster_id},
            )
        run = found.run_in_flight
        if run is not None and found.abandons_run:
            error = f"abandoned by a re-baseline ({operator}): {describe(found.run_breaks, offsets=True)}"
            run_repo.abandon_run(conn, run.run_id, error)
            record_action(
                conn,
                actor=operator,
                action=RUN_ACTION,
                entity="run",
                entity_id=str(run.run_id),
                detail={"why": describe(found.run_breaks, offsets=True)},
            )
    conn.commit()
    return found
