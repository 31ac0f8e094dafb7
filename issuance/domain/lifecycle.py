"""The lifecycle of an application and its card, as batch issuance practises it: the one home of the states,
of every allowed transition, of the event (trigger) that causes it and of what it emits.

An application moves SUBMITTED → (AWAITING_AGREEMENT →) ACCEPTED → COMPLETED, or ends REJECTED or FAILED. Its
card has two sides that move separately:

- the social-security side: ORDERED (the bank was asked to open the account) → IN_PRODUCTION (in a vendor
  file) → PRODUCED (the vendor's return file says so) → AT_BRANCH (the branch confirmed receipt) → ISSUED (the
  holder collected it after an identity check); a failed production goes back to ORDERED for a later vendor
  file, up to a limit;
- the financial side: NONE → REQUESTED → OPENED (the bank opened the account and assigned its number; not yet
  usable) → ACTIVE (the holder activated the savings function at the bank), or REFUSED by the bank for the
  last time.

A NEW_CARD application is COMPLETED when its card is collected. A FINANCIAL_ACTIVATION application (for a card
the system issued or one already in the registry) is COMPLETED when the bank reports the account active.

Everything here is pure. The set-based SQL of the nightly run and the consumers takes its state names and the
states a move starts from out of `TRANSITIONS` (`starts`, `ends`); an integration test runs each statement
against its Python twin `step` on the same cases.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import cast

from issuance.domain.model import ApplicationType, RegistryCardStatus, RegistryFinancialStatus


class ApplicationState(StrEnum):
    SUBMITTED = "SUBMITTED"
    REJECTED = "REJECTED"
    AWAITING_AGREEMENT = "AWAITING_AGREEMENT"
    ACCEPTED = "ACCEPTED"  # sent to the bank
    COMPLETED = "COMPLETED"  # new card: collected by the holder; activation: savings function active
    FAILED = "FAILED"  # refused by the bank for the last time, or not produced within the remake limit


class CardStatus(StrEnum):
    """The social-security side of a card."""

    ORDERED = "ORDERED"
    IN_PRODUCTION = "IN_PRODUCTION"
    PRODUCED = "PRODUCED"
    AT_BRANCH = "AT_BRANCH"
    ISSUED = "ISSUED"
    LOST_TEMPORARY = "LOST_TEMPORARY"
    LOST_FORMAL = "LOST_FORMAL"
    REPLACED = "REPLACED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"


class FinancialStatus(StrEnum):
    """The financial side of a card: the savings account at the bank."""

    NONE = "NONE"
    REQUESTED = "REQUESTED"
    OPENED = "OPENED"
    ACTIVE = "ACTIVE"
    REFUSED = "REFUSED"
    FROZEN = "FROZEN"
    CLOSED = "CLOSED"


class Trigger(StrEnum):
    """What moves an application or its card, named after its source."""

    # The nightly run.
    REJECTED = "REJECTED"  # verification, a duplicate, an invalid agreement
    AGREEMENT_AWAITED = "AGREEMENT_AWAITED"
    ACCEPTED = "ACCEPTED"
    AGREEMENT_EXPIRED = "AGREEMENT_EXPIRED"
    REQUESTED_AGAIN = "REQUESTED_AGAIN"  # a refused request with attempts left is sent again
    RECHECK_REJECTED = "RECHECK_REJECTED"  # a request due again no longer passes tonight's reference data
    CARD_PERSONALIZED = "CARD_PERSONALIZED"  # numbered and put into a vendor file
    # The bank.
    ACCOUNT_OPENED = "ACCOUNT_OPENED"
    ACCOUNT_REFUSED = "ACCOUNT_REFUSED"  # attempts left
    ACCOUNT_REFUSED_FINAL = "ACCOUNT_REFUSED_FINAL"
    ACTIVATION_COMPLETED = "ACTIVATION_COMPLETED"
    ACTIVATION_REFUSED = "ACTIVATION_REFUSED"  # attempts left
    ACTIVATION_REFUSED_FINAL = "ACTIVATION_REFUSED_FINAL"
    # The vendor's return file.
    CARD_PRODUCED = "CARD_PRODUCED"
    CARD_PRODUCTION_FAILED = "CARD_PRODUCTION_FAILED"  # to be made again
    CARD_PRODUCTION_FAILED_FINAL = "CARD_PRODUCTION_FAILED_FINAL"
    # The branch.
    CARD_RECEIVED = "CARD_RECEIVED"
    CARD_COLLECTED = "CARD_COLLECTED"


class Emit(StrEnum):
    """What a transition sends or writes, each built in one place (`issuance.messages`, the vendor files)."""

    DECISION = "DecisionIssued"  # to the branch
    ACCOUNT_OPENING_REQUEST = "AccountOpeningRequested"  # to the bank
    ACTIVATION_REQUEST = "ActivationRequested"  # to the bank
    VENDOR_RECORD = "VendorRecord"  # a line of the vendor's file
    CARD_DISPATCHED = "CardDispatched"  # to the branch


OPEN_STATES = frozenset(
    {ApplicationState.SUBMITTED, ApplicationState.AWAITING_AGREEMENT, ApplicationState.ACCEPTED}
)
FINAL_STATES = frozenset(ApplicationState) - OPEN_STATES
# A card that was handed to its holder (or is past that point).
COLLECTED_OR_LATER = frozenset(
    {
        CardStatus.ISSUED,
        CardStatus.LOST_TEMPORARY,
        CardStatus.LOST_FORMAL,
        CardStatus.REPLACED,
        CardStatus.EXPIRED,
    }
)
# The account exists at the bank.
ACCOUNT_EXISTS = frozenset(
    {FinancialStatus.OPENED, FinancialStatus.ACTIVE, FinancialStatus.FROZEN, FinancialStatus.CLOSED}
)
# A card on its way: ordered, being made or travelling to the branch (the backlogs of the report).
ON_ITS_WAY = frozenset(
    {CardStatus.ORDERED, CardStatus.IN_PRODUCTION, CardStatus.PRODUCED, CardStatus.AT_BRANCH}
)

NO_CARD = None  # an application without a card of its own yet (or an activation's card, not moved)


@dataclass(frozen=True, slots=True)
class Move:
    """One side's change: from any of `starts` (None: no card yet) to `ends` (None: unchanged)."""

    starts: frozenset[object]
    ends: object | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    """What a trigger does to each side, for which application type, and what it emits."""

    application: Move | None = None
    card: Move | None = None
    financial: Move | None = None
    types: frozenset[ApplicationType] = frozenset(ApplicationType)
    emits: tuple[Emit, ...] = ()
    retry_due: bool | None = None  # the value it leaves (None: unchanged)
    needs_retry_due: bool | None = None  # the value it needs (None: either)


def _m(starts: object, ends: object | None = None) -> Move:
    values = starts if isinstance(starts, frozenset | set | tuple) else (starts,)
    return Move(frozenset(values), ends)


_A = ApplicationState
_C = CardStatus
_F = FinancialStatus
_NEW = frozenset({ApplicationType.NEW_CARD})
_ACT = frozenset({ApplicationType.FINANCIAL_ACTIVATION})
_UNDECIDED = (_A.SUBMITTED, _A.AWAITING_AGREEMENT)

TRANSITIONS: dict[tuple[Trigger, ApplicationType], Transition] = {}


def _add(trigger: Trigger, transition: Transition) -> None:
    for kind in transition.types:
        TRANSITIONS[trigger, kind] = transition


_add(Trigger.REJECTED, Transition(_m(_UNDECIDED, _A.REJECTED), emits=(Emit.DECISION,)))
_add(Trigger.AGREEMENT_AWAITED, Transition(_m(_A.SUBMITTED, _A.AWAITING_AGREEMENT), emits=(Emit.DECISION,)))
_add(Trigger.AGREEMENT_EXPIRED, Transition(_m(_A.AWAITING_AGREEMENT, _A.REJECTED), emits=(Emit.DECISION,)))
_add(
    Trigger.ACCEPTED,
    Transition(
        _m(_UNDECIDED, _A.ACCEPTED),
        card=_m(NO_CARD, _C.ORDERED),
        financial=_m(_F.NONE, _F.REQUESTED),
        types=_NEW,
        emits=(Emit.DECISION, Emit.ACCOUNT_OPENING_REQUEST),
    ),
)
_add(
    Trigger.ACCEPTED,
    Transition(
        _m(_UNDECIDED, _A.ACCEPTED),
        card=_m(_C.ISSUED),
        financial=_m(_F.OPENED),
        types=_ACT,
        emits=(Emit.DECISION, Emit.ACTIVATION_REQUEST),
    ),
)
_add(
    Trigger.REQUESTED_AGAIN,
    Transition(
        _m(_A.ACCEPTED),
        card=_m(_C.ORDERED),
        financial=_m(_F.REQUESTED),
        types=_NEW,
        emits=(Emit.ACCOUNT_OPENING_REQUEST,),
        retry_due=False,
        needs_retry_due=True,
    ),
)
_add(
    Trigger.REQUESTED_AGAIN,
    Transition(
        _m(_A.ACCEPTED),
        card=_m(_C.ISSUED),
        financial=_m(_F.OPENED),
        types=_ACT,
        emits=(Emit.ACTIVATION_REQUEST,),
        retry_due=False,
        needs_retry_due=True,
    ),
)
_add(
    Trigger.RECHECK_REJECTED,
    Transition(
        _m(_A.ACCEPTED, _A.REJECTED),
        card=_m(_C.ORDERED, _C.CANCELLED),
        financial=_m(_F.REQUESTED, _F.NONE),
        types=_NEW,
        emits=(Emit.DECISION,),
        retry_due=False,
        needs_retry_due=True,
    ),
)
_add(
    Trigger.RECHECK_REJECTED,
    Transition(
        _m(_A.ACCEPTED, _A.REJECTED),
        types=_ACT,
        emits=(Emit.DECISION,),
        retry_due=False,
        needs_retry_due=True,
    ),
)
_add(
    Trigger.ACCOUNT_OPENED,
    Transition(
        _m(_A.ACCEPTED),
        card=_m(_C.ORDERED),
        financial=_m(_F.REQUESTED, _F.OPENED),
        types=_NEW,
        needs_retry_due=False,
    ),
)
_add(
    Trigger.ACCOUNT_REFUSED,
    Transition(
        _m(_A.ACCEPTED),
        card=_m(_C.ORDERED),
        financial=_m(_F.REQUESTED),
        types=_NEW,
        retry_due=True,
        needs_retry_due=False,
    ),
)
_add(
    Trigger.ACCOUNT_REFUSED_FINAL,
    Transition(
        _m(_A.ACCEPTED, _A.FAILED),
        card=_m(_C.ORDERED, _C.CANCELLED),
        financial=_m(_F.REQUESTED, _F.REFUSED),
        types=_NEW,
        emits=(Emit.DECISION,),
        needs_retry_due=False,
    ),
)
_add(
    Trigger.CARD_PERSONALIZED,
    Transition(
        _m(_A.ACCEPTED),
        card=_m(_C.ORDERED, _C.IN_PRODUCTION),
        financial=_m(_F.OPENED),
        types=_NEW,
        emits=(Emit.VENDOR_RECORD,),
    ),
)
_add(
    Trigger.CARD_PRODUCED,
    Transition(
        _m(_A.ACCEPTED),
        card=_m(_C.IN_PRODUCTION, _C.PRODUCED),
        types=_NEW,
        emits=(Emit.CARD_DISPATCHED,),
    ),
)
_add(
    Trigger.CARD_PRODUCTION_FAILED,
    Transition(_m(_A.ACCEPTED), card=_m(_C.IN_PRODUCTION, _C.ORDERED), types=_NEW),
)
_add(
    Trigger.CARD_PRODUCTION_FAILED_FINAL,
    Transition(
        _m(_A.ACCEPTED, _A.FAILED),
        card=_m(_C.IN_PRODUCTION, _C.CANCELLED),
        types=_NEW,
        emits=(Emit.DECISION,),
    ),
)
_add(Trigger.CARD_RECEIVED, Transition(_m(_A.ACCEPTED), card=_m(_C.PRODUCED, _C.AT_BRANCH), types=_NEW))
_add(
    Trigger.CARD_COLLECTED,
    Transition(
        _m(_A.ACCEPTED, _A.COMPLETED),
        card=_m(_C.AT_BRANCH, _C.ISSUED),
        types=_NEW,
        emits=(Emit.DECISION,),
    ),
)
_add(
    Trigger.ACTIVATION_COMPLETED,
    Transition(
        _m(_A.ACCEPTED, _A.COMPLETED),
        card=_m(_C.ISSUED),
        financial=_m(_F.OPENED, _F.ACTIVE),
        types=_ACT,
        emits=(Emit.DECISION,),
        needs_retry_due=False,
    ),
)
_add(
    Trigger.ACTIVATION_REFUSED,
    Transition(_m(_A.ACCEPTED), types=_ACT, retry_due=True, needs_retry_due=False),
)
_add(
    Trigger.ACTIVATION_REFUSED_FINAL,
    Transition(_m(_A.ACCEPTED, _A.FAILED), types=_ACT, emits=(Emit.DECISION,), needs_retry_due=False),
)


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """One application and the two sides of its card, as far as the rules need them.

    For a FINANCIAL_ACTIVATION, `card` and `financial` are those of the card it activates."""

    application_type: ApplicationType
    state: ApplicationState = ApplicationState.SUBMITTED
    card: CardStatus | None = None
    financial: FinancialStatus = FinancialStatus.NONE
    retry_due: bool = False  # the bank refused the last request and another attempt is allowed

    @property
    def is_open(self) -> bool:
        """Counts for DUPLICATE_APPLICATION: the person cannot apply again while it is open."""
        return self.state in OPEN_STATES


class TransitionRefused(ValueError):
    """The trigger is not allowed from this state (a message out of order, repeated or forged)."""

    def __init__(self, trigger: Trigger, before: Lifecycle, why: str) -> None:
        super().__init__(f"{trigger.value} is not allowed: {why}")
        self.trigger = trigger
        self.before = before
        self.why = why


@dataclass(frozen=True, slots=True)
class Step:
    """The outcome of one trigger: the lifecycle after it and what it emits."""

    after: Lifecycle
    emits: tuple[Emit, ...]


def transition(trigger: Trigger, application_type: ApplicationType) -> Transition:
    """The rule for a trigger on an application type (TransitionRefused-free lookup for SQL builders)."""
    try:
        return TRANSITIONS[trigger, application_type]
    except KeyError:
        raise KeyError(f"{trigger.value} does not apply to {application_type.value}") from None


def starts(trigger: Trigger, application_type: ApplicationType, side: str) -> list[str]:
    """The states (values) a side may be in for the trigger: the `= ANY(%s)` of a set-based statement."""
    move: Move | None = getattr(transition(trigger, application_type), side)
    if move is None:
        raise KeyError(f"{trigger.value} does not move the {side} side")
    return sorted(str(s) for s in move.starts if s is not None)


def ends(trigger: Trigger, application_type: ApplicationType, side: str) -> str:
    """The state (value) a side ends in for the trigger (its start when the trigger leaves it unchanged)."""
    move: Move | None = getattr(transition(trigger, application_type), side)
    if move is None or move.ends is None:
        raise KeyError(f"{trigger.value} does not change the {side} side")
    return str(move.ends)


def step(before: Lifecycle, trigger: Trigger, *, identity_checked: bool = True) -> Step:
    """Apply one trigger, or raise TransitionRefused saying why it is not allowed from here."""
    rule = TRANSITIONS.get((trigger, before.application_type))
    if rule is None:
        raise TransitionRefused(trigger, before, f"not for a {before.application_type.value} application")
    if trigger is Trigger.CARD_COLLECTED and not identity_checked:
        raise TransitionRefused(trigger, before, "the holder's identity was not checked at the counter")
    if rule.needs_retry_due is not None and before.retry_due != rule.needs_retry_due:
        why = "no refused request is due again" if rule.needs_retry_due else "the last request was refused"
        raise TransitionRefused(trigger, before, why)
    state = _moved(trigger, before, "state", rule.application)
    card = _moved(trigger, before, "card", rule.card)
    financial = _moved(trigger, before, "financial", rule.financial)
    after = Lifecycle(
        before.application_type,
        cast(ApplicationState, state),
        cast(CardStatus | None, card),
        cast(FinancialStatus, financial),
        before.retry_due if rule.retry_due is None else rule.retry_due,
    )
    return Step(after, rule.emits)


def _moved(trigger: Trigger, before: Lifecycle, side: str, move: Move | None) -> object:
    """One side after the move (as it was when the move leaves it), or TransitionRefused."""
    current: object = getattr(before, side)
    if move is None:
        return current
    if current not in move.starts:
        shown = "no card" if current is None else str(current)
        allowed = ", ".join(sorted("no card" if s is None else str(s) for s in move.starts))
        raise TransitionRefused(trigger, before, f"{side} is {shown}, needs {allowed}")
    return current if move.ends is None else move.ends


def refusal_trigger(application_type: ApplicationType, refusals_before: int, max_attempts: int) -> Trigger:
    """The bank refused a request: asked again in a later night while attempts are left, else final."""
    final = refusals_before + 1 >= max_attempts
    if application_type is ApplicationType.NEW_CARD:
        return Trigger.ACCOUNT_REFUSED_FINAL if final else Trigger.ACCOUNT_REFUSED
    return Trigger.ACTIVATION_REFUSED_FINAL if final else Trigger.ACTIVATION_REFUSED


def production_failure_trigger(failures_before: int, max_productions: int) -> Trigger:
    """The vendor could not make the card: made again in a later vendor file up to the limit, else final."""
    if failures_before + 1 >= max_productions:
        return Trigger.CARD_PRODUCTION_FAILED_FINAL
    return Trigger.CARD_PRODUCTION_FAILED


def registry_card(
    status: RegistryCardStatus, financial: RegistryFinancialStatus
) -> tuple[CardStatus, FinancialStatus]:
    """A card from the person registry, on the two sides of the lifecycle: a valid card was issued to its
    holder; its account exists at the bank (INACTIVE: not yet activated)."""
    card = {
        RegistryCardStatus.VALID: CardStatus.ISSUED,
        RegistryCardStatus.LOST: CardStatus.LOST_FORMAL,
        RegistryCardStatus.CANCELLED: CardStatus.CANCELLED,
    }[status]
    side = FinancialStatus.ACTIVE if financial is RegistryFinancialStatus.ACTIVE else FinancialStatus.OPENED
    return card, side


def violations(lifecycle: Lifecycle) -> list[str]:
    """Forbidden combinations (empty when none): what no sequence of allowed triggers may ever reach."""
    state, card, financial = lifecycle.state, lifecycle.card, lifecycle.financial
    found = []
    if financial is FinancialStatus.ACTIVE and card not in COLLECTED_OR_LATER:
        found.append("a financially active card that was never collected")
    if card in (ON_ITS_WAY - {CardStatus.ORDERED}) | COLLECTED_OR_LATER and financial not in ACCOUNT_EXISTS:
        found.append("a card made without an account at the bank")
    if lifecycle.application_type is ApplicationType.NEW_CARD:
        if state is ApplicationState.COMPLETED and card not in COLLECTED_OR_LATER:
            found.append("a completed new-card application whose card was not collected")
        if card in COLLECTED_OR_LATER and state is not ApplicationState.COMPLETED:
            found.append("a collected card whose application is not completed")
        if state is ApplicationState.ACCEPTED and card not in ON_ITS_WAY:
            found.append("an accepted new-card application without a card on its way")
        if state in FINAL_STATES - {ApplicationState.COMPLETED} and card not in (None, CardStatus.CANCELLED):
            found.append("a closed application whose card is still live")
        if state in (ApplicationState.SUBMITTED, ApplicationState.AWAITING_AGREEMENT) and card is not None:
            found.append("an undecided application with a card")
    else:
        if state is ApplicationState.COMPLETED and financial is not FinancialStatus.ACTIVE:
            found.append("a completed activation whose account is not active")
    if lifecycle.retry_due and state is not ApplicationState.ACCEPTED:
        found.append("a request due again for an application no longer accepted")
    return found
