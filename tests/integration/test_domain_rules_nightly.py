"""Every generated case of the domain rules through real nights (broker, Beam, PostgreSQL): people who should
be served are, re-sent applications get their first decision again, a reused id is a dead letter, and each
night still balances."""

from __future__ import annotations

from pathlib import Path

import pytest

from issuance.codec.avro import decode
from issuance.settings import Settings
from issuance.store.db import connect
from pipelines import nightly
from producers.cases import DEFECT_CASES
from producers.generator import GenerateOptions, generate
from tests.fixtures_nightly import (
    Generated,
    expected_after,
    lifecycle_state,
    load_reference_file,
    mismatches,
    publish_night,
    states,
)


@pytest.mark.parametrize(
    "seed",
    [
        pytest.param(24, id="resent-activation"),
        pytest.param(23, id="resent-new-card"),  # re-issued as its first run left it: ACCEPTED
    ],
)
def test_every_case_of_the_rules_over_three_nights(
    settings: Settings, database_url: str, tmp_path: Path, seed: int
) -> None:
    directory = tmp_path / "data"
    manifest = generate(
        directory, GenerateOptions(applications=len(DEFECT_CASES) + 20, seed=seed, invalid_ratio=1.0)
    )
    generated = Generated(directory, manifest)
    load_reference_file(settings, database_url, generated)
    expected = generated.expected()
    resent = [e for e in expected if e["kind"] == "resent_application"]
    reused = [e for e in expected if e["kind"] == "reused_application_id"]
    assert resent and reused
    reports = {}
    for night in (1, 2, 3):
        publish_night(settings, generated, night, raw=False)
        date = generated.business_date(night)
        result = nightly.run(["--business-date", date], settings=settings)
        assert result.balanced, result.reconciliation["total"]
        assert mismatches(states(database_url), expected_after(expected, date)) == []
        reports[night] = result.reconciliation

    night2 = reports[2]["total"]
    assert night2["resent"] == len(resent)
    assert night2["dead_lettered"] == len(reused)
    with connect(database_url) as conn:
        dead = conn.execute("SELECT reason, count(*) FROM dead_letters GROUP BY reason").fetchall()
        reissued = conn.execute(
            "SELECT r.application_id, o.payload FROM resent_applications r JOIN outbox o USING (event_id)"
        ).fetchall()
        decided_once = conn.execute(
            "SELECT count(*) FROM application_history WHERE application_id = ANY(%s) AND stage = 'read'",
            ([e["application_id"] for e in resent + reused],),
        ).fetchone()
    assert dead == [("APPLICATION_ID_REUSED", len(reused))]
    assert decided_once == (len(resent) + len(reused),)  # each application read and decided once
    first = {e["application_id"]: e for e in expected if e["kind"] == "resent_application"}
    assert sorted(app for app, _ in reissued) == sorted(first)
    for application_id, payload in reissued:
        record = decode(bytes(payload), "DecisionIssued").record
        wanted = first[application_id]["timeline"][0]
        assert (record["application_id"], record["state"], record["reasons"]) == (
            application_id,
            lifecycle_state(wanted["state"]),
            wanted["reasons"],
        )
