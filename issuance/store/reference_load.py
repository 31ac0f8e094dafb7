"""Loading reference data into PostgreSQL: bulk, idempotent, and without touching rows that did not change.

Each table is COPYed into a temporary table and merged with one INSERT ... ON CONFLICT DO UPDATE whose WHERE
clause skips identical rows, so loading the same file twice writes nothing (no updated_at churn). Persons are
stored encrypted; whether one changed is decided by a keyed fingerprint of its ID number and name, not by
decrypting the stored values.

A load never undoes what this system wrote itself: a card whose savings function was switched on at our
request (its account active or frozen in `bank_accounts`, or a completed FINANCIAL_ACTIVATION of it) keeps
`financial_status = ACTIVE` whatever the file says (an export older than the activation, or the same file
loaded again), so that it is never activated a second time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from itertools import islice
from typing import Any, LiteralString

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from issuance.crypto import Vault
from issuance.domain.lifecycle import ApplicationState, FinancialStatus
from issuance.domain.model import ApplicationType, Person, ReferenceData, RegistryFinancialStatus
from issuance.store.audit import record_action

# (stage, done, total): called while persons are encrypted and copied.
Progress = Callable[[str, int, int], None]

CHUNK = 10_000


@dataclass(frozen=True, slots=True)
class TableCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass(frozen=True, slots=True)
class LoadReport:
    issuing_areas: TableCounts
    banks: TableCounts
    branches: TableCounts
    persons: TableCounts
    person_cards: TableCounts
    vendors: TableCounts = TableCounts()  # a document without vendors leaves the stored ones as they are

    def as_dict(self) -> dict[str, dict[str, int]]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class _Table:
    name: str
    keys: tuple[str, ...]
    columns: tuple[str, ...]  # every column written, keys first
    types: tuple[str, ...]  # PostgreSQL type of each column, for binary COPY
    compare: tuple[str, ...]  # a row changed when one of these differs
    # Run on the loaded rows (the temporary table, as {temp}) before the merge: what this system wrote itself
    # and the file may not undo.
    keep_own: LiteralString | None = None


AREAS = _Table(
    "issuing_areas",
    ("area_code",),
    ("area_code", "name", "approved", "approval_ref"),
    ("text", "text", "bool", "text"),
    ("name", "approved", "approval_ref"),
)
BANKS = _Table(
    "banks",
    ("bank_code",),
    ("bank_code", "name", "bin", "terms_version", "area_codes"),
    ("text", "text", "text", "text", "text[]"),
    ("name", "bin", "terms_version", "area_codes"),
)
BRANCHES = _Table(
    "branches",
    ("branch_code",),
    ("branch_code", "bank_code", "area_code", "name"),
    ("text", "text", "text", "text"),
    ("bank_code", "area_code", "name"),
)
VENDORS = _Table(
    "vendors",
    ("vendor_code",),
    ("vendor_code", "name", "area_codes"),
    ("text", "text", "text[]"),
    ("name", "area_codes"),
)
PERSONS = _Table(
    "persons",
    ("person_key",),
    ("person_key", "id_number_enc", "name_enc", "insured", "fingerprint"),
    ("bytea", "bytea", "bytea", "bool", "bytea"),
    ("insured", "fingerprint"),
)
CARDS = _Table(
    "person_cards",
    ("card_number",),
    ("card_number", "person_key", "bank_code", "status", "financial_status"),
    ("text", "bytea", "text", "text", "text"),
    ("person_key", "bank_code", "status", "financial_status"),
    # A savings function this system activated stays active, whatever an older registry export says: a
    # reload must not make the card look activatable a second time.
    keep_own="UPDATE {temp} AS n SET financial_status = {active} WHERE n.financial_status <> {active}"
    " AND (EXISTS (SELECT 1 FROM bank_accounts b WHERE b.card_number = n.card_number"
    "  AND b.status = ANY({activated}))"
    " OR EXISTS (SELECT 1 FROM applications a WHERE a.card_number = n.card_number"
    "  AND a.application_type = {activation} AND a.state = {completed}))",
)


# The lifecycle's names `keep_own` statements are given.
_KEEP_OWN_NAMES = {
    "active": sql.Literal(RegistryFinancialStatus.ACTIVE.value),
    "activated": sql.Literal([FinancialStatus.ACTIVE.value, FinancialStatus.FROZEN.value]),
    "activation": sql.Literal(ApplicationType.FINANCIAL_ACTIVATION.value),
    "completed": sql.Literal(ApplicationState.COMPLETED.value),
}


def load_reference(
    conn: psycopg.Connection[TupleRow],
    vault: Vault,
    reference: ReferenceData,
    *,
    actor: str,
    source: str,
    progress: Progress | None = None,
) -> LoadReport:
    """Upsert every table of `reference` in one transaction and record it in the audit log."""
    with conn.transaction():
        areas = _upsert(
            conn,
            AREAS,
            ((a.area_code, a.name, a.approved, a.approval_ref) for a in reference.issuing_areas.values()),
        )
        banks = _upsert(
            conn,
            BANKS,
            (
                (b.bank_code, b.name, b.bin, b.terms_version, sorted(b.area_codes))
                for b in reference.banks.values()
            ),
        )
        branches = _upsert(
            conn,
            BRANCHES,
            ((b.branch_code, b.bank_code, b.area_code, b.name) for b in reference.branches.values()),
        )
        keys: dict[str, bytes] = {}
        persons = _upsert(conn, PERSONS, _person_rows(vault, reference.persons, keys, progress))
        cards = _upsert(
            conn,
            CARDS,
            (
                (c.card_number, keys[p.id_number], c.bank_code, c.status.value, c.financial_status.value)
                for p in reference.persons.values()
                for c in p.cards
            ),
        )
        vendors = _upsert(
            conn,
            VENDORS,
            ((v.vendor_code, v.name, sorted(v.area_codes)) for v in reference.vendors.values()),
        )
        report = LoadReport(areas, banks, branches, persons, cards, vendors)
        record_action(
            conn,
            actor=actor,
            action="reference.load",
            entity="reference_data",
            entity_id=source,
            detail=report.as_dict(),
        )
    return report


def _chunks(items: Iterable[Person], size: int) -> Iterator[list[Person]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def _person_rows(
    vault: Vault, persons: dict[str, Person], keys: dict[str, bytes], progress: Progress | None
) -> Iterator[Sequence[Any]]:
    """Encrypted person rows, a chunk at a time (one data key per chunk and column)."""
    done = 0
    total = len(persons)
    if progress:
        progress("persons", 0, total)
    for chunk in _chunks(persons.values(), CHUNK):
        ids = vault.encrypt_many(p.id_number for p in chunk)
        names = vault.encrypt_many(p.name for p in chunk)
        for person, id_enc, name_enc in zip(chunk, ids, names, strict=True):
            key = vault.blind_index(person.id_number)
            keys[person.id_number] = key
            yield key, id_enc, name_enc, person.insured, vault.digest(person.id_number, person.name)
        done += len(chunk)
        if progress:
            progress("persons", done, total)


def _upsert(conn: psycopg.Connection[TupleRow], table: _Table, rows: Iterable[Sequence[Any]]) -> TableCounts:
    """COPY rows into a temporary table, then merge them, writing only rows that are new or changed.

    Unchanged rows are filtered out before the INSERT: ON CONFLICT DO UPDATE would lock (and so rewrite)
    every conflicting row even when its WHERE clause is false.
    """
    target = sql.Identifier(table.name)
    temp = sql.Identifier(f"load_{table.name}")
    columns = sql.SQL(", ").join(map(sql.Identifier, table.columns))
    conn.execute(
        sql.SQL("CREATE TEMPORARY TABLE {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DROP").format(temp, target)
    )
    total = 0
    with conn.cursor() as cur:
        copy_sql = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(temp, columns)
        with cur.copy(copy_sql) as copy:
            copy.set_types(list(table.types))
            for row in rows:
                copy.write_row(row)
                total += 1
    if table.keep_own is not None:
        conn.execute(sql.SQL(table.keep_own).format(temp=temp, **_KEEP_OWN_NAMES))
    # Temporary tables are never auto-analyzed: without statistics the merge would not use a hash join.
    conn.execute(sql.SQL("ANALYZE {}").format(temp))
    updates = [c for c in table.columns if c not in table.keys]
    merge = sql.SQL(
        """
        WITH merged AS (
            INSERT INTO {target} AS t ({columns})
            SELECT {new_columns} FROM {temp} AS n LEFT JOIN {target} AS o ON {join}
            WHERE o.{first_key} IS NULL OR ({old_values}) IS DISTINCT FROM ({new_values})
            ON CONFLICT ({keys}) DO UPDATE SET {sets}, updated_at = now()
            WHERE ({old}) IS DISTINCT FROM ({new})
            RETURNING (t.xmax = 0) AS inserted
        )
        SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM merged
        """
    ).format(
        target=target,
        temp=temp,
        columns=columns,
        keys=sql.SQL(", ").join(map(sql.Identifier, table.keys)),
        sets=sql.SQL(", ").join(
            sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(c), sql.Identifier(c)) for c in updates
        ),
        new_columns=sql.SQL(", ").join(sql.SQL("n.{}").format(sql.Identifier(c)) for c in table.columns),
        join=sql.SQL(" AND ").join(sql.SQL("o.{k} = n.{k}").format(k=sql.Identifier(k)) for k in table.keys),
        first_key=sql.Identifier(table.keys[0]),
        old_values=sql.SQL(", ").join(sql.SQL("o.{}").format(sql.Identifier(c)) for c in table.compare),
        new_values=sql.SQL(", ").join(sql.SQL("n.{}").format(sql.Identifier(c)) for c in table.compare),
        old=sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c)) for c in table.compare),
        new=sql.SQL(", ").join(sql.SQL("EXCLUDED.{}").format(sql.Identifier(c)) for c in table.compare),
    )
    counts = conn.execute(merge).fetchone()
    inserted, updated = (int(counts[0]), int(counts[1])) if counts else (0, 0)
    return TableCounts(inserted, updated, total - inserted - updated)
