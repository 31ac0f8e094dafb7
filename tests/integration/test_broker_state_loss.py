"""A broker that lost its state is never read as an empty night; re-baselined, every new record is read once.

Each test restarts a broker of its own (memory-only: the restart loses every topic and offset).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from kafka import KafkaAdminClient

from issuance.errors import BrokerStateLost
from issuance.kafka.client_config import KafkaClientConfig
from issuance.kafka.topics import Topics, ensure_topics
from issuance.settings import Settings
from issuance.store.db import connect
from pipelines import nightly
from tests.fixtures_broker import OwnBroker, cli, on_broker
from tests.fixtures_nightly import load_reference_file, make_generated, publish_night

OPERATOR = "ops.wang"


def _rows(database_url: str, query: str) -> list[tuple[object, ...]]:
    with connect(database_url) as conn:
        return [tuple(r) for r in conn.execute(query).fetchall()]


def _application_lines(path: Path) -> int:
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def _one_error_line(stderr: str) -> str:
    """The command's error: one line (Beam's import may log a warning of its own before it)."""
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith("WARNING:root:")]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


def test_a_restarted_broker_stops_the_night_until_the_checkpoints_are_rebaselined(
    own_broker: OwnBroker, settings: Settings, database_url: str, tmp_path: Path
) -> None:
    before = on_broker(settings, own_broker.bootstrap)
    generated = make_generated(tmp_path / "data", 60)
    load_reference_file(before, database_url, generated)
    publish_night(before, generated, 1, raw=False)
    first = nightly.run(["--business-date", generated.business_date(1)], settings=before)
    assert first.balanced and first.records_planned > 0
    checkpoints_before = _rows(
        database_url, "SELECT topic, partition, next_offset FROM checkpoints ORDER BY 1, 2"
    )

    after = on_broker(settings, own_broker.restart())
    ensure_topics(KafkaClientConfig.from_settings(after), after, ["B1"])  # `issuance setup` after the restart
    sent = publish_night(after, generated, 2, raw=False)
    day2 = generated.business_date(2)

    stopped = cli(after, "batch", "run", "--business-date", day2)

    assert stopped.returncode == 1, stopped.stdout + stopped.stderr
    line = _one_error_line(stopped.stderr)
    assert "the broker no longer holds what the night expects" in line
    assert Topics(after).applications in line and "issuance checkpoints rebaseline" in line
    assert _rows(database_url, "SELECT run_id, status FROM runs ORDER BY 1") == [(first.run_id, "SUCCEEDED")]

    shown = cli(after, "checkpoints", "show", "--json")
    assert shown.returncode == 0, shown.stderr
    preview = cli(after, "checkpoints", "rebaseline", "--operator", OPERATOR)
    assert preview.returncode == 0, preview.stderr
    assert "nothing written" in preview.stdout
    assert f"re-baseline {Topics(after).applications} partition 0: " in preview.stdout
    assert _rows(database_url, "SELECT topic, partition, next_offset FROM checkpoints ORDER BY 1, 2") == (
        checkpoints_before
    )
    refused = cli(after, "checkpoints", "rebaseline", "--yes")
    assert refused.returncode == 2  # --operator is required

    applied = cli(after, "checkpoints", "rebaseline", "--operator", OPERATOR, "--yes")

    assert applied.returncode == 0, applied.stderr
    audit = _rows(
        database_url, "SELECT actor, entity_id FROM audit_log WHERE action = 'checkpoints.rebaseline'"
    )
    assert {actor for actor, _ in audit} == {OPERATOR}
    assert len(audit) == len(checkpoints_before)
    second = nightly.run(["--business-date", day2], settings=after)
    assert second.balanced
    assert second.records_planned == sent  # every record on the new log, none skipped
    night2_applications = _application_lines(generated.directory / "applications-night2.jsonl")
    assert second.reconciliation["total"]["read"] == night2_applications
    assert _rows(database_url, f"SELECT count(*) FROM applications WHERE first_run_id = {second.run_id}") == [
        (night2_applications,)
    ]
    third = nightly.run(["--business-date", day2], settings=after)
    assert third.balanced and third.records_planned == 0  # read exactly once
    again = cli(after, "checkpoints", "rebaseline", "--operator", OPERATOR, "--yes")
    assert again.returncode == 0 and "nothing to re-baseline" in again.stdout


def test_a_run_left_in_flight_over_lost_ranges_is_an_error_then_closed_by_the_rebaseline(
    own_broker: OwnBroker, settings: Settings, database_url: str, tmp_path: Path
) -> None:
    before = on_broker(settings, own_broker.bootstrap)
    generated = make_generated(tmp_path / "data", 40)
    load_reference_file(before, database_url, generated)
    publish_night(before, generated, 1, raw=False)
    day = generated.business_date(1)
    crashed = cli(before, "batch", "run", "--business-date", day, env={"ISSUANCE_CRASH_AT": "planned"})
    assert crashed.returncode != 0
    [(run_id, status)] = _rows(database_url, "SELECT run_id, status FROM runs")
    assert status == "PLANNED"

    after = on_broker(settings, own_broker.restart())
    ensure_topics(KafkaClientConfig.from_settings(after), after, [])
    stopped = cli(after, "batch", "run")

    assert stopped.returncode == 1
    line = _one_error_line(stopped.stderr)
    assert f"run {run_id}, left in flight by a crash, cannot be resumed" in line
    assert _rows(database_url, "SELECT status FROM runs") == [("PLANNED",)]

    applied = cli(after, "checkpoints", "rebaseline", "--operator", OPERATOR, "--yes")

    assert applied.returncode == 0, applied.stderr
    assert f"close run {run_id} as FAILED" in applied.stdout
    assert _rows(database_url, "SELECT status FROM runs") == [("FAILED",)]
    assert _rows(database_url, "SELECT actor, entity_id FROM audit_log WHERE action = 'run.abandon'") == [
        (OPERATOR, str(run_id))
    ]
    resent = publish_night(after, generated, 1, raw=False)  # the branches submit again
    night = nightly.run(["--business-date", day], settings=after)
    assert night.balanced and night.records_planned == resent


def _topic_ids(bootstrap: str, names: list[str]) -> dict[str, str]:
    admin = KafkaAdminClient(**KafkaClientConfig.plaintext(bootstrap).client_kwargs())
    try:
        return {str(t["name"]): str(t["topic_id"]) for t in admin.describe_topics(names)}
    finally:
        admin.close()


def test_a_topic_created_again_is_noticed_even_when_it_grew_past_the_checkpoint(
    settings: Settings, database_url: str, tmp_path: Path
) -> None:
    """On a real cluster a topic can be deleted and created again; offsets alone miss it once the new log is
    longer than the old one. The topic id does not."""
    generated = make_generated(tmp_path / "data", 40)
    load_reference_file(settings, database_url, generated)
    publish_night(settings, generated, 1, raw=False)
    first = nightly.run(["--business-date", generated.business_date(1)], settings=settings)
    assert first.balanced
    topics = Topics(settings)
    names = [topics.applications, topics.agreements]
    old_ids = _topic_ids(str(settings.kafka_bootstrap), names)
    admin = KafkaAdminClient(**KafkaClientConfig.from_settings(settings).client_kwargs())
    try:
        admin.delete_topics(names)
    finally:
        admin.close()
    ensure_topics(KafkaClientConfig.from_settings(settings), settings, [])
    assert set(_topic_ids(str(settings.kafka_bootstrap), names).values()).isdisjoint(old_ids.values())
    publish_night(settings, generated, 1, raw=False)  # the same records again, then more:
    publish_night(settings, generated, 2, raw=False)  # every partition reaches past its checkpoint

    with pytest.raises(BrokerStateLost, match=r"topic created again \(topic id changed\)"):
        nightly.run(["--business-date", generated.business_date(2)], settings=settings)

    assert _rows(database_url, "SELECT run_id FROM runs") == [(first.run_id,)]
