"""What a re-baseline would do: broken checkpoints to the log start, a lost run closed, refusals explained."""

from __future__ import annotations

from datetime import UTC, date, datetime

from issuance.store.run_repo import Checkpoint, Run
from pipelines.plan import BrokerView, PartitionState
from pipelines.rebaseline import Step, review

APPS = "t.branch.applications"
AGREEMENTS = "t.branch.agreements"
OLD, NEW = "id-old", "id-new"


def checkpoint(topic: str, partition: int, offset: int, topic_id: str = OLD) -> Checkpoint:
    return Checkpoint(topic, partition, offset, topic_id, "c1", 1, datetime(2026, 11, 1, tzinfo=UTC))


def run(staged: bool, start: int = 50, end: int = 80) -> Run:
    plan = [{"topic": APPS, "partition": 0, "start": start, "end": end, "topic_id": OLD, "cluster_id": "c1"}]
    return Run(2, date(2026, 11, 2), "RUNNING", plan, staged, None, 1)


def broker(apps: dict[int, tuple[int, int]], agreements: dict[int, tuple[int, int]] | None) -> BrokerView:
    parts = {(APPS, p): PartitionState(*s) for p, s in apps.items()}
    ids = {APPS: NEW}
    if agreements is not None:
        parts |= {(AGREEMENTS, p): PartitionState(*s) for p, s in agreements.items()}
        ids[AGREEMENTS] = OLD
    return BrokerView("c1", ids, parts)


CHECKPOINTS = {
    (APPS, 0): checkpoint(APPS, 0, 50),
    (APPS, 1): checkpoint(APPS, 1, 70),
    (AGREEMENTS, 0): checkpoint(AGREEMENTS, 0, 30),
}


def test_broken_checkpoints_move_to_the_log_start_and_continuing_ones_stay() -> None:
    found = review(CHECKPOINTS, broker({0: (0, 12), 1: (0, 0)}, {0: (0, 40)}), [APPS, AGREEMENTS], None)
    assert found.refusal is None and found.needed
    assert found.steps == [
        Step(APPS, 0, 50, 0, 12, "topic created again (topic id changed)"),
        Step(APPS, 1, 70, 0, 0, "topic created again (topic id changed)"),
    ]
    assert [p.status for p in found.partitions if p.topic == AGREEMENTS] == ["ok"]


def test_a_partition_the_topic_no_longer_has_is_dropped() -> None:
    found = review(CHECKPOINTS, broker({0: (0, 12)}, {0: (0, 40)}), [APPS, AGREEMENTS], None)
    assert Step(APPS, 1, 70, None, 0, "partition missing on the broker") in found.steps


def test_a_run_in_flight_over_lost_ranges_is_abandoned_unless_it_staged_everything() -> None:
    view = broker({0: (0, 12), 1: (0, 0)}, {0: (0, 40)})
    lost = review(CHECKPOINTS, view, [APPS, AGREEMENTS], run(staged=False))
    assert lost.abandons_run and lost.refusal is None and lost.run_breaks
    staged = review(CHECKPOINTS, view, [APPS, AGREEMENTS], run(staged=True))
    assert not staged.abandons_run
    assert staged.refusal is not None and "issuance batch run" in staged.refusal


def test_a_missing_topic_is_refused_until_it_is_created() -> None:
    found = review(CHECKPOINTS, broker({0: (0, 12), 1: (0, 0)}, None), [APPS, AGREEMENTS], None)
    assert found.refusal is not None and AGREEMENTS in found.refusal and "issuance setup" in found.refusal


def test_nothing_to_do_when_every_checkpoint_continues() -> None:
    view = BrokerView("c1", {APPS: OLD}, {(APPS, 0): PartitionState(0, 60), (APPS, 1): PartitionState(0, 70)})
    checkpoints = {k: v for k, v in CHECKPOINTS.items() if k[0] == APPS}
    found = review(checkpoints, view, [APPS], run(staged=False, start=50, end=60))
    assert not found.needed and found.steps == [] and found.refusal is None
