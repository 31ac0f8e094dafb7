"""The audit chain's verifier on rows built here: which rows it names altered, removed or inserted."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from issuance.errors import InputError
from issuance.store.audit_chain import GENESIS, ChainRow, Head, check, row_hash

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def chain(n: int, first_prev: bytes = GENESIS, start: int = 1) -> list[ChainRow]:
    rows: list[ChainRow] = []
    prev = first_prev
    for seq in range(start, start + n):
        row = ChainRow(seq, prev, b"", T0 + timedelta(seconds=seq), "ops-1", "x.do", "thing", str(seq), "{}")
        row = dataclasses.replace(row, row_hash=row_hash(seq, prev, row))
        rows.append(row)
        prev = row.row_hash
    return rows


def head(rows: list[ChainRow]) -> Head:
    return Head(rows[-1].seq, rows[-1].row_hash)


def found(rows: list[ChainRow], recorded: Head | None, expect: Head | None = None) -> list[tuple[int, str]]:
    return [(p.seq, p.kind) for p in check(rows, recorded_head=recorded, expect=expect).problems]


def test_an_intact_chain_verifies_and_names_its_head() -> None:
    rows = chain(5)
    verdict = check(rows, recorded_head=head(rows))
    assert verdict.ok and verdict.rows == 5
    assert verdict.head == head(rows)
    assert Head.parse(str(verdict.head)) == verdict.head


def test_a_changed_field_is_an_altered_row() -> None:
    rows = chain(5)
    rows[2] = dataclasses.replace(rows[2], detail='{"count": 2}')
    assert found(rows, head(rows)) == [(3, "altered")]


def test_a_row_rewritten_with_a_fresh_hash_breaks_the_next_link() -> None:
    rows = chain(5)
    forged = dataclasses.replace(rows[2], actor="someone-else")
    rows[2] = dataclasses.replace(forged, row_hash=row_hash(3, forged.prev_hash, forged))
    assert found(rows, head(rows)) == [(3, "altered")]


def test_a_deleted_row_is_removed() -> None:
    rows = chain(5)
    recorded = head(rows)
    del rows[1]
    assert found(rows, recorded) == [(2, "removed")]


def test_a_deleted_row_whose_successors_were_renumbered_is_removed() -> None:
    rows = chain(6)
    recorded = head(rows)
    del rows[2]
    rows = [dataclasses.replace(r, seq=r.seq - 1) if r.seq > 3 else r for r in rows]
    assert found(rows, Head(5, recorded.hash)) == [(3, "removed")]


def test_an_inserted_row_is_found_even_with_a_correct_hash() -> None:
    rows = chain(5)
    forged = dataclasses.replace(rows[2], actor="ghost", entity_id="forged")
    forged = dataclasses.replace(forged, row_hash=row_hash(3, rows[1].row_hash, forged))
    shifted = [dataclasses.replace(r, seq=r.seq + 1) for r in rows[2:]]
    tampered = [*rows[:2], forged, *shifted]
    assert found(tampered, Head(6, rows[-1].row_hash)) == [(3, "inserted")]


def test_a_second_row_with_a_taken_number_is_inserted() -> None:
    rows = chain(4)
    duplicate = dataclasses.replace(rows[1], entity_id="again")
    assert found([*rows[:2], duplicate, *rows[2:]], head(rows)) == [(2, "inserted")]


def test_removed_newest_rows_are_found_from_the_chain_head_or_the_expected_head() -> None:
    rows = chain(5)
    kept = head(rows)
    assert found(rows[:3], kept) == [(4, "removed"), (5, "removed")]
    # the database's head rewritten too: only the head kept elsewhere shows it
    assert found(rows[:3], head(rows[:3])) == []
    assert found(rows[:3], head(rows[:3]), expect=kept) == [(4, "removed"), (5, "removed")]


def test_the_expected_head_must_match_the_row_it_names() -> None:
    rows = chain(5)
    assert found(rows, head(rows), expect=Head(3, rows[2].row_hash)) == []
    assert found(rows, head(rows), expect=Head(3, rows[3].row_hash)) == [(3, "altered")]


def test_a_bad_expected_head_is_bad_input() -> None:
    with pytest.raises(InputError):
        Head.parse("12:abc")
    with pytest.raises(InputError):
        Head.parse("x:" + "0" * 64)
