"""`issuance reference load`: bulk upsert that writes only what changed, counts it, and audits it."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from cli.main import app
from issuance.crypto import Vault
from issuance.domain.model import Person, ReferenceData, RegistryCardStatus
from issuance.domain.reference import reference_to_doc
from issuance.settings import Settings
from issuance.store.db import connect
from issuance.store.reference_load import LoadReport, TableCounts, load_reference
from tests import factories as f

SECOND_ID = f.id_number(area_code=f.OTHER_AREA, sequence=456)


def registry() -> ReferenceData:
    other = Person(SECOND_ID, "李娜", insured=False, cards=(f.card(card_number="Z9Y8X7W6V"),))
    return f.reference(persons={f.ADULT_ID: f.holder(), SECOND_ID: other})


def load(conn: psycopg.Connection[tuple[object, ...]], vault: Vault, data: ReferenceData) -> LoadReport:
    return load_reference(conn, vault, data, actor="test", source="registry.json")


def stamps(conn: psycopg.Connection[tuple[object, ...]]) -> list[tuple[object, ...]]:
    return conn.execute(
        "SELECT 'area', area_code::bytea, updated_at FROM issuing_areas"
        " UNION ALL SELECT 'bank', bank_code::bytea, updated_at FROM banks"
        " UNION ALL SELECT 'branch', branch_code::bytea, updated_at FROM branches"
        " UNION ALL SELECT 'person', person_key, updated_at FROM persons"
        " UNION ALL SELECT 'card', card_number::bytea, updated_at FROM person_cards ORDER BY 1, 2"
    ).fetchall()


def test_first_load_inserts_second_load_changes_nothing(database_url: str, settings: Settings) -> None:
    vault = Vault.from_settings(settings)
    with connect(database_url) as conn:
        first = load(conn, vault, registry())
        conn.commit()
        before = stamps(conn)
        second = load(conn, vault, registry())
        conn.commit()
        assert stamps(conn) == before
        audit = conn.execute("SELECT actor, action, entity_id, detail FROM audit_log ORDER BY id").fetchall()
    assert first == LoadReport(
        issuing_areas=TableCounts(inserted=3),
        banks=TableCounts(inserted=2),
        branches=TableCounts(inserted=2),
        persons=TableCounts(inserted=2),
        person_cards=TableCounts(inserted=2),
    )
    assert second == LoadReport(
        issuing_areas=TableCounts(unchanged=3),
        banks=TableCounts(unchanged=2),
        branches=TableCounts(unchanged=2),
        persons=TableCounts(unchanged=2),
        person_cards=TableCounts(unchanged=2),
    )
    assert [row[:3] for row in audit] == [("test", "reference.load", "registry.json")] * 2
    assert audit[1][3]["persons"] == {"inserted": 0, "updated": 0, "unchanged": 2}


def test_changed_rows_are_updated_and_counted(database_url: str, settings: Settings) -> None:
    vault = Vault.from_settings(settings)
    data = registry()
    changed = replace(
        data,
        banks={**data.banks, f.BANK: f.bank(terms_version="2027.1", area_codes=frozenset({f.AREA}))},
        persons={
            f.ADULT_ID: f.holder(name="张薇", cards=(f.card(status=RegistryCardStatus.LOST),)),
            SECOND_ID: replace(data.persons[SECOND_ID], insured=True),
        },
    )
    with connect(database_url) as conn:
        load(conn, vault, data)
        report = load(conn, vault, changed)
        name_enc = conn.execute(
            "SELECT name_enc FROM persons WHERE person_key = %s", (vault.blind_index(f.ADULT_ID),)
        )
        row = name_enc.fetchone()
    assert report.banks == TableCounts(updated=1, unchanged=1)
    assert report.persons == TableCounts(updated=2)
    assert report.person_cards == TableCounts(updated=1, unchanged=1)
    assert row is not None and vault.decrypt(row[0]) == "张薇"


def cli(settings: Settings, *args: str) -> tuple[int, str, str]:
    env = {
        "ISSUANCE_DATABASE_URL": settings.database_url.get_secret_value() if settings.database_url else "",
        "ISSUANCE_KAFKA_BOOTSTRAP": settings.kafka_bootstrap or "",
        "ISSUANCE_STATE_DIR": str(settings.state_dir),
        "ISSUANCE_DATA_KEYS": settings.data_keys.get_secret_value() if settings.data_keys else "",
        "ISSUANCE_BLIND_INDEX_KEY": settings.blind_index_key.get_secret_value()
        if settings.blind_index_key
        else "",
    }
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def test_cli_loads_a_file_and_reports_json(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "reference.json"
    path.write_text(json.dumps(reference_to_doc(registry()), ensure_ascii=False))
    code, out, err = cli(settings, "reference", "load", "--operator", "ops-1", str(path), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["persons"] == {"inserted": 2, "updated": 0, "unchanged": 0}
    code, out, _ = cli(settings, "reference", "load", "--operator", "ops-1", str(path), "--json")
    assert code == 0 and json.loads(out)["person_cards"] == {"inserted": 0, "updated": 0, "unchanged": 2}
    assert f.ADULT_ID not in out + err and f.ADULT_NAME not in out + err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "invalid JSON at line 1 column 2"),
        (
            '{"issuing_areas": [], "banks": [], "branches": [], "persons": [{"id_number": "12"}]}',
            "persons[0].id_number",
        ),
    ],
)
def test_cli_bad_input_exits_2_naming_the_place(
    tmp_path: Path, settings: Settings, content: str, message: str
) -> None:
    path = tmp_path / "reference.json"
    path.write_text(content)
    code, _, err = cli(settings, "reference", "load", "--operator", "ops-1", str(path))
    assert code == 2
    assert message in " ".join(err.split())


def test_cli_missing_file_exits_2(tmp_path: Path, settings: Settings) -> None:
    code, _, err = cli(settings, "reference", "load", "--operator", "ops-1", str(tmp_path / "absent.json"))
    assert code == 2 and "absent.json" in err


def test_cli_records_the_operator_and_requires_one(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "reference.json"
    path.write_text(json.dumps(reference_to_doc(registry()), ensure_ascii=False))
    for missing_or_bad in ([], ["--operator", ""], ["--operator", "two words"], ["--operator", "service:x"]):
        code, _, err = cli(settings, "reference", "load", *missing_or_bad, str(path))
        assert code == 2 and "--operator" in err
    code, _, err = cli(settings, "reference", "load", "--operator", "li.wei", str(path))
    assert code == 0, err
    assert settings.database_url is not None
    with psycopg.connect(settings.database_url.get_secret_value()) as conn:
        audit = conn.execute("SELECT actor, action FROM audit_log ORDER BY seq").fetchall()
    assert audit == [("li.wei", "reference.load")]
