"""The nightly run: plan, stage with Beam, commit in one transaction, write vendor files, publish events.

    run(argv=None) -> NightlyResult     argv: [--business-date YYYY-MM-DD] [Beam pipeline options...]

Stream shapes are commented at each step of `build_pipeline`. The Beam part only stages (idempotently, per
chunk); everything that becomes visible commits in `pipelines.commit.apply_night`'s single transaction.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from issuance.crypto import Vault
from issuance.domain.agreement import AGREEMENT_WINDOW_DAYS
from issuance.domain.business_dates import business_day
from issuance.domain.contract import CONTRACT_REVISION, DEFAULT_MAX_RECORD_BYTES
from issuance.domain.personalization import vendor_by_area
from issuance.errors import InputError, ReconciliationFailed
from issuance.gc_policy import use_batch_thresholds
from issuance.kafka.client_config import KafkaClientConfig
from issuance.kafka.outbox_relay import publish_outbox
from issuance.kafka.outbox_signing import RelayTrust
from issuance.kafka.republish import resend_unanswered
from issuance.kafka.topics import Topics, ensure_topics
from issuance.services.endpoints import Endpoints, resolve
from issuance.settings import Settings
from issuance.store import run_repo
from issuance.store.audit import SERVICE_NIGHTLY, record_action
from issuance.store.db import connect
from issuance.store.key_rotation_repo import ensure_blind_indexes_settled
from issuance.store.migrate import ensure_current
from issuance.store.outbox_queries import set_aside_count
from issuance.store.party_keys_repo import load_directory
from issuance.store.reference_repo import load_catalog
from issuance.store.roles import NIGHTLY, in_role
from issuance.store.staged_outcomes import staged_counters
from issuance.trust.keystore import bureau_keys
from pipelines import engines
from pipelines.coders import register_batch_coders
from pipelines.commit import NightContext, apply_night
from pipelines.faults import crash_point
from pipelines.kafka_read import ReadChunk
from pipelines.personalization_files import files_complete, write_files
from pipelines.plan import (
    APPLICATION,
    application_records,
    check_stored_plan,
    plan_ranges,
    split_chunks,
)
from pipelines.reconcile import reconcile
from pipelines.records import Chunk, PartitionRange, RecordBatch
from pipelines.transforms.agreement_join import JoinAgreements
from pipelines.transforms.decode import DecodeRecords, NightTrust
from pipelines.transforms.personalize_cards import CardChunk, PersonalizeCards, list_card_chunks, with_rate
from pipelines.transforms.stage import StageChunks
from pipelines.transforms.verify import VerifyApplications

Progress = Callable[[str, dict[str, int]], None]
STAGED_UNDER = (
    "decode.contract_revision"  # kept with the run's counters: the contract its rows were staged under
)
PROGRESS_INTERVAL_S = 1.0


def _quiet(_stage: str, _counts: dict[str, int]) -> None:
    pass


@dataclass(slots=True)
class NightlyResult:
    """What one invocation did; `reconciliation` is stored with the run as well."""

    run_id: int
    business_date: date
    resumed: bool
    records_planned: int
    reconciliation: dict[str, Any]
    counters: dict[str, int]
    files: list[dict[str, Any]] = field(default_factory=list)
    published: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    resent_unanswered: int = 0  # activation requests sent again (unanswered after the configured hours)
    set_aside: int = 0  # events of this run the broker will not take (never published; `issuance report`)

    @property
    def balanced(self) -> bool:
        return bool(self.reconciliation.get("balanced"))

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "business_date": self.business_date.isoformat(),
            "resumed": self.resumed,
            "records_planned": self.records_planned,
            "balanced": self.balanced,
            "reconciliation": self.reconciliation,
            "counters": self.counters,
            "files": self.files,
            "published": self.published,
            "resent_unanswered": self.resent_unanswered,
            "set_aside": self.set_aside,
            "timings": self.timings,
        }


def parse_args(argv: Sequence[str] | None) -> tuple[date | None, list[str]]:
    parser = argparse.ArgumentParser(prog="nightly", add_help=False)
    parser.add_argument("--business-date", type=date.fromisoformat, default=None)
    try:
        known, beam_args = parser.parse_known_args(list(argv or []))
    except SystemExit as exc:  # argparse exits on a bad date
        raise InputError("--business-date must be YYYY-MM-DD") from exc
    return known.business_date, beam_args


def build_pipeline(
    pipeline: beam.Pipeline,
    chunks: list[Chunk],
    catalog: Any,
    kafka: KafkaClientConfig,
    database_url: str,
    vault: Vault,
    business_date: date | None = None,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    card_chunks: Sequence[CardChunk] = (),
    *,
    trust: NightTrust,
    run_id: int | None = None,
    window_days: int = AGREEMENT_WINDOW_DAYS,
) -> beam.PCollection:
    """The staging pipeline; its only effect is the run's rows in the staging tables.

    `business_date` is the run's: the contract bounds timestamps by it, so a re-run decides the same.
    `card_chunks`: the cards whose account is opened, personalized beside the records (`PersonalizeCards`).
    `trust`: the bureau's keys and the registered public keys every record is verified and opened with.
    `run_id`: the run whose agreement join is staged once every chunk is staged (`JoinAgreements`, over
    `window_days`); without it (or a business date) only the records are staged.

    Both branches end in one collection: the DaskRunner computes only the pipeline's last step and what it
    reads, so a branch left beside it would never run there."""
    register_batch_coders()
    staged = (
        pipeline
        | "ListChunks" >> beam.Create(chunks)  # Chunk
        | "SpreadChunks" >> beam.Reshuffle()  # Chunk, one worker each
        | "ReadChunk" >> beam.ParDo(ReadChunk(kafka)).with_output_types(RecordBatch)  # RecordBatch
        | "DecodeRecords"
        >> DecodeRecords(vault, trust, business_date, max_record_bytes)  # DecodedBatch (+ dead letters)
        | "VerifyApplications" >> VerifyApplications(database_url, vault, catalog)  # StagedBatch
        | "StageChunks" >> StageChunks(database_url, vault)  # ChunkSummary
    )
    if run_id is not None and business_date is not None:
        staged = staged | "JoinAgreements" >> JoinAgreements(
            database_url, run_id, len(chunks), catalog.banks, business_date, window_days
        )  # (low application id, decisions staged), after every chunk is staged
    if not card_chunks or business_date is None:
        return staged
    personalized = pipeline | "PersonalizeCards" >> PersonalizeCards(
        list(card_chunks), database_url, vault, vendor_by_area(catalog.vendors), business_date
    )  # (chunk index, cards staged)
    return (staged, personalized) | "EveryStage" >> beam.Flatten()  # (low id, decisions) | (chunk, cards)


def _counters(result: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for counter in result.metrics().query()["counters"]:
        name = f"{counter.key.metric.namespace}.{counter.key.metric.name}"
        value = counter.committed if counter.committed is not None else counter.attempted
        counts[name] = counts.get(name, 0) + int(value or 0)
    return dict(sorted(counts.items()))


class _StagingWatcher:
    """Reports staged row counts while the pipeline runs (works whatever the runner and its workers)."""

    def __init__(self, database_url: str, run_id: int, progress: Progress) -> None:
        self._database_url, self._run_id, self._progress = database_url, run_id, progress
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="staging-watcher", daemon=True)

    def __enter__(self) -> _StagingWatcher:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        with connect(self._database_url, autocommit=True, application_name="issuance-progress") as conn:
            while not self._stop.wait(PROGRESS_INTERVAL_S):
                counts = run_repo.staged_counts(conn, self._run_id)
                self._progress("stage", {k.removeprefix("staged_"): v for k, v in counts.items()})


def run(
    argv: Sequence[str] | None = None,
    *,
    settings: Settings | None = None,
    progress: Progress = _quiet,
    engine: str | None = None,
    notice: engines.Notice = engines._quiet,
) -> NightlyResult:
    """One night. A crashed earlier run is resumed over its stored plan (and its business date).

    `engine` runs the Beam stage (`engines.ENGINES`, default `settings.engine`); `notice` gets its lines for
    the operator (the Dask cluster and its dashboard)."""
    business_date_arg, beam_args = parse_args(argv)
    settings = settings or Settings()
    engine = engine or settings.engine
    use_batch_thresholds()  # the in-memory runner's stage, the final transaction's Python, the relay
    endpoints = in_role(resolve(settings), NIGHTLY)  # every connection of the night, its workers' included
    vault = Vault.from_settings(settings)
    topics = Topics(settings)
    kinds = {topics.applications: APPLICATION, topics.agreements: "agreement"}
    timings: dict[str, float] = {}
    started = time.monotonic()
    with connect(endpoints.database_url, application_name="issuance-nightly") as conn:
        ensure_current(conn)
        run_repo.lock_nightly(conn)
        ensure_blind_indexes_settled(conn)
        conn.commit()
        _finish_earlier_runs(conn, settings, endpoints, vault, progress)

        # 1. Plan (or resume the run in flight).
        run_ = run_repo.open_run(conn)
        resumed = run_ is not None
        if run_ is None:
            checkpoints = run_repo.checkpoints(conn, list(kinds))
            plan = plan_ranges(endpoints.kafka, list(kinds), checkpoints)
            business_date = business_date_arg or business_day(datetime.now(UTC))
            run_ = run_repo.create_run(
                conn, business_date, [p.to_json() for p in plan], application_records(plan, kinds)
            )
        conn.commit()
        plan = [PartitionRange.from_json(p) for p in run_.plan]
        if resumed and not run_.staged:  # a staged run commits from PostgreSQL alone
            check_stored_plan(endpoints.kafka, run_.run_id, plan)
        planned = sum(p.size for p in plan)
        progress("plan", {"run_id": run_.run_id, "records": planned, "resumed": int(resumed)})
        timings["plan_s"] = time.monotonic() - started
        crash_point("planned")

        # 2. Stage with Beam (skipped when a resumed run had already staged everything under this contract).
        catalog = load_catalog(conn)
        trust = NightTrust((bureau_keys(settings),), load_directory(conn))  # once per night, for every worker
        conn.commit()
        counters: dict[str, int] = dict(run_.counters or {})
        if not run_.staged or counters.get(STAGED_UNDER) != CONTRACT_REVISION:
            t0 = time.monotonic()
            run_repo.clear_staging(conn)
            run_repo.mark_running(conn, run_.run_id)
            conn.commit()
            chunks = split_chunks(run_.run_id, plan, kinds, settings.chunk_size, run_.first_slot)
            card_chunks = list_card_chunks(conn, run_.run_id, settings.chunk_size)
            conn.commit()
            with (
                engines.runner_args(engine, beam_args, planned, settings, notice) as runner_args,
                _StagingWatcher(endpoints.database_url, run_.run_id, progress),
            ):
                pipeline = beam.Pipeline(options=PipelineOptions(runner_args))
                build_pipeline(
                    pipeline,
                    chunks,
                    catalog,
                    endpoints.kafka,
                    endpoints.database_url,
                    vault,
                    run_.business_date,
                    settings.max_record_bytes,
                    card_chunks,
                    trust=trust,
                    run_id=run_.run_id,
                    window_days=settings.agreement_window_days,
                )
                result = pipeline.run()
                reported = engines.finish(result)
            if reported:
                counters = _counters(result)
                counters.update(with_rate(counters))
            else:  # no Beam metrics (Dask): the staged rows' counts, without the DoFns' timings
                counters = staged_counters(conn, run_.run_id, kinds)
                conn.commit()
            counters[STAGED_UNDER] = CONTRACT_REVISION
            run_repo.mark_staged(conn, run_.run_id, planned, counters)
            conn.commit()
            timings["stage_s"] = time.monotonic() - t0
        crash_point("staged")

        # 3. Commit the night in one transaction.
        t0 = time.monotonic()
        progress("commit", {})
        night = NightContext(
            run_,
            catalog,
            vault,
            topics,
            settings.agreement_window_days,
            endpoints.database_url,
            personalize_in_process=planned < settings.parallel_from_records,
        )
        report = _commit(conn, night, topics)
        timings["commit_s"] = time.monotonic() - t0
        crash_point("committed")

        # 4. Vendor files and events out (both repeatable), side by side.
        files, published = _files_and_events(
            conn, settings, endpoints, vault, catalog.banks, run_, progress, timings
        )

        # 5. Activation requests still unanswered long after publishing: the broker may have lost them.
        resent = resend_unanswered(conn, settings, endpoints, vault)
        set_aside = set_aside_count(conn, run_.run_id)
    timings["total_s"] = time.monotonic() - started
    return NightlyResult(
        run_.run_id,
        run_.business_date,
        resumed,
        planned,
        report,
        counters,
        files,
        published,
        timings,
        resent_unanswered=resent,
        set_aside=set_aside,
    )


def _commit(conn: Any, night: NightContext, topics: Topics) -> dict[str, Any]:
    run_id = night.run.run_id
    try:
        with conn.transaction():
            stats = apply_night(conn, night)
            report = reconcile(conn, run_id, topics.applications, topics.agreements)
            report["run"] = {
                "cards_ordered": stats.cards_ordered,
                "accounts_requested": stats.accounts_requested,
                "account_opening_requests": stats.account_opening_requests,
                "activation_requests": stats.activation_requests,
                "requested_again": stats.requested_again,
                "retries_rejected": stats.retries_rejected,  # no longer pass verification: not retried
                "cards_cancelled": stats.cards_cancelled,  # the ordered cards of those
                "requests_prepared": stats.requests_prepared,  # built by the helper, kept if accepted
                "decisions": stats.decisions,
                "dead_letters": stats.dead_letters,
                "repeated_application_ids": stats.repeated_ids,
                "resent_applications": stats.resent,
                "reexamined": stats.reexamined,
                "commit_timings_s": stats.timings,
            }
            if not report["balanced"]:
                raise ReconciliationFailed(f"run {run_id} does not balance: {report['total']}")
            run_repo.advance_checkpoints(conn, run_id, night.run.plan)
            run_repo.clear_staging(conn)
            run_repo.finish_run(
                conn, run_id, status="SUCCEEDED", balanced=True, reconciliation=report, error=None
            )
            # The night's changes as one automated action, committed with them.
            record_action(
                conn,
                actor=SERVICE_NIGHTLY,
                action="run.commit",
                entity="run",
                entity_id=str(run_id),
                detail={"business_date": night.run.business_date.isoformat(), "total": report["total"]},
            )
    except ReconciliationFailed as exc:
        conn.rollback()
        run_repo.finish_run(conn, run_id, status="FAILED", balanced=False, reconciliation={}, error=str(exc))
        conn.commit()
        raise
    conn.commit()
    return report


def _files_and_events(
    conn: Any,
    settings: Settings,
    endpoints: Endpoints,
    vault: Vault,
    banks: Any,
    run_: run_repo.Run,
    progress: Progress,
    timings: dict[str, float],
) -> tuple[list[dict[str, Any]], int]:
    """The run's vendor files, written on a thread with a connection of its own while the relay publishes:
    the relay waits on the broker between batches, the files mostly on PostgreSQL and the disk."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="vendor-files") as pool:
        written = pool.submit(_write_files, endpoints.database_url, settings, run_, progress, timings)
        t0 = time.monotonic()
        published = _publish(conn, settings, endpoints, vault, banks, progress)
        timings["publish_s"] = time.monotonic() - t0
        return written.result(), published


def _write_files(
    database_url: str, settings: Settings, run_: run_repo.Run, progress: Progress, timings: dict[str, float]
) -> list[dict[str, Any]]:
    t0 = time.monotonic()
    with connect(database_url, application_name="issuance-vendor-files") as conn:
        files = write_files(
            conn,
            settings.personalization_dir,
            run_.run_id,
            run_.business_date.isoformat(),
            vault=Vault.from_settings(settings),
            bureau=bureau_keys(settings),
        )
        conn.commit()
    crash_point("files_written")
    progress("files", {"files": len(files)})
    timings["files_s"] = time.monotonic() - t0
    return files


def _publish(
    conn: Any, settings: Settings, endpoints: Endpoints, vault: Vault, banks: Any, progress: Progress
) -> int:
    ensure_topics(endpoints.kafka, settings, list(banks))

    def after_batch(sent: int) -> None:
        progress("publish", {"events": sent})

    def before_stamp(_sent: int) -> None:
        crash_point("published_some")

    return publish_outbox(
        conn,
        endpoints.kafka,
        vault,
        endpoints.database_url,
        after_batch=after_batch,
        before_stamp=before_stamp,
        processes=settings.relay_processes or os.cpu_count() or 1,
        max_message_bytes=settings.max_message_bytes,
        trust=RelayTrust.load(conn, settings),
    )


def _finish_earlier_runs(
    conn: Any, settings: Settings, endpoints: Endpoints, vault: Vault, progress: Progress
) -> None:
    """What a crash after an earlier run's commit left undone: its vendor files and its unpublished events."""
    row = conn.execute(
        "SELECT run_id, business_date FROM runs WHERE status = 'SUCCEEDED' ORDER BY run_id DESC LIMIT 1"
    ).fetchone()
    conn.commit()
    if row is None:
        return
    run_id, business_date = int(row[0]), row[1]
    if not files_complete(Path(settings.personalization_dir), run_id):
        write_files(
            conn,
            settings.personalization_dir,
            run_id,
            business_date.isoformat(),
            vault=Vault.from_settings(settings),
            bureau=bureau_keys(settings),
        )
        conn.commit()
    pending = conn.execute(
        "SELECT count(*) FROM outbox WHERE published_at IS NULL AND set_aside_at IS NULL"
    ).fetchone()
    conn.commit()
    if pending and pending[0]:
        catalog = load_catalog(conn)
        conn.commit()
        _publish(conn, settings, endpoints, vault, catalog.banks, progress)
