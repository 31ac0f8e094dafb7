"""`issuance set-aside list` and `retry` as an operator runs them, against the real broker and PostgreSQL."""

from __future__ import annotations

import json

from issuance.crypto import Vault
from issuance.kafka.client_config import KafkaClientConfig
from issuance.kafka.outbox_relay import publish_outbox
from issuance.kafka.outbox_signing import RelayTrust
from issuance.kafka.topics import Topics, ensure_topics
from issuance.settings import Settings
from issuance.store.db import connect
from issuance.trust.parties import Party
from tests.fixtures_activation import scalar
from tests.fixtures_processes import run
from tests.fixtures_services import Partners
from tests.fixtures_signed import read_records
from tests.integration.test_outbox_bounded import BRANCH, LIMIT, _decision_rows, _queue


def published_keys(settings: Settings, topic: str) -> list[bytes]:
    return [bytes(record.key) for record in read_records(settings, topic)]


def test_an_operator_lists_and_retries_an_event_set_aside(
    settings: Settings, database_url: str, cli_env: dict[str, str], partners: Partners
) -> None:
    ensure_topics(KafkaClientConfig.from_settings(settings), settings, [])
    partners.provision(Party.parse(BRANCH))
    (row,) = _decision_rows(settings, 1)
    large = (row[0], row[1], row[2], bytes(row[3]) + b"\x00" * LIMIT, *row[4:])  # a decision of 1 MB and more
    _queue(database_url, [large])
    before = run(["set-aside", "list", "--json"], cli_env)  # nothing set aside before the relay ran
    assert before.returncode == 0 and json.loads(before.stdout) == [], before.stderr
    small_limit = {**cli_env, "ISSUANCE_MAX_MESSAGE_BYTES": str(LIMIT)}
    first = run(["set-aside", "retry", str(row[0]), "--operator", "ops-1"], small_limit)
    assert first.returncode == 2, first.stderr  # not set aside yet: bad input
    # The relay (as any command that publishes) sets it aside under the default limit.
    with connect(database_url) as conn:
        trust = RelayTrust.load(conn, settings)
        publish_outbox(
            conn,
            KafkaClientConfig.from_settings(settings),
            Vault.from_settings(settings),
            database_url,
            trust=trust,
        )
    listed = run(["set-aside", "list", "--json"], cli_env)
    assert [e["event_id"] for e in json.loads(listed.stdout)] == [row[0]]
    assert run(["set-aside", "retry", str(row[0])], cli_env).returncode == 2  # --operator is required

    larger_limit = {**cli_env, "ISSUANCE_MAX_MESSAGE_BYTES": str(4 * LIMIT)}  # the broker's limit was raised
    done = run(["set-aside", "retry", str(row[0]), "--operator", "ops-1", "--json"], larger_limit)

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"released": [row[0]], "published": 1, "set_aside": 0}
    assert published_keys(settings, Topics(settings).decisions) == [row[2]]
    assert (
        scalar(
            settings,
            "SELECT count(*) FROM audit_log WHERE action = 'outbox.retry_set_aside' AND actor = 'ops-1'",
        )
        == 1
    )
