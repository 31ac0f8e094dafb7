"""The processes' database roles: every table has a grant decision for every role, the database grants exactly
that, and the roles are refused what they must not do."""

from __future__ import annotations

import psycopg
import pytest

from issuance.store import roles
from issuance.store.db import connect, with_role

SCHEMAS = ("public", "bank_sim", "branch_sim")


def tables(url: str) -> list[str]:
    """Every table, partitioned table, view and materialized view of the project's schemas."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT n.nspname || '.' || c.relname FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = ANY(%s) AND c.relkind IN ('r', 'p', 'v', 'm') ORDER BY 1",
            (list(SCHEMAS),),
        ).fetchall()
    return [str(r[0]) for r in rows]


def test_every_table_has_a_decision_for_every_role(database_url: str) -> None:
    missing = [
        f"{table}: {role}"
        for table in tables(database_url)
        for role in roles.ROLES
        if role not in roles.DECISIONS.get(table, {})
    ]
    assert missing == [], (
        "tables without a grant decision: grant in the table's migration and add its line to "
        "issuance/store/roles.py DECISIONS"
    )


def test_the_database_grants_exactly_the_decisions(database_url: str) -> None:
    differ = []
    with psycopg.connect(database_url) as conn:
        for table in tables(database_url):
            for role, decided in roles.DECISIONS.get(table, {}).items():
                held = {
                    privilege
                    for privilege in roles.PRIVILEGES
                    if conn.execute(
                        "SELECT has_table_privilege(%s, %s, %s)", (role, table, privilege)
                    ).fetchone()
                    == (True,)
                }
                if held != decided:
                    differ.append(f"{table} {role}: holds {sorted(held)}, decided {sorted(decided)}")
    assert differ == []


def test_public_holds_nothing_on_the_tables(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        opened = conn.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.role_table_grants"
            " WHERE grantee = 'PUBLIC' AND table_schema = ANY(%s)",
            (list(SCHEMAS),),
        ).fetchall()
    assert opened == []


@pytest.mark.parametrize(
    ("role", "statement"),
    [
        (roles.DASHBOARD, "UPDATE applications SET state = state"),
        (roles.DASHBOARD, "DELETE FROM cards"),
        (roles.DASHBOARD, "SELECT count(*) FROM audit_log"),
        (roles.DASHBOARD, "SELECT count(*) FROM bank_sim.accounts"),
        (roles.CONSUMER, "DELETE FROM audit_log"),
        (roles.CONSUMER, "UPDATE audit_log SET detail = '{}'"),
        (roles.CONSUMER, "TRUNCATE staged_applications"),
        (roles.BANK_SIMULATOR, "SELECT count(*) FROM applications"),
        (roles.BANK_SIMULATOR, "SELECT count(*) FROM persons"),
        (roles.BANK_SIMULATOR, "SELECT detail FROM dead_letters"),
        (roles.BRANCH_SIMULATOR, "SELECT count(*) FROM bank_sim.accounts"),
        (roles.NIGHTLY, "SELECT count(*) FROM branch_sim.cards"),
        (roles.NIGHTLY, "DELETE FROM persons"),
        (roles.OPERATOR, "DELETE FROM audit_log"),
        (roles.OPERATOR, "TRUNCATE staged_applications"),
    ],
)
def test_a_role_is_refused_what_it_must_not_do(database_url: str, role: str, statement: str) -> None:
    with (
        connect(database_url, role=role, autocommit=True) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute(statement)


def test_the_dashboard_reads_what_it_shows_and_records_reads(database_url: str) -> None:
    with connect(database_url, role=roles.DASHBOARD, autocommit=True) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (roles.DASHBOARD,)
        conn.execute("SELECT count(*) FROM applications").fetchone()
        conn.execute("SELECT dashboard_compact_counts()")
        conn.execute(
            "INSERT INTO audit_log (actor, action, entity, entity_id)"
            " VALUES ('dashboard:x', 'application.read', 'application', '1')"
        )


def test_a_connection_string_carries_its_role_and_migrations_drop_it(database_url: str) -> None:
    url = with_role(database_url, roles.NIGHTLY)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (roles.NIGHTLY,)
    with psycopg.connect(with_role(url, None)) as conn:
        assert conn.execute("SELECT current_user").fetchone() != (roles.NIGHTLY,)
