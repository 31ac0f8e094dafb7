"""Reconciliation of one run, per run and per branch: every application read is accounted for exactly once.

    read = accepted + rejected + awaiting agreement + dead-lettered + re-sent

A re-sent record (the same application sent again under its id) is read and accounted for as `resent`: it got
its application's first decision again, and the application itself is counted once, in the run that first
decided it.

`read` is counted from what the pipeline staged (the records of the application topic inside the plan); the
outcomes are counted from the system of record after the run's writes, inside the same transaction.
The lifecycle of the cards (personalized by vendor, steps since the previous run, its balance checks) is
`pipelines.lifecycle_report`; a run balances only when both do.
"""

from __future__ import annotations

from typing import Any

from issuance.domain.lifecycle import ApplicationState
from issuance.store.run_repo import Conn
from pipelines.lifecycle_report import lifecycle_report

OUTCOMES = ("accepted", "rejected", "awaiting_agreement", "dead_lettered", "resent")
UNKNOWN_BRANCH = "(unknown)"

# The run's applications by the state they are in when it commits: accepted ones are sent to the bank (the
# later states of an accepted application count where it was accepted, should a run be reconciled again).
_OUTCOME_OF_STATE = {
    ApplicationState.ACCEPTED: "accepted",
    ApplicationState.COMPLETED: "accepted",
    ApplicationState.FAILED: "accepted",
    ApplicationState.REJECTED: "rejected",
    ApplicationState.AWAITING_AGREEMENT: "awaiting_agreement",
}


def balance(read: dict[str, int], outcomes: dict[str, dict[str, int]]) -> dict[str, Any]:
    """Per-branch and total lines `read` vs the sum of outcomes; `balanced` only when every line is."""
    branches = sorted(set(read) | set(outcomes))
    lines = {}
    for branch in branches:
        counts = {name: outcomes.get(branch, {}).get(name, 0) for name in OUTCOMES}
        lines[branch] = {
            "read": read.get(branch, 0),
            **counts,
            "balanced": read.get(branch, 0) == sum(counts.values()),
        }
    total = {name: sum(line[name] for line in lines.values()) for name in ("read", *OUTCOMES)}
    total["balanced"] = all(line["balanced"] for line in lines.values()) and total["read"] == sum(
        total[name] for name in OUTCOMES
    )
    return {"total": total, "branches": lines, "balanced": bool(total["balanced"])}


def reconcile(conn: Conn, run_id: int, applications_topic: str, agreements_topic: str) -> dict[str, Any]:
    """The run's reconciliation (to call inside the run's final transaction, before staging is cleared)."""
    read: dict[str, int] = {}
    for branch, n in conn.execute(
        "SELECT coalesce(branch_code, %s), count(*) FROM ("
        " SELECT branch_code FROM staged_applications WHERE run_id = %s"
        " UNION ALL SELECT branch_code FROM staged_dead_letters WHERE run_id = %s AND source_topic = %s"
        " UNION ALL SELECT branch_code FROM resent_applications WHERE run_id = %s) t"
        " GROUP BY 1",
        (UNKNOWN_BRANCH, run_id, run_id, applications_topic, run_id),
    ):
        read[str(branch)] = int(n)
    # Repeated application ids left staged_applications for staged_dead_letters (another application under a
    # used id) or resent_applications (the same one sent again): each record counted once.
    outcomes: dict[str, dict[str, int]] = {}
    for branch, state, n in conn.execute(
        "SELECT branch_code, state, count(*) FROM applications WHERE first_run_id = %s GROUP BY 1, 2",
        (run_id,),
    ):
        line = outcomes.setdefault(str(branch), {})
        key = _OUTCOME_OF_STATE[ApplicationState(state)]
        line[key] = line.get(key, 0) + int(n)
    for branch, n in conn.execute(
        "SELECT coalesce(branch_code, %s), count(*) FROM dead_letters WHERE run_id = %s AND source_topic = %s"
        " GROUP BY 1",
        (UNKNOWN_BRANCH, run_id, applications_topic),
    ):
        line = outcomes.setdefault(str(branch), {})
        line["dead_lettered"] = line.get("dead_lettered", 0) + int(n)
    for branch, n in conn.execute(
        "SELECT branch_code, count(*) FROM resent_applications WHERE run_id = %s GROUP BY 1", (run_id,)
    ):
        line = outcomes.setdefault(str(branch), {})
        line["resent"] = line.get("resent", 0) + int(n)
    report = balance(read, outcomes)
    report["reasons"] = {
        str(reason): int(n)
        for reason, n in conn.execute(
            "SELECT r, count(*) FROM applications, unnest(reasons) AS r WHERE first_run_id = %s"
            " GROUP BY r ORDER BY r",
            (run_id,),
        )
    }
    report["dead_letters"] = {
        f"{topic_kind}.{reason}": int(n)
        for topic_kind, reason, n in conn.execute(
            "SELECT CASE WHEN source_topic = %s THEN 'applications' WHEN source_topic = %s THEN 'agreements'"
            " ELSE source_topic END, reason, count(*) FROM dead_letters WHERE run_id = %s GROUP BY"
            " 1, 2 ORDER BY 1, 2",
            (applications_topic, agreements_topic, run_id),
        )
    }
    report["agreements"] = _agreements(conn, run_id, agreements_topic)
    report["lifecycle"] = lifecycle_report(conn, run_id)
    report["balanced"] = report["balanced"] and report["lifecycle"]["balanced"]
    return report


def _agreements(conn: Conn, run_id: int, agreements_topic: str) -> dict[str, int]:
    row = conn.execute(
        "SELECT (SELECT count(*) FROM staged_agreements WHERE run_id = %(run)s),"
        " (SELECT count(*) FROM staged_dead_letters WHERE run_id = %(run)s AND source_topic = %(topic)s),"
        " (SELECT count(*) FROM agreements WHERE status = 'PENDING'),"
        " (SELECT count(*) FROM agreements WHERE status = 'EXPIRED'),"
        " (SELECT count(*) FROM agreements WHERE received_run_id = %(run)s AND status = 'MATCHED'),"
        " (SELECT count(*) FROM agreements WHERE received_run_id = %(run)s AND status = 'INVALID')",
        {"run": run_id, "topic": agreements_topic},
    ).fetchone()
    assert row is not None
    names = ("read", "dead_lettered", "pending_unknown_application", "expired_total", "matched", "invalid")
    return {name: int(value) for name, value in zip(names, row, strict=True)}
