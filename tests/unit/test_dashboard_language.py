"""The dashboard's language per request, and the templates of each language (pure, no database)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dashboard.labels import Labels
from dashboard.language import LANG_COOKIE, chart_labels, request_language, templates
from issuance.i18n import lang

TEMPLATES = Path(__file__).resolve().parents[2] / "dashboard" / "templates"


@pytest.mark.parametrize(
    ("cookie", "accept", "configured", "expected"),
    [
        ("en", "zh-CN,zh;q=0.9", "zh_CN", "en"),  # the reader's choice first
        ("zh_CN", "en-US", "en", "zh_CN"),
        ("fr", "en-US", "zh_CN", "en"),  # a cookie naming no supported language is ignored
        (None, "en-GB,en;q=0.8", "zh_CN", "en"),  # then the browser
        (None, "de;q=0.9, zh-Hans-CN;q=0.8", "en", "zh_CN"),
        (None, "fr, de", "en", "en"),  # a browser naming neither: the setting
        (None, None, "en", "en"),
        (None, "zh-TW", "en", "en"),  # Traditional Chinese is not offered
    ],
)
def test_the_readers_choice_then_the_browser_then_the_setting(
    cookie: str | None, accept: str | None, configured: str, expected: str
) -> None:
    cookies = {LANG_COOKIE: cookie} if cookie else {}
    assert request_language(cookies, accept, configured) == expected


def test_each_language_has_its_own_templates() -> None:
    envs = templates(TEMPLATES, "Asia/Shanghai")
    assert set(envs) == {"zh_CN", "en"}
    zh, en = (
        envs[code].env.from_string("{{ _('Sign in') }} {{ 1234567 | num }}") for code in ("zh_CN", "en")
    )
    assert zh.render() == "登录 1,234,567"
    assert en.render() == "Sign in 1,234,567"
    plural = "{% trans count=n %}{{ count }} time{% pluralize %}{{ count }} times{% endtrans %}"
    assert envs["en"].env.from_string(plural).render(n=2) == "2 times"
    assert envs["zh_CN"].env.from_string(plural).render(n=2) == "2 次"
    # A value placed into a translated text is escaped; the translation itself is the catalog's markup.
    signed = "{% trans name=who %}Signed in as <strong>{{ name }}</strong>{% endtrans %}"
    assert envs["zh_CN"].env.from_string(signed).render(who="<b>") == "当前用户 <strong>&lt;b&gt;</strong>"


def test_chart_labels_name_codes_in_the_pages_language() -> None:
    data = {"reasons": [{"reason": "ID_NUMBER_CHECKSUM", "count": 3}], "runs": []}
    zh = chart_labels(Labels(lang("zh_CN")), data)
    assert zh["locale"] == "zh-CN" and zh["steps"]["collected"] == "已领卡" and zh["ages"]["today"] == "今天"
    assert zh["reasons"]["ID_NUMBER_CHECKSUM"].startswith("身份证")
    en = chart_labels(Labels(lang("en")), data)
    assert en["steps"]["collected"] == "Collected" and en["states"]["REJECTED"] == "Rejected"


def test_labels_fall_back_to_the_code() -> None:
    labels = Labels(lang("zh_CN"))
    assert labels.reason("NO_SUCH_REASON") == "NO_SUCH_REASON"
    assert labels.state("NO_SUCH_STATE") == "NO_SUCH_STATE"
    assert labels.source("nightly run 12") == "夜间批处理 12"
    assert labels.source("bank:ICBC") == "bank:ICBC"
    assert labels.status_of("card", "ISSUED") == labels.card_status("ISSUED") != "ISSUED"
