"""`issuance setup`: migrations and topics, idempotent, with a topic per bank known at the time."""

from __future__ import annotations

import json
from typing import Any

from kafka import KafkaAdminClient
from typer.testing import CliRunner

from cli.main import app
from issuance.kafka.client_config import KafkaClientConfig
from issuance.kafka.topics import Topics, ensure_topics
from issuance.settings import Settings
from issuance.store.db import connect


def run_setup(cli_env: dict[str, str]) -> dict[str, Any]:
    """Run `issuance setup --json` in-process and return its report."""
    result = CliRunner().invoke(app, ["setup", "--json"], env=cli_env)
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def partitions(bootstrap: str, names: list[str]) -> dict[str, int]:
    """Partition count per topic as the broker reports it."""
    admin = KafkaAdminClient(**KafkaClientConfig.plaintext(bootstrap).client_kwargs())
    try:
        return {t["name"]: len(t["partitions"]) for t in admin.describe_topics(names)}
    finally:
        admin.close()


def test_setup_creates_topics_once_and_bank_topics_after_reference_load(
    settings: Settings, cli_env: dict[str, str], database_url: str, kafka_bootstrap: str
) -> None:
    topics = Topics(settings)
    base = [
        topics.applications,
        topics.agreements,
        topics.decisions,
        topics.card_dispatches,
        topics.card_events,
        topics.dead_letters,
    ]

    first = run_setup(cli_env)
    assert first["migrations_applied"] == []  # the test database is already migrated
    assert sorted(first["topics_created"]) == sorted(base)
    second = run_setup(cli_env)
    assert second["topics_created"] == []
    assert sorted(second["topics_existing"]) == sorted(base)

    with connect(database_url) as conn:
        conn.execute(
            "INSERT INTO banks (bank_code, name, bin, terms_version) VALUES ('B01', 'Bank', '621234', 'v1')"
        )
        conn.commit()
    third = run_setup(cli_env)
    assert sorted(third["topics_created"]) == [topics.bank_requests("B01"), topics.bank_results("B01")]
    assert partitions(settings.kafka_bootstrap or "", [topics.applications, topics.bank_requests("B01")]) == {
        topics.applications: settings.application_partitions,
        topics.bank_requests("B01"): settings.bank_partitions,
    }


def test_ensure_topics_is_idempotent(settings: Settings, kafka_bootstrap: str) -> None:
    created = ensure_topics(KafkaClientConfig.from_settings(settings), settings, ["B02", "B02"])
    assert Topics(settings).bank_requests("B02") in created
    assert Topics(settings).bank_results("B02") in created
    assert len(created) == 8  # the six topics of every installation, the bank's requests and answers
    assert ensure_topics(KafkaClientConfig.from_settings(settings), settings, ["B02"]) == []


def test_each_test_gets_its_own_migrated_database(database_url: str, settings: Settings) -> None:
    with connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM schema_migrations").fetchone()
        assert row is not None and row[0] >= 1
        assert conn.execute("SELECT count(*) FROM banks").fetchone() == (0,)
    assert settings.topic_prefix.startswith("t") and settings.topic_prefix.endswith(".")
