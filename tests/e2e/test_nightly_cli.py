"""`issuance batch run` as an operator runs it: recovery after SIGKILL, re-runs, multi-processing workers."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from issuance.kafka.topics import Topics
from issuance.services.postgres import PostgresProcess, drop_database, ensure_database
from issuance.settings import Settings
from tests.fixtures_nightly import (
    Generated,
    end_state,
    expected_after,
    load_reference_file,
    make_generated,
    mismatches,
    publish_night,
    states,
    topic_event_ids,
)
from tests.fixtures_services import TEMPLATE_DATABASE, settings_env

APPLICATIONS = 400


def batch_run(
    env: dict[str, str], *args: str, crash_at: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(env)
    if crash_at:
        env["ISSUANCE_CRASH_AT"] = crash_at
    return subprocess.run(
        [str(Path(sys.executable).parent / "issuance"), "batch", "run", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture
def generated(tmp_path: Path) -> Generated:
    return make_generated(tmp_path / "data", APPLICATIONS, seed=11)


@pytest.fixture
def twin_settings(
    postgres_server: PostgresProcess, kafka_bootstrap: str, tmp_path: Path
) -> Iterator[Settings]:
    """A second, independent world (database, topics, files) to run the same data uninterrupted."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    url = ensure_database(postgres_server, name, template=TEMPLATE_DATABASE)
    from tests.fixtures_services import TEST_BLIND_INDEX_KEY, TEST_BUREAU_KEY, TEST_DATA_KEYS

    yield Settings(
        kafka_bootstrap=kafka_bootstrap,
        database_url=SecretStr(url),
        topic_prefix=f"t{uuid.uuid4().hex[:12]}.",
        state_dir=tmp_path / "twin-state",
        personalization_dir=tmp_path / "twin-personalization",
        data_keys=SecretStr(TEST_DATA_KEYS),
        blind_index_key=SecretStr(TEST_BLIND_INDEX_KEY),
        keys_dir=tmp_path / "twin-keys",
        bureau_key=SecretStr(TEST_BUREAU_KEY),
    )
    drop_database(postgres_server, name)


def _prepare(settings: Settings, generated: Generated) -> str:
    assert settings.database_url is not None
    url = settings.database_url.get_secret_value()
    load_reference_file(settings, url, generated)
    publish_night(settings, generated, 1)
    return url


def _env(settings: Settings) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("ISSUANCE_")}
    env.update(settings_env(settings))
    return env


def _files(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    """The vendor files' records without the envelopes (encryption is randomized)."""
    root = Path(settings.personalization_dir)
    return {
        str(p.relative_to(root)): [
            {k: v for k, v in json.loads(line).items() if not k.endswith("_enc")}
            for line in p.read_text(encoding="utf-8").splitlines()
        ]
        for p in sorted(root.rglob("*.jsonl"))
    }


def _comparable(state: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in state.items() if k != "runs"}


def test_sigkill_at_each_point_then_rerun_reaches_the_uninterrupted_end_state(
    settings: Settings, twin_settings: Settings, generated: Generated
) -> None:
    day = generated.business_date(1)
    twin_url = _prepare(twin_settings, generated)
    clean = batch_run(_env(twin_settings), "--business-date", day, "--json")
    assert clean.returncode == 0, clean.stderr[-2000:]

    url = _prepare(settings, generated)
    env = _env(settings)
    # Each kill leaves work for the next invocation: resume staging, redo the final transaction, write the
    # files and publish what a committed run left (published_some: sent, not stamped, so sent again).
    points = ("planned", "staged_chunk", "staged", "allocated", "committed", "published_some")
    points += ("files_written",)
    for point in points:
        killed = batch_run(env, "--business-date", day, crash_at=point)
        assert killed.returncode == -signal.SIGKILL, (point, killed.returncode, killed.stderr[-2000:])
    final = batch_run(env, "--business-date", day, "--json")
    assert final.returncode == 0, final.stderr[-2000:]

    crashed, uninterrupted = end_state(url), end_state(twin_url)
    assert _comparable(crashed) == _comparable(uninterrupted)
    assert crashed["unpublished"] == [(0,)]
    assert _files(settings) == _files(twin_settings)
    # Events may have been sent twice (killed between send and stamp), never under another id.
    topics = Topics(settings)
    assert set(topic_event_ids(settings, [topics.decisions])) == set(_event_ids(url, "DecisionIssued"))
    requests = _event_ids(url, "AccountOpeningRequested") + _event_ids(url, "ActivationRequested")
    assert _event_ids(url, "AccountOpeningRequested") and _event_ids(url, "ActivationRequested")
    bank_topics = [topics.bank_requests(bank) for bank in _banks(url)]
    assert set(topic_event_ids(settings, bank_topics)) == set(requests), "each request once in effect"


def test_night_two_with_resent_and_reused_ids_killed_then_rerun_reaches_the_uninterrupted_end_state(
    settings: Settings, twin_settings: Settings, generated: Generated
) -> None:
    kinds = {line["kind"] for line in generated.expected()}
    assert {"resent_application", "reused_application_id"} <= kinds
    first, second = generated.business_date(1), generated.business_date(2)
    urls = {}
    for world in (twin_settings, settings):
        urls[id(world)] = _prepare(world, generated)
        done = batch_run(_env(world), "--business-date", first)
        assert done.returncode == 0, done.stderr[-2000:]
        _open_accounts(world)  # night 2 personalizes night 1's new cards into vendor files
        publish_night(world, generated, 2)
    clean = batch_run(_env(twin_settings), "--business-date", second, "--json")
    assert clean.returncode == 0, clean.stderr[-2000:]
    assert json.loads(clean.stdout)["reconciliation"]["total"]["resent"] > 0

    env = _env(settings)
    for point in ("staged", "allocated", "committed", "files_written"):
        killed = batch_run(env, "--business-date", second, crash_at=point)
        assert killed.returncode == -signal.SIGKILL, (point, killed.returncode, killed.stderr[-2000:])
    final = batch_run(env, "--business-date", second, "--json")
    assert final.returncode == 0, final.stderr[-2000:]
    crashed, uninterrupted = end_state(urls[id(settings)]), end_state(urls[id(twin_settings)])
    assert _comparable(crashed) == _comparable(uninterrupted)
    assert crashed["resent"] and crashed["dead_letters"]
    files = _files(settings)
    assert files == _files(twin_settings)
    assert any(name.startswith("run-000002/") for name in files), "night 2 wrote its vendor files"


def _open_accounts(settings: Settings) -> None:
    """The banks opened every requested account, with the same numbers in every world (as AccountOpened would
    have recorded them)."""
    from issuance.crypto import Vault
    from issuance.domain.numbers import bank_account_number
    from issuance.store.db import connect

    assert settings.database_url is not None
    vault = Vault.from_settings(settings)
    with connect(settings.database_url.get_secret_value()) as conn:
        requested = conn.execute(
            "SELECT application_id FROM bank_accounts WHERE status = 'REQUESTED' ORDER BY 1"
        ).fetchall()
        assert requested, "night 1 accepted new cards"
        for n, (application_id,) in enumerate(requested):
            number = bank_account_number("622202", 900_000 + n)
            conn.execute(
                "UPDATE bank_accounts SET status = 'OPENED', opened_at = now(), account_index = %s,"
                " account_number_enc = %s WHERE application_id = %s",
                (vault.blind_index(number), vault.encrypt(number), application_id),
            )
        conn.commit()


def _banks(url: str) -> list[str]:
    from issuance.store.db import connect

    with connect(url) as conn:
        return [str(r[0]) for r in conn.execute("SELECT bank_code FROM banks ORDER BY 1").fetchall()]


def _event_ids(url: str, event_type: str) -> list[str]:
    from issuance.store.db import connect

    with connect(url) as conn:
        rows = conn.execute("SELECT event_id FROM outbox WHERE event_type = %s", (event_type,)).fetchall()
    return [str(r[0]) for r in rows]


def test_second_run_without_new_input_changes_nothing(settings: Settings, generated: Generated) -> None:
    url = _prepare(settings, generated)
    env = _env(settings)
    day = generated.business_date(1)
    first = batch_run(env, "--business-date", day, "--json")
    assert first.returncode == 0, first.stderr[-2000:]
    before = end_state(url)
    second = batch_run(env, "--business-date", day, "--json")
    assert second.returncode == 0, second.stderr[-2000:]
    report = json.loads(second.stdout)
    assert report["records_planned"] == 0
    assert report["reconciliation"]["total"]["read"] == 0
    assert _comparable(end_state(url)) == _comparable(before)


def test_three_nights_with_multi_processing_workers_reach_the_expected_outcomes(
    settings: Settings, generated: Generated
) -> None:
    url = _prepare(settings, generated)
    env = _env(settings)
    # Every night counts as a big one: the commit's personalization helper is a process too.
    env["ISSUANCE_PARALLEL_FROM_RECORDS"] = "1"
    expected = generated.expected()
    for night in (1, 2, 3):
        if night > 1:
            publish_night(settings, generated, night)
        day = generated.business_date(night)
        done = batch_run(
            env,
            "--business-date",
            day,
            "--",
            "--direct_running_mode=multi_processing",
            "--direct_num_workers=2",
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert "balanced" in done.stdout
        assert mismatches(states(url), expected_after(expected, day)) == []
