"""The reason catalogue: every code has a message in both languages, each its own."""

from __future__ import annotations

import re

import pytest

from issuance import i18n, reason_text
from issuance.domain.lifecycle import ApplicationState, CardStatus, FinancialStatus
from issuance.domain.model import DeadLetterReason, Reason
from issuance.reason_text import describe, reason_message, state_label

HAN = re.compile(r"[\u4e00-\u9fff]")


def test_every_code_and_state_has_a_text() -> None:
    assert list(reason_text.REASON_TEXT) == list(Reason)
    assert list(reason_text.DEAD_LETTER_TEXT) == list(DeadLetterReason)
    assert list(reason_text.APPLICATION_STATE_TEXT) == list(ApplicationState)
    assert list(reason_text.CARD_STATUS_TEXT) == list(CardStatus)
    assert list(reason_text.FINANCIAL_STATUS_TEXT) == list(FinancialStatus)


def test_each_text_is_its_own_msgid() -> None:
    """One msgid is one translation: two codes with the same English text could not differ in Chinese."""
    texts = reason_text.catalogue()
    assert len(texts) == len(set(texts))


def test_no_code_is_both_a_rejection_and_a_dead_letter_reason() -> None:
    assert not {r.value for r in Reason} & {r.value for r in DeadLetterReason}


@pytest.mark.parametrize("code", [*Reason, *DeadLetterReason], ids=str)
def test_every_reason_reads_in_chinese_and_in_english(code: str) -> None:
    zh = reason_message(code, i18n.lang("zh_CN"))
    en = reason_message(code, i18n.lang("en"))
    assert HAN.search(zh), zh
    assert not HAN.search(en), en
    assert en == reason_text.REASON_TEXT.get(code) or en == reason_text.DEAD_LETTER_TEXT.get(code)  # type: ignore[call-overload]


@pytest.mark.parametrize("state", [*ApplicationState, *CardStatus, *FinancialStatus], ids=repr)
def test_every_state_has_a_chinese_label(state: ApplicationState | CardStatus | FinancialStatus) -> None:
    assert HAN.search(state_label(state, i18n.lang("zh_CN")))
    assert not HAN.search(state_label(state, i18n.lang("en")))


def test_a_counter_clerk_reads_what_to_do() -> None:
    assert (
        reason_message("ID_NUMBER_CHECKSUM", i18n.lang())
        == "身份证号码校验位错误，请核对申请人身份证号码后重新提交"
    )
    assert reason_message(Reason.ID_NUMBER_CHECKSUM, i18n.lang("en")) == (
        "The ID number's check character is wrong: check the applicant's ID number and submit again"
    )
    assert state_label(CardStatus.AT_BRANCH, i18n.lang()) == "已到网点，待领卡"


def test_an_unknown_code_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown reason code"):
        reason_message("NO_SUCH_REASON", i18n.lang())


def test_describe_lists_each_reason_once_in_decision_order() -> None:
    zh = i18n.lang("zh_CN")
    assert describe([Reason.NOT_INSURED, Reason.NAME_MISMATCH, Reason.NOT_INSURED], zh).splitlines() == [
        f"NAME_MISMATCH: {reason_message(Reason.NAME_MISMATCH, zh)}",
        f"NOT_INSURED: {reason_message(Reason.NOT_INSURED, zh)}",
    ]
