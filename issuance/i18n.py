"""Chinese first: the language a person reads, its translations and its number and date formats.

Every user works in Chinese (bureau staff, operators, branch counters), so Simplified Chinese is the default
and English stays available. The language is always chosen explicitly (ISSUANCE_LANGUAGE, a `--lang` option,
the dashboard user's choice or the browser's Accept-Language), never guessed from the data.

Translations are gettext catalogs, one domain per audience (`reasons`, `dashboard`, `cli`), committed as
`.po` files under `issuance/locale/<lang>/LC_MESSAGES/`. The msgid is the English text, so the `en` catalogs
may stay empty. There is no build step: the first `lang(code)` of a process reads that language's `.po` files
with Babel and compiles them in memory; the result is cached for the life of the process.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date as Date
from datetime import datetime as DateTime
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations

from issuance.errors import ConfigurationError

SUPPORTED: Final = ("zh_CN", "en")
DEFAULT: Final = "zh_CN"
# One catalog per audience, so that the parts translating them never edit the same file.
DOMAINS: Final = ("reasons", "dashboard", "cli")
LOCALE_DIR: Final = Path(__file__).parent / "locale"
# Business time: every date and time a person reads is the bureau's, whatever the server's zone.
BUSINESS_ZONE: Final = ZoneInfo("Asia/Shanghai")

# Date and time patterns (CLDR syntax) per language: Chinese as written on Chinese forms, English as ISO dates
# (no month names to misread across locales).
_DATETIME_PATTERNS: Final = {"zh_CN": "y年M月d日 HH:mm", "en": "yyyy-MM-dd HH:mm"}
_DATE_PATTERNS: Final = {"zh_CN": "y年M月d日", "en": "yyyy-MM-dd"}

_TAG_SEPARATORS = re.compile(r"[-_]")


def N_(msgid: str) -> str:
    """Mark a string for translation where it is defined and translate it later (a label in a table, a message
    chosen at run time): the extractors find it, the text stays English until a `Lang` translates it."""
    return msgid


def _supported(tag: str) -> str | None:
    """The supported language a BCP 47 / POSIX tag means, or None: any Simplified Chinese (zh, zh-CN,
    zh-Hans, zh_Hans_CN, zh-SG) is zh_CN, any English is en. Traditional Chinese (zh-TW, zh-HK, zh-Hant) is
    not offered: it is not what mainland bureau staff read."""
    base = tag.strip().split(".")[0].split("@")[0]  # zh_CN.UTF-8, en_US@euro
    parts = [part.lower() for part in _TAG_SEPARATORS.split(base) if part]
    if not parts:
        return None
    if parts[0] == "en":
        return "en"
    if parts[0] == "zh":
        rest = set(parts[1:])
        if rest & {"hant", "tw", "hk", "mo"}:
            return None
        return "zh_CN"
    return None


def normalize(tag: str | None) -> str:
    """The supported code an explicitly configured language names ("zh", "zh-CN", "zh_Hans_CN" -> "zh_CN";
    "en-US" -> "en"); None is the default. A language that is not supported is a configuration error: an
    explicit setting is never silently replaced by another language."""
    if tag is None:
        return DEFAULT
    code = _supported(tag)
    if code is None:
        raise ConfigurationError(
            f"unsupported language {tag!r}: choose one of {', '.join(SUPPORTED)} (zh_CN is the default)"
        )
    return code


def from_accept_language(header: str | None) -> str:
    """The best supported language of a browser's Accept-Language header (by its q values, in order on a
    tie), else the default. A malformed entry is skipped, never an error: the header is the browser's."""
    if not header:
        return DEFAULT
    ranked: list[tuple[float, int, str]] = []
    for position, entry in enumerate(header.split(",")):
        tag, _, params = entry.partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        code = _supported(tag) if tag.strip() != "*" else None
        if code is not None and quality > 0:
            ranked.append((-quality, position, code))
    return min(ranked)[2] if ranked else DEFAULT


@dataclass(frozen=True)
class Lang:
    """One language's translations (every domain) and its number and date formats."""

    code: str
    catalogs: Mapping[str, Translations] = field(repr=False, compare=False)

    def _catalog(self, domain: str) -> Translations:
        try:
            return self.catalogs[domain]
        except KeyError:
            raise ValueError(f"unknown translation domain {domain!r}: one of {', '.join(DOMAINS)}") from None

    def gettext(self, msgid: str, domain: str = "cli") -> str:
        """The translation of an English text in a domain; the text itself where the catalog has none."""
        return self._catalog(domain).gettext(msgid)

    def ngettext(self, singular: str, plural: str, n: int, domain: str = "cli") -> str:
        """The translation of a text whose form depends on a count (Chinese has one form, English two)."""
        return self._catalog(domain).ngettext(singular, plural, n)

    def number(self, n: int | float) -> str:
        """A number with thousands separators (1,234,567): both languages group by three."""
        return format_decimal(n, locale=self.code)

    def datetime(self, at: DateTime) -> str:
        """A moment in business time (Asia/Shanghai): 2026年11月30日 14:05 / 2026-11-30 14:05. A naive
        datetime is refused: guessing its zone would shift it by hours without anyone noticing."""
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError("a datetime shown to a person must carry its time zone")
        return format_datetime(at, _DATETIME_PATTERNS[self.code], tzinfo=BUSINESS_ZONE, locale=self.code)

    def date(self, d: Date) -> str:
        """A calendar day: 2026年11月30日 / 2026-11-30."""
        return format_date(d, _DATE_PATTERNS[self.code], locale=self.code)


def catalog_path(code: str, domain: str) -> Path:
    """Where a language's catalog of a domain is kept (in the source tree and in the installed package)."""
    return LOCALE_DIR / code / "LC_MESSAGES" / f"{domain}.po"


def _compile(code: str, domain: str) -> Translations:
    """Read one committed .po file and compile it in memory (fuzzy entries are not used, as msgfmt does)."""
    with catalog_path(code, domain).open("rb") as po:
        catalog = read_po(po, locale=code, domain=domain)
    compiled = BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return Translations(compiled, domain=domain)


@cache
def _load(code: str) -> Lang:
    return Lang(code, {domain: _compile(code, domain) for domain in DOMAINS})


def lang(code: str | None = None) -> Lang:
    """The language for a code (any tag `normalize` accepts; None: the default), read once per process."""
    return _load(normalize(code))
