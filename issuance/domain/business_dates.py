"""Business dates: the bureau's calendar is Asia/Shanghai's, whatever the servers' clocks say.

A night processes one business date. Nights go forward: a business date earlier than the last successful
run's would expire or keep agreements by the wrong calendar, so it is refused unless an operator forces it
(and the audit log names them).
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

BUSINESS_ZONE = ZoneInfo("Asia/Shanghai")


def business_day(moment: datetime) -> date:
    """The Asia/Shanghai calendar day of an instant."""
    return moment.astimezone(BUSINESS_ZONE).date()


def behind_last_run(requested: date, last_succeeded: date | None) -> bool:
    """True when the requested business date is earlier than the last successful run's (the same is fine:
    a night may be run again)."""
    return last_succeeded is not None and requested < last_succeeded
