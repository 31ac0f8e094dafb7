"""The operators' language: Chinese by default, English with `--lang en` or ISSUANCE_LANGUAGE=en; what a
command prints for machines (JSON, the `error:` prefix, exit codes) is the same in both."""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from cli import language
from cli.batch import _print_report
from cli.common import print_json, report_failure, translate
from cli.demo import _print_summary
from cli.main import app, main
from issuance.settings import Settings
from pipelines.nightly import NightlyResult

SUMMARY: dict[str, Any] = {
    "applications": 12_345,
    "nights": 4,
    "seconds": 83.4,
    "by_state": {"COMPLETED": 11_000, "REJECTED": 1_200, "FAILED": 45, "AWAITING_AGREEMENT": 100},
    "cards": {"ISSUED/ACTIVE": 11_000},
    "rejected_by_reason": {"ID_NUMBER_CHECKSUM": 700, "MATERIALS_MISSING": 500},
    "comparison": {
        "matched": 12_300,
        "injected_failures": 45,
        "mismatched": [],
        "holder_activations": {"COMPLETED": 9_000},
    },
    "examples": {"COMPLETED": "APP-000001", "REJECTED": "APP-000002"},
    "bank_failures": {"refused": 230, "completed_after_retry": 185},
    "funnel": [
        {"step": "submitted", "label": "Submitted", "reached": 12_345},
        {"step": "savings_active", "label": "Savings active", "reached": 11_000},
    ],
}


@pytest.fixture
def configured(tmp_path: Path) -> Settings:
    """Settings of configured servers: the summary then lists no demo logins (nothing is connected)."""
    return Settings(
        kafka_bootstrap="127.0.0.1:9",
        database_url=SecretStr("postgresql://nobody@127.0.0.1:9/none"),
        state_dir=tmp_path / "state",
        personalization_dir=tmp_path / "files",
    )


@pytest.fixture
def speak(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Switch the printing language for one test (restored afterwards)."""

    def switch(code: str) -> None:
        monkeypatch.setattr(language._Chosen, "lang", language.use(code))

    return switch


def test_the_demo_summary_is_chinese_by_default_and_english_on_request(
    configured: Settings, speak: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    speak("zh_CN")
    _print_summary(SUMMARY, configured)
    chinese = capsys.readouterr().err
    assert "12,345 笔申请" in chinese and "接下来可以看" in chinese
    assert "已提交" in chinese and "金融功能已激活" in chinese and "所有申请均符合预期" in chinese
    assert "ID_NUMBER_CHECKSUM" in chinese and "身份证号码校验位错误" in chinese  # the code and its meaning
    assert "issuance status APP-000001" in chinese and "Where to look next" not in chinese

    speak("en")
    _print_summary(SUMMARY, configured)
    english = capsys.readouterr().err
    assert "12,345 applications over 4 nights" in english and "Where to look next:" in english
    assert "every application as expected" in english and "接下来" not in english


def test_json_output_is_the_same_in_both_languages(speak: Any, capsys: pytest.CaptureFixture[str]) -> None:
    printed = []
    for code in ("zh_CN", "en"):
        speak(code)
        print_json(SUMMARY)
        printed.append(capsys.readouterr().out)
    assert printed[0] == printed[1] and json.loads(printed[0]) == SUMMARY


def _night() -> NightlyResult:
    total = {"read": 1_234, "accepted": 1_234, "balanced": True}
    return NightlyResult(
        7,
        date(2026, 11, 3),
        False,
        1_234,
        {"total": total, "branches": {"310115001": total}, "balanced": True},
        {"verify.records": 1_234},
    )


def test_the_reconciliation_is_chinese_by_default(speak: Any, capsys: pytest.CaptureFixture[str]) -> None:
    speak("zh_CN")
    _print_report(_night())
    out = capsys.readouterr().out
    assert "批次 7" in out and "读取 1,234 条记录" in out and "对账" in out and "合计" in out
    assert "平衡" in out and "不平衡" not in out and "balanced" not in out

    speak("en")
    _print_report(_night())
    out = capsys.readouterr().out
    assert "run 7 business date 2026-11-03 read 1,234 records" in out and "; balanced" in out


def test_an_error_keeps_its_prefix_and_translates_its_hint(
    speak: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    lost = psycopg.OperationalError("server closed the connection unexpectedly")
    speak("zh_CN")
    assert report_failure(lost, "issuance report") == 1
    line = capsys.readouterr().err.strip()
    assert line.startswith("error: 执行 issuance report 时 PostgreSQL 关闭了连接"), line
    speak("en")
    assert str(translate(lost, "issuance report")).startswith(
        "PostgreSQL closed the connection during issuance report"
    )


def test_the_language_option_overrides_the_setting_and_refuses_another(
    monkeypatch: pytest.MonkeyPatch, speak: Any
) -> None:
    speak("zh_CN")  # restored after the test, whatever the invocations chose
    runner = CliRunner()
    refused = runner.invoke(app, ["--lang", "fr", "report"])
    assert refused.exit_code == 2 and "'fr' is not one of zh_CN, en" in refused.output

    monkeypatch.setenv("ISSUANCE_LANGUAGE", "en")
    unknown = runner.invoke(app, ["--lang", "zh", "batch", "run", "--business-date", "tomorrow"])
    assert unknown.exit_code == 2 and "不是日期" in unknown.output
    assert language.current().code == "zh_CN"

    english = runner.invoke(app, ["batch", "run", "--business-date", "tomorrow"])
    assert english.exit_code == 2 and "is not a date (YYYY-MM-DD)" in english.output


def test_an_unsupported_language_setting_is_bad_input(
    monkeypatch: pytest.MonkeyPatch, speak: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    speak("zh_CN")
    monkeypatch.setenv("ISSUANCE_LANGUAGE", "fr")
    monkeypatch.setattr(sys, "argv", ["issuance", "report"])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2
    line = capsys.readouterr().err
    assert line.startswith("error: 设置无效") and "ISSUANCE_LANGUAGE" in line, line


def test_a_chinese_label_pads_by_its_display_width() -> None:
    assert language.columns("合计") == 4 and language.left("合计", 6) == "合计  "
    assert language.right("1,234", 7) == "  1,234"
