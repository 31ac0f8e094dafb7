"""Plain-language labels so a bureau official can read the pages without knowing the codes, in the reader's
language.

Reasons and the application, card and savings-account states are the whole system's words: they come from the
`reasons` catalog (`issuance.reason_text`), the same text a counter clerk reads. What only the dashboard
names (funnel steps, backlogs, age buckets, run and dead-letter statuses, where a step came from) is marked
here with `N_` and translated in the `dashboard` catalog. Lookups go by code, never by the English text a
query returned: the JSON API keeps that text, the pages translate the code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from issuance.domain.lifecycle import ApplicationState, CardStatus, FinancialStatus
from issuance.i18n import N_, Lang
from issuance.i18n import lang as language
from issuance.reason_text import reason_message, state_label

DOMAIN = "dashboard"

DEAD_LETTER_STATUSES: dict[str, str] = {
    "OPEN": N_("Open"),
    "REDRIVEN": N_("Re-driven"),
    "HANDLED": N_("Handled (closed)"),
}

RUN_STATUSES: dict[str, str] = {
    "PLANNED": N_("planned"),
    "RUNNING": N_("running"),
    "SUCCEEDED": N_("succeeded"),
    "FAILED": N_("failed"),
}

# The funnel's steps by key (issuance.store.report_queries.FUNNEL_STEPS).
FUNNEL_STEPS: dict[str, str] = {
    "submitted": N_("Submitted"),
    "accepted": N_("Accepted"),
    "account_opened": N_("Account opened"),
    "produced": N_("Produced"),
    "at_branch": N_("At the branch"),
    "collected": N_("Collected"),
    "savings_active": N_("Savings active"),
}

# The three backlogs by key (report_queries.BACKLOGS) and the statuses they are made of, by the label the
# query gives each part (report_queries.build_backlogs).
BACKLOGS: dict[str, str] = {
    "bank": N_("Waiting for the bank"),
    "vendor": N_("Waiting for the vendor"),
    "branch": N_("At the branch, not yet collected"),
}
BACKLOG_PARTS: dict[str, str] = {
    "account opening requested": N_("account opening requested"),
    "ordered, account opened": N_("ordered, account opened"),
    "in production": N_("in production"),
    "produced, on its way": N_("produced, on its way"),
    "at the branch": N_("at the branch"),
}

# Age buckets by name (report_queries.AGE_BUCKETS).
AGES: dict[str, str] = {
    "today": N_("today"),
    "1-6 days": N_("1-6 days"),
    "7-13 days": N_("7-13 days"),
    "14-29 days": N_("14-29 days"),
    "30 days or more": N_("30 days or more"),
}

# The sides of an application's steps (issuance.store.card_view.steps).
SIDES: dict[str, str] = {
    "application": N_("Application"),
    "card": N_("Card"),
    "financial": N_("Savings"),
}

# Where a step came from: a stage of the night, or a party's message.
STAGES: dict[str, str] = {
    "verify": N_("Verification"),
    "agreement": N_("Agreement"),
    "personalize": N_("Personalization"),
    "activation": N_("Bank activation"),
    "bank": N_("Bank"),
    "vendor": N_("Card vendor"),
    "branch": N_("Branch"),
}
_APPLICATION_STATES = frozenset(s.value for s in ApplicationState)
_CARD_STATUSES = frozenset(s.value for s in CardStatus)
_FINANCIAL_STATUSES = frozenset(s.value for s in FinancialStatus)
_NIGHTLY_RUN = re.compile(r"^nightly run (\d+)$")


@dataclass(frozen=True)
class Labels:
    """Every code a page shows, in one language."""

    lang: Lang

    def text(self, msgid: str) -> str:
        """A text of the dashboard catalog in this language."""
        return self.lang.gettext(msgid, DOMAIN)

    def _of(self, table: dict[str, str], code: str) -> str:
        msgid = table.get(code)
        return self.text(msgid) if msgid is not None else code

    def reason(self, code: str) -> str:
        """A rejection reason: what it means and what to do (the code itself when unknown)."""
        try:
            return reason_message(code, self.lang)
        except ValueError:
            return code

    def dead_letter(self, code: str) -> str:
        """Why a message was set aside as a dead letter (the code itself when unknown)."""
        return self.reason(code)

    def state(self, code: str) -> str:
        """An application state in words (the code itself when unknown)."""
        return state_label(ApplicationState(code), self.lang) if code in _APPLICATION_STATES else code

    def card_status(self, code: str) -> str:
        """A card's social-security status in words."""
        return state_label(CardStatus(code), self.lang) if code in _CARD_STATUSES else code

    def financial_status(self, code: str) -> str:
        """A card's savings-account status in words."""
        return state_label(FinancialStatus(code), self.lang) if code in _FINANCIAL_STATUSES else code

    def status_of(self, side: str, code: str) -> str:
        """A step's status in the words of its side (application, card or savings account)."""
        if side == "card":
            return self.card_status(code)
        if side == "financial":
            return self.financial_status(code)
        return self.state(code)

    def dead_letter_status(self, code: str) -> str:
        return self._of(DEAD_LETTER_STATUSES, code)

    def run_status(self, code: str) -> str:
        return self._of(RUN_STATUSES, code)

    def step(self, key: str) -> str:
        """A step of the funnel."""
        return self._of(FUNNEL_STEPS, key)

    def backlog(self, key: str) -> str:
        return self._of(BACKLOGS, key)

    def part(self, label: str) -> str:
        """A status a backlog is made of."""
        return self._of(BACKLOG_PARTS, label)

    def age(self, bucket: str) -> str:
        return self._of(AGES, bucket)

    def side(self, side: str) -> str:
        return self._of(SIDES, side)

    def source(self, source: str) -> str:
        """Where a step came from: `nightly run N`, a stage, or a party (`bank:ICBC` stays as it is)."""
        run = _NIGHTLY_RUN.match(source)
        if run is not None:
            return self.text(N_("nightly run %(run)s")) % {"run": run.group(1)}
        return self._of(STAGES, source)


# The JSON API keeps English: the same labels the pages translate, in the msgid's language.
ENGLISH = Labels(language("en"))


def reason(code: str) -> str:
    """A rejection reason in English words (the JSON API's label)."""
    return ENGLISH.reason(code)


def dead_letter(code: str) -> str:
    """A dead-letter reason in English words (the JSON API's label)."""
    return ENGLISH.dead_letter(code)


def state(code: str) -> str:
    """An application state in English words (the JSON API's label)."""
    return ENGLISH.state(code)
