"""Business dates: the Asia/Shanghai calendar, and nights that go forward."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

from issuance.domain.business_dates import behind_last_run, business_day


def test_the_business_day_is_shanghais_not_utcs() -> None:
    # 16:30 UTC on 1 March is 00:30 on 2 March in Shanghai: a night started then is the 2 March night.
    assert business_day(datetime(2026, 3, 1, 16, 30, tzinfo=UTC)) == date(2026, 3, 2)
    assert business_day(datetime(2026, 3, 1, 15, 59, 59, tzinfo=UTC)) == date(2026, 3, 1)
    assert business_day(datetime(2026, 3, 1, 20, 0, tzinfo=timezone(timedelta(hours=-8)))) == date(2026, 3, 2)


def test_an_earlier_date_is_behind_the_last_run() -> None:
    assert behind_last_run(date(2026, 3, 9), date(2026, 3, 10))
    assert not behind_last_run(date(2026, 3, 10), date(2026, 3, 10))  # a night may be run again
    assert not behind_last_run(date(2026, 3, 11), date(2026, 3, 10))
    assert not behind_last_run(date(2000, 1, 1), None)  # the first night
