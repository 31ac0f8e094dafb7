"""Prometheus gauges of the pipeline and the consumers, read from PostgreSQL at each scrape."""

from __future__ import annotations

import psycopg
from prometheus_client import CollectorRegistry, Gauge, generate_latest

from issuance.domain.model import DeadLetterReason
from issuance.store.report_queries import Scope, counts_by_state


def metrics_text(conn: psycopg.Connection) -> bytes:
    """The current gauges in the Prometheus text format."""
    registry = CollectorRegistry()
    by_state = Gauge("issuance_applications", "Applications by state", ["state"], registry=registry)
    for state, n in counts_by_state(conn, Scope.everything()).items():
        by_state.labels(state).set(n)

    outbox = Gauge("issuance_outbox_unpublished", "Events written but not yet published", registry=registry)
    outbox_age = Gauge(
        "issuance_outbox_oldest_unpublished_age_seconds",
        "Age of the oldest unpublished event",
        registry=registry,
    )
    set_aside = Gauge(
        "issuance_outbox_set_aside",
        "Events set aside because the broker will not take them (never published)",
        registry=registry,
    )
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE set_aside_at IS NULL),"
        " coalesce(extract(epoch FROM now() - min(created_at) FILTER (WHERE set_aside_at IS NULL)), 0),"
        " count(*) FILTER (WHERE set_aside_at IS NOT NULL)"
        " FROM outbox WHERE published_at IS NULL"
    ).fetchone()
    assert row is not None
    outbox.set(row[0])
    outbox_age.set(float(row[1]))
    set_aside.set(row[2])

    dead = Gauge("issuance_dead_letters", "Dead letters by reason", ["reason"], registry=registry)
    for reason in DeadLetterReason:
        dead.labels(reason.value).set(0)
    for reason, n in conn.execute("SELECT reason, count(*) FROM dead_letters GROUP BY 1").fetchall():
        dead.labels(reason).set(n)

    last = conn.execute(
        "SELECT run_id, extract(epoch FROM finished_at - started_at), records_read, balanced,"
        " extract(epoch FROM finished_at) FROM runs WHERE finished_at IS NOT NULL"
        " ORDER BY run_id DESC LIMIT 1"
    ).fetchone()
    duration = Gauge(
        "issuance_last_run_duration_seconds", "Duration of the last finished run", registry=registry
    )
    records = Gauge(
        "issuance_last_run_records_read", "Records read by the last finished run", registry=registry
    )
    balanced = Gauge(
        "issuance_last_run_balanced", "1 when the last run's reconciliation balanced", registry=registry
    )
    finished = Gauge(
        "issuance_last_run_finished_timestamp_seconds", "When the last run finished", registry=registry
    )
    if last is not None:
        duration.set(float(last[1]))
        records.set(last[2])
        balanced.set(1 if last[3] else 0)
        finished.set(float(last[4]))
    running = Gauge("issuance_runs_in_progress", "Runs planned or running", registry=registry)
    in_progress = conn.execute("SELECT count(*) FROM runs WHERE status IN ('PLANNED', 'RUNNING')").fetchone()
    running.set(in_progress[0] if in_progress else 0)
    return generate_latest(registry)
