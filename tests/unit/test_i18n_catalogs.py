"""Every translatable text of the tree has its Chinese: the committed catalogs and the code never drift.

Babel's extractors read the tree as a translator's tool would: Python files for `_(...)`, `gettext(...)`,
`ngettext(...)` and the `N_(...)` marker (issuance/i18n.py), Jinja templates through
`jinja2.ext.babel_extract` (`{% trans %}` blocks, `_()`, `gettext()`, `ngettext()`). Each text belongs to one
domain:

- a call that names its domain (`lang.gettext("...", "dashboard")`, `domain="dashboard"`) belongs to it;
- otherwise by where it is: `dashboard/` (its Python and its templates) is `dashboard`, the reason catalogue
  (issuance/reason_text.py) is `reasons`, everything else the command line prints from (cli/, issuance/,
  pipelines/, consumers/, producers/, benchmarks/) is `cli`, the default domain of `Lang.gettext`.

The zh_CN catalog of each domain must translate every text, keep every placeholder (`{name}`, `{n:,}`,
`%(name)s`, `%s`) and hold nothing the code no longer uses; the en catalog may stay empty (the msgid is the
English text), and what it holds keeps the placeholders too.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_python
from babel.messages.pofile import read_po
from jinja2.ext import babel_extract

from issuance import i18n, reason_text

ROOT = Path(__file__).resolve().parents[2]
PYTHON_PACKAGES = ("cli", "issuance", "pipelines", "consumers", "producers", "benchmarks", "dashboard")
TEMPLATES = ROOT / "dashboard" / "templates"
KEYWORDS: dict[str, None] = {"_": None, "gettext": None, "ngettext": None, "N_": None}
# Where each call keeps its domain argument, when it names one: gettext(msgid, domain),
# ngettext(singular, plural, n, domain).
DOMAIN_ARGUMENT = {"_": 1, "gettext": 1, "N_": 1, "ngettext": 3}


@dataclass(frozen=True)
class Found:
    """One translatable text: its msgid (a pair for a plural), where it is, and its domain."""

    msgid: str | tuple[str, str]
    domain: str
    where: str


def _default_domain(path: Path) -> str:
    relative = path.relative_to(ROOT)
    if relative.parts[0] == "dashboard":
        return "dashboard"
    if relative == Path(reason_text.__file__).resolve().relative_to(ROOT):
        return reason_text.DOMAIN
    return "cli"


def _python_files() -> Iterator[Path]:
    for package in PYTHON_PACKAGES:
        yield from sorted((ROOT / package).rglob("*.py"))


def _from_python(path: Path) -> Iterator[Found]:
    with path.open("rb") as source:
        for lineno, funcname, messages, _comments in extract_python(source, KEYWORDS, [], {}):
            args = cast("tuple[str | None, ...]", messages if isinstance(messages, tuple) else (messages,))
            where = f"{path.relative_to(ROOT)}:{lineno}"
            plural = funcname == "ngettext"
            msgid: str | tuple[str, str] | None
            if plural:
                singular, plural_text = (*args, None, None)[:2]
                if isinstance(singular, str) and isinstance(plural_text, str):
                    msgid = (singular, plural_text)
                else:
                    msgid = None
            else:
                msgid = args[0] if args and isinstance(args[0], str) else None
            if msgid is None:
                continue  # translates a text marked elsewhere (N_) or chosen at run time: not a literal here
            position = DOMAIN_ARGUMENT[str(funcname)]
            named = args[position] if len(args) > position else None
            domain = named if isinstance(named, str) else _default_domain(path)
            yield Found(msgid, domain, where)


def _from_templates() -> Iterator[Found]:
    for path in sorted(TEMPLATES.rglob("*.html")):
        with path.open("rb") as source:
            for lineno, _funcname, message, _comments in babel_extract(source, tuple(KEYWORDS), [], {}):
                where = f"{path.relative_to(ROOT)}:{lineno}"
                if isinstance(message, tuple):
                    texts = [m for m in message if isinstance(m, str)]
                    if len(texts) >= 2:
                        yield Found((texts[0], texts[1]), "dashboard", where)
                    elif texts:
                        yield Found(texts[0], "dashboard", where)
                elif isinstance(message, str):
                    yield Found(message, "dashboard", where)


def _found() -> list[Found]:
    found = [f for path in _python_files() for f in _from_python(path)]
    return found + list(_from_templates())


FOUND = _found()


def _catalog(code: str, domain: str) -> Catalog:
    with i18n.catalog_path(code, domain).open("rb") as po:
        return read_po(po, locale=code, domain=domain)


def _entries(catalog: Catalog) -> list[Message]:
    return [message for message in catalog if message.id]


def _texts(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """A msgid or msgstr as a tuple: one text, or a plural's forms."""
    if value is None:
        return ("",)
    return (value,) if isinstance(value, str) else tuple(value)


def _key(msgid: str | Sequence[str] | None) -> str:
    return _texts(msgid)[0]


_PLACEHOLDERS = re.compile(
    r"\{[A-Za-z0-9_.\[\]]*(?:![rsa])?(?::[^{}]*)?\}"  # str.format: {name}, {n:,}, {0}, {}
    r"|%\([A-Za-z_]\w*\)[-#0 +]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa]"  # %(name)s
    r"|%[-#0 +]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa]"  # %s, %d
)


def placeholders(text: str) -> Counter[str]:
    """The placeholders of a text, as a multiset (their order may change in a translation, not their set)."""
    return Counter(_PLACEHOLDERS.findall(text.replace("{{", "").replace("}}", "").replace("%%", "")))


def test_placeholders_are_recognised() -> None:
    assert placeholders("{count:,} of {total} at %(when)s, %d left, {{literal}} 100%%") == Counter(
        ["{count:,}", "{total}", "%(when)s", "%d"]
    )
    assert placeholders("没有占位符") == Counter()


def test_the_extractors_see_the_reason_catalogue() -> None:
    """The reasons domain's texts are the catalogue: what the extractor finds in its module is exactly it."""
    extracted = {f.msgid for f in FOUND if f.domain == reason_text.DOMAIN}
    assert extracted == set(reason_text.catalogue())


def test_no_text_is_empty() -> None:
    empty = [f.where for f in FOUND if "" in _texts(f.msgid)]
    assert not empty, f"an empty msgid translates to the catalog's header: {empty}"


def test_one_msgid_is_one_text_in_its_domain() -> None:
    """A msgid used once as a plain text and once as a plural (or with two plurals) cannot be translated
    both ways."""
    shapes: dict[tuple[str, str], set[str | tuple[str, str]]] = {}
    for f in FOUND:
        shapes.setdefault((f.domain, _key(f.msgid)), set()).add(f.msgid)
    clashes = {key: shape for key, shape in shapes.items() if len(shape) > 1}
    assert not clashes


@pytest.mark.parametrize("domain", i18n.DOMAINS)
def test_zh_cn_translates_every_text(domain: str) -> None:
    translated = {_key(message.id): message for message in _entries(_catalog("zh_CN", domain))}
    missing, fuzzy, untranslated, shape = [], [], [], []
    for f in FOUND:
        if f.domain != domain:
            continue
        message = translated.get(_key(f.msgid))
        if message is None:
            missing.append(f"{f.where}: {f.msgid!r}")
            continue
        if message.fuzzy:
            fuzzy.append(f"{f.where}: {f.msgid!r}")
        elif not all(_texts(message.string)):
            untranslated.append(f"{f.where}: {f.msgid!r}")
        if _texts(message.id) != _texts(f.msgid):
            shape.append(f"{f.where}: the code has {f.msgid!r}, the catalog {message.id!r}")
    assert not missing, f"zh_CN/{domain}.po has no entry for:\n" + "\n".join(missing)
    assert not fuzzy, f"zh_CN/{domain}.po marks these fuzzy (not used at run time):\n" + "\n".join(fuzzy)
    assert not untranslated, f"zh_CN/{domain}.po leaves these untranslated:\n" + "\n".join(untranslated)
    assert not shape, "\n".join(shape)


@pytest.mark.parametrize("domain", i18n.DOMAINS)
def test_zh_cn_holds_nothing_the_code_no_longer_uses(domain: str) -> None:
    used = {_key(f.msgid) for f in FOUND if f.domain == domain}
    stale = [message.id for message in _entries(_catalog("zh_CN", domain)) if _key(message.id) not in used]
    obsolete = list(_catalog("zh_CN", domain).obsolete)
    assert not stale, f"zh_CN/{domain}.po translates texts no code uses: {stale}"
    assert not obsolete, f"zh_CN/{domain}.po keeps obsolete (#~) entries: {obsolete}"


@pytest.mark.parametrize("code", i18n.SUPPORTED)
@pytest.mark.parametrize("domain", i18n.DOMAINS)
def test_translations_keep_the_placeholders(code: str, domain: str) -> None:
    differ = []
    for message in _entries(_catalog(code, domain)):
        ids = _texts(message.id)
        expected = placeholders(ids[-1]) | placeholders(ids[0])  # a plural: the plural form's placeholders
        for string in _texts(message.string):
            if string and placeholders(string) != expected:
                differ.append(f"{ids[0]!r}: {dict(expected)} vs {string!r}")
    assert not differ, f"{code}/{domain}.po changes placeholders:\n" + "\n".join(differ)


@pytest.mark.parametrize("code", i18n.SUPPORTED)
@pytest.mark.parametrize("domain", i18n.DOMAINS)
def test_every_catalog_names_its_language_and_plural_rule(code: str, domain: str) -> None:
    catalog = _catalog(code, domain)
    assert catalog.mime_headers and dict(catalog.mime_headers)["Language"] == code
    assert catalog.num_plurals == (1 if code == "zh_CN" else 2)
    assert not catalog.fuzzy, "a fuzzy header makes gettext tools ignore the catalog's settings"
