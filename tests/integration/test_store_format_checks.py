"""The schema's format checks accept exactly the documented formats."""

from __future__ import annotations

import hashlib

import pytest
from psycopg import sql

from issuance.store.db import connect

SHA = hashlib.sha256(b"agreement").hexdigest()
CIC = "0123456789ABCDEF0123456789ABCDEF"

CASES = [
    ("agreements", "document_sha256", [SHA], [SHA.upper(), SHA[:-1], SHA + "0", SHA[:-1] + "g", SHA + "\n"]),
    (
        "cards",
        "card_number",
        ["A1B2C3D4E", "123456789"],
        ["A1B2C3D4", "A1B2C3D4E5", "a1b2c3d4e", "A1B2C3D4-"],
    ),
    ("cards", "card_identification_code", [CIC], [CIC.lower(), CIC[:-1], CIC + "0", CIC[:-1] + "G"]),
    ("issuing_areas", "area_code", ["110101"], ["11010", "1101011", "11010a", ""]),
    ("banks", "bin", ["622848", "62284812"], ["62284", "622848123", "62284a", ""]),
]


@pytest.mark.parametrize(("table", "column", "good", "bad"), CASES, ids=[f"{c[0]}.{c[1]}" for c in CASES])
def test_format_check(database_url: str, table: str, column: str, good: list[str], bad: list[str]) -> None:
    with connect(database_url) as conn:
        row = conn.execute(
            "SELECT pg_get_expr(conbin, conrelid) FROM pg_constraint"
            " WHERE conrelid = %s::regclass AND conname = %s",
            (table, f"{table}_{column}_check"),
        ).fetchone()
        assert row is not None, f"{table}.{column} has no format check"
        check = sql.SQL("SELECT {} FROM (VALUES (%s::text)) AS v({})").format(
            sql.SQL(row[0]), sql.Identifier(column)
        )
        for value in good:
            assert conn.execute(check, (value,)).fetchone() == (True,), value
        for value in bad:
            assert conn.execute(check, (value,)).fetchone() == (False,), value
