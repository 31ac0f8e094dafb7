"""The language of each request and the templates that render it.

A request's language is the reader's own choice (the language switch in the page header stores it in a
cookie), else the best one the browser's Accept-Language names, else ISSUANCE_LANGUAGE. Never the data's.

One Jinja2 environment per language, each with the `dashboard` catalog of its language installed once at
start. `Environment.install_gettext_translations` sets environment globals, so installing the request's
language on one shared environment would let two requests served at once in different languages translate
each other's pages; binding `gettext` in each render's context instead would need Jinja's private wrapper for
new-style gettext. Two environments built at start and never changed after are safe under any concurrency;
templates are compiled once per language (a few kilobytes each).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

import jinja2
from starlette.templating import Jinja2Templates

from dashboard.labels import AGES, FUNNEL_STEPS, Labels
from issuance import i18n
from issuance.domain.lifecycle import ApplicationState
from issuance.errors import ConfigurationError
from issuance.i18n import Lang

LANG_COOKIE = "issuance_dashboard_lang"
LANG_COOKIE_MAX_AGE_S = 365 * 24 * 3600  # a preference, not a credential: kept across browser sessions
DOMAIN = "dashboard"


def request_language(cookies: Mapping[str, str], accept_language: str | None, configured: str) -> str:
    """The language to answer in: the reader's stored choice, else the browser's, else the configured one."""
    chosen = cookies.get(LANG_COOKIE)
    if chosen in i18n.SUPPORTED:
        return chosen
    if accept_language and any(_names_supported(tag) for tag in accept_language.split(",")):
        return i18n.from_accept_language(accept_language)
    return configured


def _names_supported(entry: str) -> bool:
    """True when one Accept-Language entry names a supported language."""
    try:
        i18n.normalize(entry.partition(";")[0].strip())
    except ConfigurationError:  # a language this system does not offer, or the browser's noise
        return False
    return True


def html_lang(code: str) -> str:
    """The BCP 47 tag of a language for <html lang> (zh_CN -> zh-CN)."""
    return code.replace("_", "-")


def _when(lang: Lang) -> Any:
    def when(value: datetime | str | None) -> str:
        """A moment in business time; ISO text (a step's time in the JSON) is read first."""
        if value is None:
            return ""
        at = datetime.fromisoformat(value) if isinstance(value, str) else value
        return lang.datetime(at)

    return when


def _day(lang: Lang) -> Any:
    def day(value: date | str | None) -> str:
        if value is None or value == "":
            return ""
        return lang.date(date.fromisoformat(value) if isinstance(value, str) else value)

    return day


def templates(directory: Path, timezone: str) -> dict[str, Jinja2Templates]:
    """The templates of every supported language, its catalog and formats installed."""
    result = {}
    for code in i18n.SUPPORTED:
        lang = i18n.lang(code)
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(directory),
            autoescape=True,
            extensions=["jinja2.ext.i18n"],
        )
        env.install_gettext_callables(  # type: ignore[attr-defined]
            lambda msgid, lang=lang: lang.gettext(msgid, DOMAIN),
            lambda singular, plural, n, lang=lang: lang.ngettext(singular, plural, n, DOMAIN),
            newstyle=True,
        )
        env.globals.update(lang=lang, labels=Labels(lang), timezone=timezone)
        env.filters["num"] = lambda v, lang=lang: "" if v is None else lang.number(v)
        env.filters["pct"] = lambda v: "" if v is None else f"{v * 100:.1f}%"
        env.filters["decimal"] = lambda v: "" if v is None else f"{v:.1f}"
        env.filters["when"] = _when(lang)
        env.filters["day"] = _day(lang)
        result[code] = Jinja2Templates(env=env)
    return result


def chart_labels(labels: Labels, data: Mapping[str, Any]) -> dict[str, Any]:
    """What charts.js writes on a page's charts, in the page's language: it draws from the page's data (codes
    and numbers) and names them with these."""
    text = labels.text
    result: dict[str, Any] = {
        "locale": html_lang(labels.lang.code),
        "applications": text("Applications"),
        "cards": text("Cards"),
        "steps": {key: labels.step(key) for key in FUNNEL_STEPS},
        "ages": {bucket: labels.age(bucket) for bucket in AGES},
        "states": {s.value: labels.state(s.value) for s in ApplicationState},
    }
    if "reasons" in data:
        result["reasons"] = {r["reason"]: labels.reason(r["reason"]) for r in data["reasons"]}
    if "runs" in data:
        result["runs"] = {
            str(r["run_id"]): f"#{r['run_id']} {labels.lang.date(r['business_date'])}" for r in data["runs"]
        }
    return result
