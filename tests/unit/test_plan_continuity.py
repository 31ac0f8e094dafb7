"""The continuity rule: a checkpoint or stored range that the broker's log no longer holds is a break."""

from __future__ import annotations

from datetime import UTC, datetime

from issuance.store.run_repo import Checkpoint
from pipelines.plan import (
    Break,
    BrokerView,
    PartitionState,
    broker_state_lost,
    describe,
    discontinuities,
    from_checkpoint,
    from_range,
    ranges,
)
from pipelines.records import PartitionRange

TOPIC = "t.branch.applications"
OLD_ID = "01a22997-70f7-7bc0-94f0-841bb6c0bb85"
NEW_ID = "01a22997-715b-79a0-8c86-3755464adb32"


def checkpoint(
    offset: int, partition: int = 0, topic_id: str | None = OLD_ID, cluster: str | None = "c1"
) -> Checkpoint:
    return Checkpoint(TOPIC, partition, offset, topic_id, cluster, 1, datetime(2026, 11, 1, tzinfo=UTC))


def view(*states: tuple[int, int], topic_id: str | None = OLD_ID, cluster: str | None = "c1") -> BrokerView:
    return BrokerView(
        cluster, {TOPIC: topic_id}, {(TOPIC, p): PartitionState(*state) for p, state in enumerate(states)}
    )


def kinds(checkpoints: list[Checkpoint], broker: BrokerView) -> list[Break]:
    return [d.kind for d in discontinuities(map(from_checkpoint, checkpoints), broker)]


def test_a_log_that_continues_from_the_checkpoint_is_no_break() -> None:
    assert kinds([checkpoint(120), checkpoint(0, 1)], view((0, 150), (0, 0))) == []
    assert kinds([checkpoint(120)], view((120, 120))) == []  # everything read, then expired by retention


def test_a_restarted_broker_ends_below_the_checkpoint() -> None:
    assert kinds([checkpoint(120), checkpoint(0, 1)], view((0, 0), (0, 0))) == [Break.WENT_BACK]
    # Without ids (older brokers, checkpoints from before they were stored) the offsets alone still tell.
    assert kinds([checkpoint(120, topic_id=None)], view((0, 30), topic_id=None)) == [Break.WENT_BACK]


def test_a_recreated_topic_is_a_break_even_when_it_grew_past_the_checkpoint() -> None:
    assert kinds([checkpoint(120)], view((0, 500), topic_id=NEW_ID)) == [Break.RECREATED]
    assert kinds([checkpoint(120)], view((0, 500), cluster="c2")) == [Break.OTHER_CLUSTER]


def test_missing_partitions_and_records_removed_unread_are_breaks() -> None:
    assert kinds([checkpoint(5, 1)], view((0, 9))) == [Break.MISSING]
    assert kinds([checkpoint(120)], BrokerView("c1", {}, {})) == [Break.MISSING]
    assert kinds([checkpoint(120)], view((200, 300))) == [Break.REMOVED_UNREAD]


def test_a_stored_plan_needs_every_planned_offset() -> None:
    plan = [
        PartitionRange(TOPIC, 0, 100, 150, OLD_ID, "c1"),
        PartitionRange(TOPIC, 1, 7, 7, OLD_ID, "c1"),
    ]
    assert discontinuities(map(from_range, plan), view((0, 150), (0, 7))) == []
    lost = discontinuities(map(from_range, plan), view((0, 40), (0, 0)))
    assert [(d.partition, d.kind) for d in lost] == [(0, Break.WENT_BACK), (1, Break.WENT_BACK)]


def test_the_error_names_topic_partitions_and_offsets_and_what_to_do_on_one_line() -> None:
    breaks = discontinuities(map(from_checkpoint, [checkpoint(120), checkpoint(3, 1)]), view((0, 0), (0, 0)))
    message = str(broker_state_lost(breaks, "so the night was not planned"))
    assert "\n" not in message
    assert f"offsets went backwards (the log ends below the checkpoint): {TOPIC} partitions 0, 1." in message
    assert "issuance checkpoints rebaseline --operator NAME --yes" in message
    detail = describe(breaks, offsets=True)
    assert f"{TOPIC} partitions 0 (needs 120, broker holds 0-0), 1 (needs 3, broker holds 0-0)" in detail
    assert "issuance checkpoints rebaseline --operator NAME --yes" in message


def test_ranges_start_at_the_checkpoint_or_the_log_start_and_carry_the_log_identity() -> None:
    plan = ranges(view((0, 150), (10, 20)), [TOPIC], {(TOPIC, 0): checkpoint(120)})
    assert plan == [
        PartitionRange(TOPIC, 0, 120, 150, OLD_ID, "c1"),
        PartitionRange(TOPIC, 1, 10, 20, OLD_ID, "c1"),
    ]
    assert PartitionRange.from_json(plan[0].to_json()) == plan[0]
    assert PartitionRange.from_json({"topic": TOPIC, "partition": 0, "start": 1, "end": 2}).topic_id is None
