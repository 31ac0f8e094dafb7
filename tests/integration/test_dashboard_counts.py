"""The trigger-maintained summaries always equal counting `applications` directly."""

from __future__ import annotations

from pathlib import Path

import psycopg

from benchmarks.dashboard import fill
from issuance.settings import Settings
from issuance.store.dashboard_queries import agreement_backlog
from issuance.store.report_queries import (
    Filters,
    Scope,
    compact,
    counts_by,
    counts_by_reason,
    counts_by_state,
    side_counts,
)
from tests.fixtures_dashboard import fixed_vault


def direct(conn: psycopg.Connection) -> tuple[dict[str, int], dict[str, int], dict[str, dict[str, int]]]:
    """Counts per state, per reason and per branch, straight from `applications`."""
    states = {s: int(n) for s, n in conn.execute("SELECT state, count(*) FROM applications GROUP BY 1")}
    reasons = {
        r: int(n)
        for r, n in conn.execute(
            "SELECT r, count(*) FROM applications, unnest(reasons) r WHERE state = 'REJECTED' GROUP BY 1"
        )
    }
    branches: dict[str, dict[str, int]] = {}
    for b, s, n in conn.execute("SELECT branch_code, state, count(*) FROM applications GROUP BY 1, 2"):
        branches.setdefault(b, {})[s] = int(n)
    return states, reasons, branches


def assert_summaries_exact(conn: psycopg.Connection) -> None:
    states, reasons, branches = direct(conn)
    everything = Scope.everything()
    assert {k: v for k, v in counts_by_state(conn, everything).items() if v} == states
    assert counts_by_reason(conn, everything) == reasons
    assert counts_by(conn, "branch_code", everything) == branches
    waiting = {
        (s, d): int(n)
        for s, d, n in conn.execute(
            "SELECT state, dashboard_waiting_since(state, submitted_at, updated_at), count(*)"
            " FROM applications WHERE state IN ('AWAITING_AGREEMENT', 'ACCEPTED') GROUP BY 1, 2"
        )
    }
    summary = {
        (s, d): int(n)
        for s, d, n in conn.execute(
            "SELECT state, since_day, sum(n) FROM dashboard_waiting_counts GROUP BY 1, 2 HAVING sum(n) <> 0"
        )
    }
    assert summary == waiting
    assert agreement_backlog(conn, everything, Filters()).total == states.get("AWAITING_AGREEMENT", 0)
    # Both sides of the cards (migration 0031), per status, equal the tables.
    sides: dict[tuple[str, str], int] = {}
    for s in side_counts(conn, everything):
        sides[s.side, s.status] = sides.get((s.side, s.status), 0) + s.count
    direct_sides = {
        ("card", str(s)): int(n) for s, n in conn.execute("SELECT status, count(*) FROM cards GROUP BY 1")
    }
    direct_sides |= {
        ("financial", str(s)): int(n)
        for s, n in conn.execute("SELECT status, count(*) FROM bank_accounts GROUP BY 1")
    }
    assert sides == direct_sides


def test_counts_follow_every_kind_of_write(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        fill(conn, fixed_vault(), 800)
        assert_summaries_exact(conn)
        conn.execute(
            "UPDATE applications SET state = 'FAILED', is_open = false WHERE state = 'ACCEPTED'"
            " AND application_type = 'FINANCIAL_ACTIVATION'"
        )
        conn.execute(
            "WITH collected AS (UPDATE cards SET status = 'ISSUED', collected_at = now()"
            " WHERE status = 'AT_BRANCH' RETURNING application_id)"
            " UPDATE applications SET state = 'COMPLETED', is_open = false"
            " WHERE application_id IN (SELECT application_id FROM collected)"
        )
        conn.execute(
            "UPDATE bank_accounts SET status = 'ACTIVE' WHERE status = 'OPENED' AND card_number < 'B'"
        )
        conn.execute(
            "UPDATE applications SET state = 'REJECTED', reasons = '{AGREEMENT_EXPIRED}', is_open = false"
            " WHERE state = 'AWAITING_AGREEMENT'"
        )
        conn.execute("UPDATE applications SET version = version + 1")  # nothing counted changes
        conn.execute(
            "INSERT INTO applications (application_id, application_type, branch_code, bank_code, channel,"
            " person_key, id_number_enc, name_enc, materials, submitted_at, state, is_open)"
            " SELECT application_id, application_type, branch_code, bank_code, channel, person_key,"
            " id_number_enc, name_enc, materials, submitted_at, state, false FROM applications"
            " WHERE application_id < 'APP-00000100'"
            " ON CONFLICT (application_id) DO UPDATE SET state = 'REJECTED'"
        )
        conn.execute("DELETE FROM application_history WHERE application_id LIKE 'APP-0000079%'")
        conn.execute("DELETE FROM bank_accounts WHERE application_id LIKE 'APP-0000079%'")
        conn.execute("DELETE FROM cards WHERE application_id LIKE 'APP-0000079%'")
        conn.execute("DELETE FROM applications WHERE application_id LIKE 'APP-0000079%'")
        conn.commit()
        assert_summaries_exact(conn)
        compact(conn)
        conn.commit()
        assert_summaries_exact(conn)
        rows = conn.execute("SELECT count(*) FROM dashboard_state_counts WHERE n = 0").fetchone()
        assert rows == (0,)
        # Rolled-back writes leave no trace in the summaries either.
        conn.execute("UPDATE applications SET state = 'SUBMITTED'")
        conn.rollback()
        assert_summaries_exact(conn)


def test_filters_narrow_the_counts(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        fill(conn, fixed_vault(), 600)
        picked_row = conn.execute(
            "SELECT a.bank_code, a.area_code, r.business_date FROM applications a"
            " JOIN runs r ON r.run_id = a.first_run_id ORDER BY a.application_id DESC LIMIT 1 OFFSET 50"
        ).fetchone()
        assert picked_row is not None
        bank, area, day = picked_row
        expected = {
            s: int(n)
            for s, n in conn.execute(
                "SELECT state, count(*) FROM applications a JOIN runs r ON r.run_id = a.first_run_id"
                " WHERE a.bank_code = %s AND a.area_code = %s AND r.business_date = %s GROUP BY 1",
                (bank, area, day),
            )
        }
        picked = Filters(area_code=area, bank_code=bank, business_date=day)
        got = counts_by_state(conn, Scope.everything(), picked)
        assert {k: v for k, v in got.items() if v} == expected
        assert expected, "the filter should match something"


def test_counts_after_real_nights(settings: Settings, database_url: str, tmp_path: Path) -> None:
    from pipelines import nightly  # the whole nightly run; only this test needs it
    from tests.fixtures_nightly import load_reference_file, make_generated, publish_night

    generated = make_generated(tmp_path / "data", 200)
    load_reference_file(settings, database_url, generated)
    for night in (1, 2):
        publish_night(settings, generated, night)
        nightly.run(["--business-date", generated.business_date(night)], settings=settings)
    with psycopg.connect(database_url) as conn:
        assert_summaries_exact(conn)
        assert sum(counts_by_state(conn, Scope.everything()).values()) > 0
