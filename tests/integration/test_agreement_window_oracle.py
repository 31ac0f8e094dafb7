"""The agreement window's SQL twin (`decisions_repo.WINDOW_CLOSED`) and its Python rule
(`issuance.domain.agreement.window_closed`) agree on the same cases, around midnight in several offsets."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta, timezone

from issuance.domain.agreement import AGREEMENT_WINDOW_DAYS, window_closed
from issuance.store.db import connect
from issuance.store.decisions_repo import WINDOW_CLOSED

OFFSETS = [UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-8)), timezone(timedelta(hours=14))]
# Instants on both sides of Asia/Shanghai midnight (16:00 UTC) and of UTC midnight.
STARTS = [
    datetime(2026, 11, 1, hour, minute, second, tzinfo=UTC).astimezone(offset)
    for hour, minute, second in ((15, 59, 59), (16, 0, 0), (23, 59, 59), (0, 0, 0), (7, 30, 0))
    for offset in OFFSETS
]
NIGHTS = [date(2026, 11, 1) + timedelta(days=n) for n in (0, 1, 29, 30, 31, 32, 33)]
WINDOWS = [AGREEMENT_WINDOW_DAYS, 1, 7]


def test_sql_and_python_close_the_window_on_the_same_night(database_url: str) -> None:
    cases = list(itertools.product(STARTS, NIGHTS, WINDOWS))
    query = "SELECT " + WINDOW_CLOSED.format(start="%s::timestamptz", window="%s", date="%s::date")
    with connect(database_url) as conn:
        conn.execute("SET TIME ZONE 'UTC'")  # the session's zone must not matter
        sql_says = [conn.execute(query, (start, window, night)).fetchone() for start, night, window in cases]
        conn.execute("SET TIME ZONE 'America/Los_Angeles'")
        again = [conn.execute(query, (start, window, night)).fetchone() for start, night, window in cases]
    python_says = [(window_closed(start, night, window),) for start, night, window in cases]
    assert sql_says == python_says
    assert again == python_says
    assert any(row == (True,) for row in python_says) and any(row == (False,) for row in python_says)
