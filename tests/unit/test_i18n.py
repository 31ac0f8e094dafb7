"""The language a person reads: which tags name it, how it is chosen, its catalogs and formats."""

from __future__ import annotations

import tomllib
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError

from issuance import i18n
from issuance.errors import ConfigurationError
from issuance.settings import Settings


@pytest.mark.parametrize(
    ("tag", "code"),
    [
        (None, "zh_CN"),
        ("zh", "zh_CN"),
        ("zh-CN", "zh_CN"),
        ("zh_CN", "zh_CN"),
        ("zh_Hans_CN", "zh_CN"),
        ("zh-Hans", "zh_CN"),
        ("ZH-cn", "zh_CN"),
        ("zh_CN.UTF-8", "zh_CN"),
        ("en", "en"),
        ("en-US", "en"),
        ("en_GB", "en"),
        (" en ", "en"),
    ],
)
def test_normalize_names_the_supported_code(tag: str | None, code: str) -> None:
    assert i18n.normalize(tag) == code


@pytest.mark.parametrize("tag", ["fr", "zh-TW", "zh_Hant", "zh-HK", "", "  ", "*", "english"])
def test_an_unsupported_explicit_language_is_a_configuration_error(tag: str) -> None:
    with pytest.raises(ConfigurationError, match="unsupported language"):
        i18n.normalize(tag)


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "zh_CN"),
        ("", "zh_CN"),
        ("en-US,en;q=0.9", "en"),
        ("en-US,en;q=0.9,zh-CN;q=0.8", "en"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh_CN"),
        ("en;q=0.5, zh;q=0.8", "zh_CN"),  # by quality, not by position
        ("en, zh", "en"),  # a tie: the first
        ("fr-FR, de;q=0.9", "zh_CN"),  # nothing supported: the default
        ("zh-TW, en;q=0.7", "en"),  # Traditional Chinese is not offered
        ("en;q=0", "zh_CN"),  # q=0 means "not this one"
        ("en;q=abc, *", "zh_CN"),  # malformed entries are skipped, not errors
        (";;,,", "zh_CN"),
    ],
)
def test_accept_language_picks_the_best_supported(header: str | None, code: str) -> None:
    assert i18n.from_accept_language(header) == code


def test_lang_is_read_once_per_process() -> None:
    assert i18n.lang("zh-CN") is i18n.lang("zh_CN") is i18n.lang(None) is i18n.lang()
    assert i18n.lang("en-US") is i18n.lang("en")
    assert i18n.lang().code == i18n.DEFAULT == "zh_CN"


def test_every_domain_is_loaded_for_every_language() -> None:
    for code in i18n.SUPPORTED:
        assert set(i18n.lang(code).catalogs) == set(i18n.DOMAINS)
        for domain in i18n.DOMAINS:
            assert i18n.catalog_path(code, domain).is_file()


def test_a_text_without_translation_stays_english() -> None:
    zh = i18n.lang("zh_CN")
    assert zh.gettext("no such text anywhere") == "no such text anywhere"
    assert zh.ngettext("one thing", "{n} things", 3) == "{n} things"
    assert i18n.lang("en").ngettext("one thing", "{n} things", 1) == "one thing"


def test_an_unknown_domain_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown translation domain"):
        i18n.lang().gettext("Submitted", "nowhere")


def test_numbers_group_thousands_in_both_languages() -> None:
    for code in i18n.SUPPORTED:
        assert i18n.lang(code).number(1_234_567) == "1,234,567"
        assert i18n.lang(code).number(200_000) == "200,000"
        assert i18n.lang(code).number(0) == "0"
        assert i18n.lang(code).number(1234.5) == "1,234.5"


def test_times_are_shown_in_business_time() -> None:
    at = datetime(2026, 11, 30, 6, 5, tzinfo=UTC)  # 14:05 in Beijing
    assert i18n.lang("zh_CN").datetime(at) == "2026年11月30日 14:05"
    assert i18n.lang("en").datetime(at) == "2026-11-30 14:05"
    late = datetime(2026, 11, 30, 23, 30, tzinfo=timezone(timedelta(hours=8)))
    assert i18n.lang("en").datetime(late) == "2026-11-30 23:30"
    just_after_midnight = datetime(2026, 11, 30, 16, 30, tzinfo=UTC)  # the next day in Beijing
    assert i18n.lang("zh_CN").datetime(just_after_midnight) == "2026年12月1日 00:30"


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        i18n.lang().datetime(datetime(2026, 11, 30, 14, 5))  # naive: the point of the test


def test_dates() -> None:
    assert i18n.lang("zh_CN").date(date(2026, 1, 5)) == "2026年1月5日"
    assert i18n.lang("en").date(date(2026, 1, 5)) == "2026-01-05"


def test_the_setting_defaults_to_chinese_and_keeps_the_code(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ISSUANCE_LANGUAGE", raising=False)
    assert Settings().language == "zh_CN"
    monkeypatch.setenv("ISSUANCE_LANGUAGE", "en-US")
    assert Settings().language == "en"


def test_an_unsupported_setting_stops_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ISSUANCE_LANGUAGE", "fr")
    with pytest.raises(ValidationError, match="unsupported language"):
        Settings()


def test_an_installed_package_carries_every_catalog() -> None:
    """The catalogs are package data: a wheel without them would show every text in English."""
    root = Path(__file__).resolve().parents[2]
    package_data = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    package = root / "issuance"
    shipped = {path for pattern in package_data["issuance"] for path in package.glob(pattern)}
    catalogs = {i18n.catalog_path(code, domain) for code in i18n.SUPPORTED for domain in i18n.DOMAINS}
    assert catalogs <= shipped
    assert set(package.glob("locale/**/*.po")) <= shipped
