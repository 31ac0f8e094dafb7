"""The database roles of the processes, and what each may do to each table (migration 0038 grants it).

Each process assumes its group role right after connecting (`issuance.store.db.connect(..., role=...)` or a
connection string made by `with_role`), so that a process does only what its role was granted. In
production each service logs in as its own LOGIN role that is a member of its group role (README, "Database
roles"); in the embedded mode the owner connects and SET ROLE makes the tests exercise the grants.

`DECISIONS` is the record of every grant decision: a table of the schema that has no entry for every role
fails tests/integration/test_db_roles.py, and so does a grant in the database that differs from it. A new
table therefore comes with its grants in its migration and its line here."""

from __future__ import annotations

import dataclasses

from issuance.services.endpoints import Endpoints
from issuance.store.db import with_role

NIGHTLY = "issuance_nightly"  # the nightly batch (pipelines/)
CONSUMER = "issuance_consumer"  # `issuance consume`: the banks' answers, the branches' card events
DASHBOARD = "issuance_dashboard"  # the dashboard: reads what it shows, records who read what
BANK_SIMULATOR = "issuance_bank_simulator"  # the simulated banks: their own ledger
BRANCH_SIMULATOR = "issuance_branch_simulator"  # the simulated branches: their own ledger
OPERATOR = "issuance_operator"  # the operators' commands (reference loads, re-drives, re-publishes...)


def in_role(endpoints: Endpoints, role: str) -> Endpoints:
    """The endpoints whose database connections assume `role`: made once where a process starts."""
    return dataclasses.replace(endpoints, database_url=with_role(endpoints.database_url, role))


ROLES = (NIGHTLY, CONSUMER, DASHBOARD, BANK_SIMULATOR, BRANCH_SIMULATOR, OPERATOR)

PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE")
NONE: frozenset[str] = frozenset()
READ = frozenset({"SELECT"})
APPEND = frozenset({"SELECT", "INSERT"})
WRITE = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE"})
EMPTY = WRITE | {"TRUNCATE"}  # staging tables, emptied between runs


def _decide(
    *,
    operator: frozenset[str],
    nightly: frozenset[str],
    consumer: frozenset[str],
    dashboard: frozenset[str],
    bank: frozenset[str] = NONE,
    branch: frozenset[str] = NONE,
) -> dict[str, frozenset[str]]:
    return {
        OPERATOR: operator,
        NIGHTLY: nightly,
        CONSUMER: consumer,
        DASHBOARD: dashboard,
        BANK_SIMULATOR: bank,
        BRANCH_SIMULATOR: branch,
    }


_REFERENCE = _decide(operator=WRITE, nightly=READ, consumer=READ, dashboard=READ)
_BANKS = _decide(operator=WRITE, nightly=READ, consumer=READ, dashboard=READ, bank=READ, branch=READ)
_PERSON_CARDS = _decide(operator=WRITE, nightly=WRITE, consumer=WRITE, dashboard=READ)
_STATE = _decide(operator=WRITE, nightly=WRITE, consumer=WRITE, dashboard=READ)
_NIGHT_ONLY = _decide(operator=WRITE, nightly=WRITE, consumer=READ, dashboard=READ)
_STAGING = _decide(operator=READ, nightly=EMPTY, consumer=NONE, dashboard=NONE)
_BANK_LEDGER = _decide(operator=NONE, nightly=NONE, consumer=NONE, dashboard=NONE, bank=WRITE)
_ROTATIONS = _decide(operator=WRITE, nightly=READ, consumer=READ, dashboard=NONE, bank=READ, branch=READ)
_BRANCH_LEDGER = _decide(operator=NONE, nightly=NONE, consumer=NONE, dashboard=NONE, branch=WRITE)

# Table (schema-qualified) -> role -> the privileges it holds. Reasons for the exceptions beside them.
DECISIONS: dict[str, dict[str, frozenset[str]]] = {
    "public.schema_migrations": dict.fromkeys(ROLES, READ),  # every process checks the schema is current
    "public.issuing_areas": _REFERENCE,
    "public.banks": _BANKS,  # the simulators know the banks' codes and BINs
    "public.branches": _REFERENCE,
    "public.vendors": _REFERENCE,
    "public.persons": _REFERENCE,
    "public.person_cards": _PERSON_CARDS,
    "public.runs": _NIGHT_ONLY,
    "public.checkpoints": _NIGHT_ONLY,
    "public.allocation_counters": _NIGHT_ONLY,
    "public.vendor_files": _NIGHT_ONLY,
    "public.vendor_returns": _NIGHT_ONLY,
    # The branch simulator reads the holder of the cards it hands out from the bureau's (sealed) records.
    "public.applications": _STATE | {BRANCH_SIMULATOR: READ},
    "public.application_history": _STATE,
    "public.agreements": _STATE,
    "public.cards": _STATE,
    "public.bank_accounts": _STATE,
    "public.card_history": _STATE,
    "public.inbox": _STATE,
    "public.card_event_inbox": _STATE,
    "public.resent_applications": _STATE,
    "public.dead_letter_redrives": _STATE,
    # A simulated bank stores the requests it cannot read as dead letters and relays their events (embedded
    # model: it shares the bureau's outbox); it may add dead letters but not read them (INSERT and the
    # column id for RETURNING, a column grant this table does not show).
    "public.dead_letters": _STATE | {BANK_SIMULATOR: frozenset({"INSERT"})},
    "public.outbox": _STATE | {BANK_SIMULATOR: frozenset({"SELECT", "INSERT", "UPDATE"})},
    # The dashboard's summaries, kept by triggers of the tables above (triggers run as the writer); the
    # dashboard folds them with dashboard_compact_counts(), which runs as the owner.
    "public.dashboard_state_counts": _STATE,
    "public.dashboard_reason_counts": _STATE,
    "public.dashboard_waiting_counts": _STATE,
    "public.dashboard_card_counts": _STATE,
    "public.staged_applications": _STAGING,
    "public.staged_agreements": _STAGING,
    "public.staged_dead_letters": _STAGING,
    "public.staged_chunks": _STAGING,
    "public.staged_personalized": _STAGING,
    "public.staged_cards": _STAGING,
    "public.staged_agreement_decisions": _STAGING,  # 0041
    # Append-only: nobody but the owner may UPDATE, DELETE or TRUNCATE it. The dashboard records reads.
    "public.audit_log": _decide(
        operator=APPEND, nightly=APPEND, consumer=APPEND, dashboard=frozenset({"INSERT"})
    ),
    # Written by the chain trigger as the owner; the operators read it to verify the chain.
    "public.audit_chain_head": dict.fromkeys(ROLES, NONE) | {OPERATOR: READ},
    # The dashboard's login sessions (migration 0036, granted by 0038 where it exists).
    "public.dashboard_sessions": _decide(operator=NONE, nightly=NONE, consumer=NONE, dashboard=WRITE),
    # The parties' public keys (0032, granted by 0040): every verifier and sealer loads them; operators
    # register and revoke them.
    "public.party_keys": _decide(
        operator=WRITE, nightly=READ, consumer=READ, dashboard=NONE, bank=READ, branch=READ
    ),
    # Key rotations (0039, granted by 0040): the operators rotate; the night and every consumer check that no
    # blind-index rotation is unfinished.
    "public.key_rotations": _ROTATIONS,
    "public.key_rotation_progress": _ROTATIONS,
    "bank_sim.accounts": _BANK_LEDGER,
    "bank_sim.inbox": _BANK_LEDGER,
    "bank_sim.counters": _BANK_LEDGER,
    "branch_sim.runs": _BRANCH_LEDGER,
    "branch_sim.cards": _BRANCH_LEDGER,
}
