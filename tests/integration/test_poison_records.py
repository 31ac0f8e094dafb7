"""Poison records against the real broker and PostgreSQL: none of them stops a night, and submit refuses them.

Each record is produced straight onto the topic with kafka-python (bypassing `issuance submit`'s contract
check, yet sealed and signed by its branch or bank), as a branch system with a bug or a replay tool could.
The night that reads them exits 0, balances, and counts each one as a dead letter with its reason; the next
night runs as if they had never been there.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from kafka import KafkaProducer
from psycopg import sql

from issuance.crypto import Vault
from issuance.kafka.client_config import KafkaClientConfig
from issuance.kafka.topics import Topics, ensure_topics
from issuance.settings import Settings
from issuance.store import run_repo
from issuance.store.db import connect
from issuance.trust.parties import Party
from pipelines import nightly
from pipelines.records import Chunk, StagedBatch
from pipelines.transforms.decode import DecodedBatch
from pipelines.transforms.stage import StageBatch
from pipelines.transforms.verify import VerifyBatch
from producers.client import BranchClient, Prepared, Preparer
from producers.credentials import SenderKeys
from producers.generator import AGREEMENT_FILES, APPLICATION_FILES
from producers.raw_prepare import encode_record, sign_raw
from producers.submission import Kind, submit_file
from tests import factories
from tests.fixtures_nightly import (
    Generated,
    expected_after,
    load_reference_file,
    make_generated,
    mismatches,
    provision_partners,
    publish_night,
    states,
)
from tests.fixtures_services import settings_env

APPLICATION = "ApplicationSubmitted"
AGREEMENT = "AgreementSigned"
SECRET_NAME = "毒药记录"  # a name that must never appear in a detail


@dataclass(frozen=True)
class Poison:
    case: str
    topic: str  # "applications" | "agreements"
    reason: str
    value: bytes | None
    record: dict[str, Any] | None = None  # the JSON form, for the same case at `issuance submit`
    sender: str | None = None  # "kind:code": who signs the record's message (None: unsigned)


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _night_two_applicants(generated: Generated) -> list[dict[str, Any]]:
    """Valid night-2 applications that pass verification: registry persons without an open application on
    night 1."""
    wanted = expected_after(generated.expected(), generated.business_date(2))
    return [
        record
        for record in _lines(generated.directory / APPLICATION_FILES[2])
        if wanted.get(record["application_id"], ("", []))[0] in {"ACCEPTED", "AWAITING_AGREEMENT"}
    ]


def _changed(record: dict[str, Any], id_field: str, case: str, **changes: Any) -> dict[str, Any]:
    """A copy of the record under a new id, with `changes` by dotted path."""
    changed = json.loads(json.dumps(record))
    changed[id_field] = f"POISON-{case}"
    for path, value in changes.items():
        target = changed
        *parents, name = path.split(".")
        for parent in parents:
            target = target[parent]
        target[name] = value
    return changed


def poison_cases(generated: Generated) -> list[Poison]:
    """Every poison case of the contract: one record each."""
    night_one = _lines(generated.directory / APPLICATION_FILES[1])[0]
    agreement = _lines(generated.directory / AGREEMENT_FILES[1])[0]
    late, later = _night_two_applicants(generated)[:2]

    # Each record is sent as its branch (or bank) sends it, sealed and signed (`_produce`): the contract, not
    # the trust in its sender, is what it breaks. A branch code with a NUL names no party that could sign.
    def app(
        case: str, source: dict[str, Any] = night_one, reason: str = "SCHEMA_VIOLATION", **changes: Any
    ) -> Poison:
        record = _changed(source, "application_id", case, **changes)
        return Poison(case, "applications", reason, None, record, f"branch:{source['branch_code']}")

    def agr(case: str, **changes: Any) -> Poison:
        record = _changed(agreement, "agreement_id", case, **changes)
        return Poison(case, "agreements", "SCHEMA_VIOLATION", None, record, f"bank:{agreement['bank_code']}")

    def oversized(case: str, **changes: Any) -> Poison:
        return app(case, reason="OVERSIZED_MESSAGE", **changes)

    return [
        app("NUL_BRANCH", reason="SENDER_MISMATCH", branch_code="BR\x00001"),
        app("NUL_ID", application_id="POISON\x00ID"),
        app("YEAR_9999_EAST", late, submitted_at="9999-12-31T00:00:00+08:00"),
        app("YEAR_9999_WEST", later, submitted_at="9999-12-31T23:00:00-12:00"),
        app("YEAR_1", submitted_at="0001-01-01T00:00:00+08:00"),
        app("CONTROL_IN_NAME", **{"applicant.name": f"{SECRET_NAME}\x1b[2J"}),
        app("ZERO_WIDTH_NAME", **{"applicant.name": "\u200b\u200c\u200d"}),
        app("BIDI_NAME", **{"applicant.name": f"\u202e{SECRET_NAME}"}),
        app("NINE_MATERIALS", materials=["RESIDENT_ID_CARD", "HOUSEHOLD_REGISTER"] * 4 + ["BANK_CARD"]),
        Poison("NULL_VALUE", "applications", "EMPTY_MESSAGE", None),
        Poison("ZERO_LENGTH", "applications", "EMPTY_MESSAGE", b""),
        oversized("OVERSIZED_TEXT", **{"applicant.name": "x" * 900_000}),
        oversized("MATERIALS_100000", materials=["RESIDENT_ID_CARD"] * 100_000),
        agr("AGREEMENT_YEAR_9999", signed_at="9999-12-31T00:00:00+08:00"),
        agr("AGREEMENT_NUL_TERMS", terms_version="2026\x00"),
        Poison("AGREEMENT_NULL_VALUE", "agreements", "EMPTY_MESSAGE", None),
    ]


def _produce(settings: Settings, poisons: list[Poison]) -> dict[str, tuple[str, int, int]]:
    """Produce each poison (a record encoded, sealed and signed by its sender, not checked against the
    contract; a value verbatim and unsigned); case -> (topic, partition, offset)."""
    topics = Topics(settings)
    names = {"applications": topics.applications, "agreements": topics.agreements}
    preparer = Preparer(topics, SenderKeys.from_settings(settings))
    producer = KafkaProducer(
        **KafkaClientConfig.from_settings(settings).client_kwargs(), acks="all", max_request_size=2 << 20
    )
    try:
        where = {}
        for poison in poisons:
            topic, key = names[poison.topic], poison.case.encode()
            sender = Party.parse(poison.sender) if poison.sender else None
            value = poison.value
            if poison.record is not None:
                value = encode_record(preparer, topic, poison.record, sender, None)
            prepared = sign_raw(preparer, Prepared(topic, key, value, poison.case), sender, None)
            metadata = producer.send(topic, key=key, value=value, headers=prepared.headers).get(30)
            where[poison.case] = (metadata.topic, metadata.partition, metadata.offset)
        return where
    finally:
        producer.close()


def _dead_letters(database_url: str) -> dict[tuple[str, int, int], tuple[str, str, str]]:
    with connect(database_url) as conn:
        rows = conn.execute(
            "SELECT source_topic, source_partition, source_offset, reason, stage, detail FROM dead_letters"
        ).fetchall()
    return {(t, p, o): (reason, stage, detail) for t, p, o, reason, stage, detail in rows}


def _batch_run(settings: Settings, business_date: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "issuance"),
            "batch",
            "run",
            "--business-date",
            business_date,
            "--json",
        ],
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_poison_records_become_dead_letters_and_the_nights_go_on(
    settings: Settings, database_url: str, tmp_path: Path
) -> None:
    generated = make_generated(tmp_path / "data", 80, seed=13)
    load_reference_file(settings, database_url, generated)
    expected = generated.expected()
    poisons = poison_cases(generated)
    publish_night(settings, generated, 1)
    where = _produce(settings, poisons)

    first = _batch_run(settings, generated.business_date(1))
    assert first.returncode == 0, first.stderr[-2000:]
    report = json.loads(first.stdout)
    assert report["balanced"], report["reconciliation"]["total"]

    dead = _dead_letters(database_url)
    for poison in poisons:
        reason, stage, detail = dead[where[poison.case]]
        assert (poison.case, reason, stage) == (poison.case, poison.reason, "decode")
        assert SECRET_NAME not in detail and "\x00" not in detail and "9999" not in detail
    assert mismatches(states(database_url), expected_after(expected, generated.business_date(1))) == []
    applications_poisoned = sum(p.topic == "applications" for p in poisons)
    raw_applications = sum(
        m["topic"] == "applications" for m in _lines(generated.directory / "raw_messages.jsonl")
    )
    assert report["reconciliation"]["total"]["dead_lettered"] == applications_poisoned + raw_applications

    # The next night does not resume anything: the poisoned persons' real applications go through as expected.
    publish_night(settings, generated, 2)
    result = nightly.run(["--business-date", generated.business_date(2)], settings=settings)
    assert result.balanced and not result.resumed
    assert mismatches(states(database_url), expected_after(expected, generated.business_date(2))) == []


def test_submit_refuses_the_same_values_line_by_line(
    settings: Settings, database_url: str, tmp_path: Path
) -> None:
    generated = make_generated(tmp_path / "data", 80, seed=13)
    ensure_topics(KafkaClientConfig.from_settings(settings), settings, [])
    load_reference_file(settings, database_url, generated)
    provision_partners(settings)
    poisons = [p for p in poison_cases(generated) if p.record is not None]
    valid = _lines(generated.directory / APPLICATION_FILES[1])[1]
    applications = [p for p in poisons if p.topic == "applications"]
    agreements = [p for p in poisons if p.topic == "agreements"]
    with BranchClient.from_settings(settings, delivery_timeout_s=15) as client:
        for kind, cases in ((Kind.APPLICATIONS, applications), (Kind.AGREEMENTS, agreements)):
            path = tmp_path / f"{kind.value}.jsonl"
            lines = [json.dumps(p.record, ensure_ascii=False) for p in cases] + ["null"]
            if kind is Kind.APPLICATIONS:
                lines.append(json.dumps({**valid, "note": "kept out"}, ensure_ascii=False))
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
            report = submit_file(client, path, kind)
            rejected = {r.line: dict(r.problems) for r in report.rejections}
            assert sorted(rejected) == list(range(1, len(cases) + 2)), kind
            assert report.published == (1 if kind is Kind.APPLICATIONS else 0)
            for text in map(str, report.to_json()["rejections"]):
                assert SECRET_NAME not in text
    assert report.exit_code == 2


def test_submit_reports_fields_beyond_the_contract(
    settings: Settings, database_url: str, tmp_path: Path
) -> None:
    generated = make_generated(tmp_path / "data", 80, seed=13)
    ensure_topics(KafkaClientConfig.from_settings(settings), settings, [])
    load_reference_file(settings, database_url, generated)
    provision_partners(settings)
    records = _lines(generated.directory / APPLICATION_FILES[1])[:3]
    records[0]["note"] = "x"
    records[1]["applicant"]["nickname"] = "y"
    records[1]["note"] = "z"
    path = tmp_path / "applications.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    with BranchClient.from_settings(settings, delivery_timeout_s=15) as client:
        report = submit_file(client, path, Kind.APPLICATIONS)
    assert (report.published, report.exit_code) == (3, 0)
    assert report.to_json()["ignored_fields"] == {"applicant.nickname": 1, "note": 2}


def test_a_value_postgresql_refuses_is_set_aside_at_staging(settings: Settings, database_url: str) -> None:
    """The safety net behind the contract: a row PostgreSQL refuses becomes a dead letter, the rest stays."""
    vault = Vault.from_settings(settings)
    with connect(database_url) as conn:
        run = run_repo.create_run(conn, date(2026, 3, 2), [], 0)
        conn.commit()
    chunk = Chunk(run.run_id, "agreement", "t.agreements", 0, 0, 3)

    def row(offset: int, terms: str) -> tuple[Any, ...]:
        return (
            run.run_id,
            chunk.topic,
            0,
            offset,
            f"AGR-{offset}",
            "APP-1",
            "ICBC",
            terms,
            "0" * 64,
            datetime(2026, 3, 2, tzinfo=UTC),
            "COUNTER",
        )

    batch = StagedBatch(chunk, agreements=[row(0, "2026.1"), row(1, "2026\x00"), row(2, "2026.1")])
    stage = StageBatch(database_url, vault)
    stage.setup()
    try:
        (summary,) = list(stage.process(batch))
    finally:
        stage.teardown()
    assert dict(((name, n) for _, name, n in summary.counts)) == {
        "applications": 0,
        "agreements": 2,
        "dead_letters": 1,
    }
    with connect(database_url) as conn:
        kept = conn.execute("SELECT source_offset FROM staged_agreements ORDER BY 1").fetchall()
        (dead,) = conn.execute(
            "SELECT source_offset, stage, reason, detail FROM staged_dead_letters"
        ).fetchall()
    assert [o for (o,) in kept] == [0, 2]
    offset, stage_name, reason, detail = dead
    assert (offset, stage_name, reason) == (1, "stage", "UNPROCESSABLE_RECORD")
    assert "terms_version" in detail and "\x00" not in detail and "2026" not in detail


def test_a_night_staged_under_an_earlier_contract_is_staged_again(
    settings: Settings, database_url: str, tmp_path: Path
) -> None:
    """A night that crashed after staging, under a contract that let poison records through, would fail its
    final transaction on every resume; resumed now, it is staged again under the current contract."""
    generated = make_generated(tmp_path / "data", 80, seed=13)
    load_reference_file(settings, database_url, generated)
    publish_night(settings, generated, 1)
    poisons = [p for p in poison_cases(generated) if p.case.startswith("YEAR_9999")]
    _produce(settings, poisons)
    env = {**settings_env(settings), "ISSUANCE_CRASH_AT": "staged"}
    day = generated.business_date(1)
    crashed = subprocess.run(
        [str(Path(sys.executable).parent / "issuance"), "batch", "run", "--business-date", day],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert crashed.returncode != 0
    with connect(database_url) as conn:  # what an earlier contract staged: not these rows, no revision
        conn.execute("UPDATE runs SET counters = counters - %s", (nightly.STAGED_UNDER,))
        for table in ("staged_applications", "staged_agreements", "staged_dead_letters"):
            conn.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(table)))

    result = nightly.run(["--business-date", day], settings=settings)
    assert result.resumed and result.balanced
    assert mismatches(states(database_url), expected_after(generated.expected(), day)) == []
    assert result.reconciliation["dead_letters"]["applications.SCHEMA_VIOLATION"] >= len(poisons)


class _BranchesThatFail(dict[str, Any]):
    """A catalog's branches whose lookup fails for one code: a stand-in for a bug in a rule."""

    def get(self, key: str, default: Any = None) -> Any:
        if key == "BR-BOOM":
            raise RuntimeError("a rule failed")
        return super().get(key, default)


def test_a_record_the_rules_cannot_judge_is_set_aside_at_verification(
    settings: Settings, database_url: str
) -> None:
    reference = factories.reference()
    catalog = replace(reference, branches=_BranchesThatFail(reference.branches))
    chunk = Chunk(1, "application", "t.applications", 0, 0, 2)
    good, bad = factories.application(), factories.application(application_id="APP-2", branch_code="BR-BOOM")
    verify = VerifyBatch(database_url, Vault.from_settings(settings), catalog)
    verify.setup()
    try:
        (staged,) = list(verify.process(DecodedBatch(chunk, applications=[(0, good), (1, bad)])))
    finally:
        verify.teardown()
    assert [row[3] for row in staged.applications] == [0]
    ((_, _, _, offset, stage, reason, detail, _, branch, _headers),) = staged.dead_letters
    assert (offset, stage, reason, branch) == (1, "verify", "UNPROCESSABLE_RECORD", "BR-BOOM")
    assert "RuntimeError" in detail and factories.ADULT_NAME not in detail
