"""Masked forms of personal data for logs, reports and dashboards: never the whole value (PIPL, JR/T 0171).

Each function keeps the length (one star per hidden character) and, for short or odd input, shows less rather
than more, so that no input is ever shown whole.
"""

from __future__ import annotations

STAR = "*"


def _mask(value: str, head: int, tail: int) -> str:
    """Keep `head` leading and `tail` trailing characters, star the rest (at least 4 and a third of them)."""
    n = len(value)
    hidden = max(4, -(-n // 3))
    while head + tail > 0 and n - head - tail < hidden:
        if head >= tail and head > 0:
            head -= 1
        else:
            tail -= 1
    return value[:head] + STAR * (n - head - tail) + (value[n - tail :] if tail else "")


def mask_id_number(value: str) -> str:
    """An ID number as its first 3 and last 2 characters: 110***************1X."""
    return _mask(value.strip(), 3, 2)


def mask_name(value: str) -> str:
    """A name as its first character and stars: 张**; a one-character name is all stars."""
    name = value.strip()
    if len(name) <= 1:
        return STAR * len(name)
    return name[0] + STAR * (len(name) - 1)


def mask_account(value: str) -> str:
    """A bank card or account number with at most its first 6 and last 4 digits: 622848*********1234."""
    return _mask(value.strip(), 6, 4)


def mask_phone(value: str) -> str:
    """A phone number as its first 3 and last 4 digits: 138****5678."""
    return _mask(value.strip(), 3, 4)
