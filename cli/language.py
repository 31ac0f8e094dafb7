"""The language of what a command prints for the operator: one `Lang` per invocation, chosen by `--lang` or
ISSUANCE_LANGUAGE (Simplified Chinese by default), and the helpers every command prints through.

JSON output never goes through here: its keys and codes are the same in every language, for the machines
that read them. The English text is the message id (gettext); its Chinese is in
`issuance/locale/zh_CN/LC_MESSAGES/cli.po`. State and reason labels come from the `reasons` domain, shared
with the dashboard and the branches, so that a state reads the same everywhere."""

from __future__ import annotations

import unicodedata
from datetime import date, datetime

from issuance import i18n, reason_text
from issuance.domain.lifecycle import ApplicationState, CardStatus, FinancialStatus
from issuance.i18n import Lang

DOMAIN = "cli"


class _Chosen:
    """The invocation's language (the root callback sets it before any command runs)."""

    lang: Lang | None = None


def use(code: str | None) -> Lang:
    """Print in this language from now on ("zh_CN", "en" or a spelling of them; None: the default).

    ConfigurationError (exit 2) for a language this system does not have."""
    _Chosen.lang = i18n.lang(i18n.normalize(code) if code else None)
    return _Chosen.lang


def current() -> Lang:
    """The language the invocation prints in."""
    return _Chosen.lang if _Chosen.lang is not None else use(None)


def _(msgid: str) -> str:
    """The operator's text for an English message, in the invocation's language."""
    return current().gettext(msgid, DOMAIN)


def number(n: int | float) -> str:
    """A count with thousands separators."""
    return current().number(n)


def moment(at: datetime | str) -> str:
    """A point in time in Asia/Shanghai (an ISO string as the JSON documents hold it, or a datetime)."""
    return current().datetime(datetime.fromisoformat(at) if isinstance(at, str) else at)


def day(d: date | str) -> str:
    """A calendar day (a business date)."""
    return current().date(date.fromisoformat(d) if isinstance(d, str) else d)


def state(code: str | None, side: str = "application") -> str:
    """The label of an application state, or of a card's status on its `card` or `financial` side ("-" for
    none; an unknown code as it is)."""
    if not code:
        return "-"
    try:
        if side == "card":
            return reason_text.state_label(CardStatus(code), current())
        if side == "financial":
            return reason_text.state_label(FinancialStatus(code), current())
        return reason_text.state_label(ApplicationState(code), current())
    except ValueError:
        return code


def reason(code: str) -> str:
    """What a rejection or dead-letter reason means and what to do, as a counter clerk reads it (nothing for
    a code without a message, such as a failure's free-text cause)."""
    try:
        return reason_text.reason_message(code, current())
    except ValueError:
        return ""


def columns(text: str) -> int:
    """How many terminal columns `text` takes: a Chinese character takes two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def left(text: str, width: int) -> str:
    """`text` padded on the right to `width` terminal columns (never cut)."""
    return text + " " * max(0, width - columns(text))


def right(text: str, width: int) -> str:
    """`text` padded on the left to `width` terminal columns (never cut)."""
    return " " * max(0, width - columns(text)) + text
