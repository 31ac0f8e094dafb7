"""A broker that stops in the middle of `issuance submit`: exit 1 and a report that says exactly what is safe.

Each test starts its own broker with the shared start code (never the session broker, which others use).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from kafka import KafkaConsumer, TopicPartition

from issuance.codec.avro import decode
from issuance.kafka.client_config import KafkaClientConfig
from issuance.kafka.topics import Topics, ensure_topics
from issuance.services.broker import MARKER, BrokerProcess, start_broker, stop_broker
from issuance.settings import Settings
from producers.generator import GenerateOptions, generate
from tests.fixtures_nightly import Generated, load_reference_file, provision_partners
from tests.fixtures_services import settings_env
from tests.integration.test_submit import read_topic

CLI = [sys.executable, "-c", "from cli.main import main; main()"]
LINES = 30_000


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[BrokerProcess]:
    broker = start_broker(tmp_path / "broker" / "tansu.log")
    try:
        yield broker
    finally:
        proc = broker.ref.process(MARKER)
        if proc is not None and proc.status() == psutil.STATUS_STOPPED:
            proc.resume()
        stop_broker(broker)


@pytest.fixture
def big_file(tmp_path: Path, settings: Settings, database_url: str) -> Path:
    """LINES valid applications: one generated record under many application ids (and a few ID numbers);
    the generated reference data loaded and its branches' and banks' keys provisioned, so that they are
    signed and sent."""
    manifest = generate(tmp_path / "gen", GenerateOptions(applications=20, seed=4, invalid_ratio=0.0))
    load_reference_file(settings, database_url, Generated(tmp_path / "gen", manifest))
    provision_partners(settings)
    templates = [
        json.loads(line) for line in (tmp_path / "gen" / "applications.jsonl").read_text().splitlines()
    ]
    path = tmp_path / "big.jsonl"
    with path.open("w", encoding="utf-8") as out:
        for n in range(LINES):
            record = dict(templates[n % len(templates)], application_id=f"BIG{n:08d}")
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def _start_submit(settings: Settings, path: Path, report: Path, timeout_s: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ISSUANCE_")}
    env.update(settings_env(settings))
    argv = [
        *CLI,
        "submit",
        "applications",
        str(path),
        "--json",
        "--report",
        str(report),
        "--timeout",
        str(timeout_s),
    ]
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_records(bootstrap: str, topic: str, at_least: int, submit: subprocess.Popen[str]) -> None:
    """Return as soon as `at_least` records are on the topic, while the submission is still running."""
    consumer = KafkaConsumer(
        **KafkaClientConfig.plaintext(bootstrap).client_kwargs(), enable_auto_commit=False, group_id=None
    )
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        seen, deadline = 0, time.monotonic() + 120
        while seen < at_least:
            assert submit.poll() is None, "the submission ended before the broker could be stopped"
            assert time.monotonic() < deadline, "no records reached the broker"
            seen += sum(len(batch) for batch in consumer.poll(timeout_ms=50).values())
    finally:
        consumer.close(autocommit=False)


def _finish(submit: subprocess.Popen[str]) -> tuple[int, dict[str, Any]]:
    stdout, stderr = submit.communicate(timeout=240)
    assert "Traceback" not in stderr, stderr[-4000:]
    return submit.returncode, json.loads(stdout)


def _check_report(summary: dict[str, Any], report: Path) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    assert [e["line"] for e in lines] == list(range(1, LINES + 1))
    statuses = [e["status"] for e in lines]
    assert summary["lines"] == LINES
    assert summary["published"] == statuses.count("published") > 0
    assert summary["unconfirmed"] == statuses.count("unconfirmed") > 0
    assert summary["rejected"] == 0
    first_unconfirmed = statuses.index("unconfirmed") + 1
    assert summary["unconfirmed_lines"][0][0] == first_unconfirmed
    return lines


def test_killed_broker_ends_with_exit_1_and_an_accurate_report(
    own_broker: BrokerProcess, settings: Settings, big_file: Path, tmp_path: Path
) -> None:
    mine = settings.model_copy(update={"kafka_bootstrap": own_broker.bootstrap})
    ensure_topics(KafkaClientConfig.from_settings(mine), mine, [])
    submit = _start_submit(mine, big_file, tmp_path / "report.jsonl", timeout_s=5)
    _wait_for_records(own_broker.bootstrap, Topics(mine).applications, 1000, submit)
    proc = own_broker.ref.process(MARKER)
    assert proc is not None
    proc.kill()

    code, summary = _finish(submit)

    assert code == 1
    assert summary["error"]
    _check_report(summary, tmp_path / "report.jsonl")


def test_every_confirmed_line_is_on_the_topic_after_a_stall(
    own_broker: BrokerProcess, settings: Settings, big_file: Path, tmp_path: Path
) -> None:
    """A broker that stops answering (SIGSTOP) and comes back: every line reported published is stored."""
    mine = settings.model_copy(update={"kafka_bootstrap": own_broker.bootstrap})
    ensure_topics(KafkaClientConfig.from_settings(mine), mine, [])
    topic = Topics(mine).applications
    submit = _start_submit(mine, big_file, tmp_path / "report.jsonl", timeout_s=3)
    _wait_for_records(own_broker.bootstrap, topic, 1000, submit)
    proc = own_broker.ref.process(MARKER)
    assert proc is not None
    proc.suspend()
    try:
        code, summary = _finish(submit)
    finally:
        proc.resume()

    assert code == 1
    lines = _check_report(summary, tmp_path / "report.jsonl")
    stored = read_topic(own_broker.bootstrap, topic, summary["published"])
    published = [e for e in lines if e["status"] == "published"]
    offsets = {(e["partition"], e["offset"]) for e in published}
    assert len(offsets) == len(published)
    stored_ids = {decode(value).record["application_id"] for _, value in stored}
    assert {f"BIG{e['line'] - 1:08d}" for e in published} <= stored_ids
