"""The reason catalogue: what every code means to the person who reads it, and what to do.

A rejection reason is read by a clerk at a branch counter, with the applicant in front of them: each message
says what is wrong and what to do at the counter. A dead-letter reason is read by an operator. A state label
names where an application, its card or its savings account stands. The English text here is the msgid of
the `reasons` gettext domain; its Chinese is in issuance/locale/zh_CN/LC_MESSAGES/reasons.po
(tests/unit/test_i18n_catalogs.py checks that every code has both).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from issuance.domain.decision import normalize_reasons
from issuance.domain.lifecycle import ApplicationState, CardStatus, FinancialStatus
from issuance.domain.model import DeadLetterReason, Reason
from issuance.i18n import N_, Lang

DOMAIN: Final = "reasons"

REASON_TEXT: Final[dict[Reason, str]] = {
    Reason.ID_NUMBER_INVALID: N_(
        "The applicant's ID number is not valid: see the detail reason, check the ID number and submit again"
    ),
    Reason.ID_NUMBER_FORMAT: N_(
        "The ID number is not 17 digits and a check character: check the applicant's ID number and submit"
        " again"
    ),
    Reason.ID_NUMBER_CHECKSUM: N_(
        "The ID number's check character is wrong: check the applicant's ID number and submit again"
    ),
    Reason.ID_NUMBER_BIRTH_DATE: N_(
        "The birth date in the ID number is impossible: check the applicant's ID number and submit again"
    ),
    Reason.ID_NUMBER_AREA_CODE: N_(
        "The ID number starts with an unknown administrative area code: check the applicant's ID number and"
        " submit again"
    ),
    Reason.PERSON_NOT_FOUND: N_(
        "The ID number is not in the population registry: check it against the applicant's ID card; if it is"
        " right, send the applicant to the social insurance agency to have the record checked"
    ),
    Reason.NAME_MISMATCH: N_(
        "The name differs from the registry's for this ID number: check the name against the applicant's ID"
        " card, rare characters included, and submit again"
    ),
    Reason.NOT_INSURED: N_(
        "The applicant is not enrolled in social insurance: the applicant enrols at the social insurance"
        " agency first, then applies for the card"
    ),
    Reason.MATERIALS_MISSING: N_(
        "Required materials are missing: see the detail reasons, add the missing materials and submit again"
    ),
    Reason.MISSING_RESIDENT_ID_CARD: N_(
        "The resident ID card is missing: check the applicant's original ID card and submit again with it"
    ),
    Reason.MISSING_SOCIAL_SECURITY_CARD: N_(
        "The social security card is missing: activating the financial function needs the applicant's social"
        " security card; submit again with it"
    ),
    Reason.MISSING_HOUSEHOLD_REGISTER: N_(
        "The household register is missing: an applicant under 16 needs the household register; submit again"
        " with it"
    ),
    Reason.GUARDIAN_REQUIRED: N_(
        "The applicant is under 16 and no valid guardian ID number was given: enter the guardian's ID number"
        " and submit again"
    ),
    Reason.GUARDIAN_NOT_ADULT: N_(
        "The guardian is under 18: an adult guardian applies; enter that guardian's ID number and submit"
        " again"
    ),
    Reason.GUARDIAN_IS_APPLICANT: N_(
        "The guardian's ID number is the applicant's own: enter the guardian's ID number and submit again"
    ),
    Reason.GUARDIAN_NOT_FOUND: N_(
        "The guardian's ID number is not in the population registry: check it against the guardian's ID card"
        " and submit again"
    ),
    Reason.BRANCH_UNKNOWN: N_(
        "This branch is not registered with the bureau: check the branch code configured at the counter or"
        " contact the social insurance agency"
    ),
    Reason.BANK_NOT_COOPERATING: N_(
        "This bank is not a cooperating bank of the applicant's card-issuing area: the applicant applies at a"
        " branch of a cooperating bank"
    ),
    Reason.AREA_NOT_APPROVED: N_(
        "The card-issuing area is not approved to issue cards yet: applications cannot be accepted there;"
        " contact the social insurance agency"
    ),
    Reason.DUPLICATE_APPLICATION: N_(
        "The applicant already has an application in progress: do not submit it again; wait for that"
        " application's result"
    ),
    Reason.ALREADY_HAS_CARD: N_(
        "The applicant already holds a valid social security card: a second card is not issued; for a lost"
        " card, report the loss and apply for a replacement"
    ),
    Reason.CARD_NOT_FOUND: N_(
        "The card to activate was not found: check the card number on the applicant's social security card"
        " and submit again"
    ),
    Reason.CARD_NOT_ELIGIBLE: N_(
        "This card's financial function cannot be activated here (another holder or bank, card not valid, or"
        " already active): check the card and the bank with the applicant"
    ),
    Reason.AGREEMENT_MISMATCH: N_(
        "The signed agreement names another bank or was signed before the application: the applicant signs"
        " this bank's agreement again"
    ),
    Reason.AGREEMENT_TERMS_OUTDATED: N_(
        "The agreement was signed on the bank's outdated terms: the applicant signs the current version and"
        " the application is submitted again"
    ),
    Reason.AGREEMENT_EXPIRED: N_(
        "No valid signed agreement arrived within the time allowed: the application is closed; submit a new"
        " application and have the agreement signed in time"
    ),
}

DEAD_LETTER_TEXT: Final[dict[DeadLetterReason, str]] = {
    DeadLetterReason.MALFORMED_MESSAGE: N_(
        "Unreadable message: not an Avro single-object record; ask the sender to check what it writes"
    ),
    DeadLetterReason.UNKNOWN_SCHEMA: N_(
        "Written in a schema version this system does not know: upgrade this system or ask the sender which"
        " version it writes"
    ),
    DeadLetterReason.SCHEMA_VIOLATION: N_(
        "Readable, but breaks the contract (a field missing or wrong): the detail names the field; ask the"
        " sender to correct it"
    ),
    DeadLetterReason.EMPTY_MESSAGE: N_("Empty message, no content at all: ask the sender why it sent none"),
    DeadLetterReason.OVERSIZED_MESSAGE: N_(
        "Larger than any valid record, not decoded: ask the sender to check what it sent"
    ),
    DeadLetterReason.UNPROCESSABLE_RECORD: N_(
        "A valid record a stage could not process: the stage and detail say where; remove the cause, then"
        " re-drive it"
    ),
    DeadLetterReason.APPLICATION_ID_REUSED: N_(
        "A different application under an application id already used: the branch submits it again under a"
        " new application id"
    ),
    DeadLetterReason.TRANSITION_NOT_ALLOWED: N_(
        "Readable, but the lifecycle does not allow it now (a collection before the receipt, another branch's"
        " card, an unknown card): check the card's state, then re-drive or close it"
    ),
    DeadLetterReason.SIGNATURE_MISSING: N_(
        "A message from outside the bureau without its sender's signature: not accepted; the sender must sign"
        " its messages"
    ),
    DeadLetterReason.SIGNATURE_INVALID: N_(
        "The sender's signature does not verify (altered, forged or an unregistered key): do not re-drive;"
        " check the sender's registered keys"
    ),
    DeadLetterReason.SENDER_MISMATCH: N_(
        "Sent by another party than the one it speaks for (a bank answering another bank's request, a branch"
        " submitting for another branch): do not re-drive; investigate the sender"
    ),
    DeadLetterReason.SEAL_INVALID: N_(
        "The sealed personal fields do not open with this system's key: ask the sender which key it sealed"
        " them with"
    ),
}

APPLICATION_STATE_TEXT: Final[dict[ApplicationState, str]] = {
    ApplicationState.SUBMITTED: N_("Submitted, not yet reviewed"),
    ApplicationState.REJECTED: N_("Rejected"),
    ApplicationState.AWAITING_AGREEMENT: N_("Waiting for the signed agreement"),
    ApplicationState.ACCEPTED: N_("Accepted, sent to the bank"),
    ApplicationState.COMPLETED: N_("Completed"),
    ApplicationState.FAILED: N_("Failed: refused by the bank, or the card could not be made"),
}

CARD_STATUS_TEXT: Final[dict[CardStatus, str]] = {
    CardStatus.ORDERED: N_("Card ordered, waiting for production"),
    CardStatus.IN_PRODUCTION: N_("Being made by the card vendor"),
    CardStatus.PRODUCED: N_("Made, on its way to the branch"),
    CardStatus.AT_BRANCH: N_("At the branch, waiting to be collected"),
    CardStatus.ISSUED: N_("Collected by the holder"),
    CardStatus.LOST_TEMPORARY: N_("Reported lost (temporary)"),
    CardStatus.LOST_FORMAL: N_("Reported lost (formal)"),
    CardStatus.REPLACED: N_("Replaced"),
    CardStatus.CANCELLED: N_("Card cancelled"),
    CardStatus.EXPIRED: N_("Expired"),
}

FINANCIAL_STATUS_TEXT: Final[dict[FinancialStatus, str]] = {
    FinancialStatus.NONE: N_("No bank account"),
    FinancialStatus.REQUESTED: N_("Account requested from the bank"),
    FinancialStatus.OPENED: N_("Account opened, not yet activated"),
    FinancialStatus.ACTIVE: N_("Financial function activated"),
    FinancialStatus.REFUSED: N_("Account refused by the bank"),
    FinancialStatus.FROZEN: N_("Account frozen"),
    FinancialStatus.CLOSED: N_("Account closed"),
}


# Rejection and dead-letter codes are one namespace (no code is both), as every reader of a reason sees them.
_REASON_BY_CODE: Final[dict[str, str]] = {
    **{code.value: text for code, text in REASON_TEXT.items()},
    **{code.value: text for code, text in DEAD_LETTER_TEXT.items()},
}
# State labels by their enum: the same value in two enums (none today) would still have two labels.
_STATE_TEXT: Final[
    dict[type, dict[ApplicationState, str] | dict[CardStatus, str] | dict[FinancialStatus, str]]
] = {
    ApplicationState: APPLICATION_STATE_TEXT,
    CardStatus: CARD_STATUS_TEXT,
    FinancialStatus: FINANCIAL_STATUS_TEXT,
}


def reason_message(code: str, lang: Lang) -> str:
    """What a rejection or dead-letter reason code means and what to do, in the reader's language."""
    try:
        text = _REASON_BY_CODE[code]
    except KeyError:
        raise ValueError(f"unknown reason code {code!r}") from None
    return lang.gettext(text, DOMAIN)


def describe(reasons: Iterable[Reason], lang: Lang) -> str:
    """One line per reason, in the order decisions carry them: `CODE: message`."""
    return "\n".join(f"{reason}: {reason_message(reason, lang)}" for reason in normalize_reasons(reasons))


def state_label(state: ApplicationState | CardStatus | FinancialStatus, lang: Lang) -> str:
    """The label of an application state, a card status or a savings-account status, in the reader's
    language."""
    labels: dict[Any, str] = _STATE_TEXT[type(state)]
    return lang.gettext(labels[state], DOMAIN)


def catalogue() -> list[str]:
    """Every English text of the `reasons` domain, in catalogue order (what its zh_CN catalog translates)."""
    return [
        *REASON_TEXT.values(),
        *DEAD_LETTER_TEXT.values(),
        *APPLICATION_STATE_TEXT.values(),
        *CARD_STATUS_TEXT.values(),
        *FINANCIAL_STATUS_TEXT.values(),
    ]
