"""The lifecycle model: every transition, the ones it refuses, and no sequence of events reaching a forbidden
state (a financially active card that was never collected, a card made without an account, ...)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from issuance.domain.lifecycle import (
    TRANSITIONS,
    ApplicationState,
    CardStatus,
    Emit,
    FinancialStatus,
    Lifecycle,
    TransitionRefused,
    Trigger,
    ends,
    production_failure_trigger,
    refusal_trigger,
    registry_card,
    starts,
    step,
    violations,
)
from issuance.domain.model import ApplicationType, RegistryCardStatus, RegistryFinancialStatus

NEW = ApplicationType.NEW_CARD
ACT = ApplicationType.FINANCIAL_ACTIVATION
A, C, F, T = ApplicationState, CardStatus, FinancialStatus, Trigger

# An activation application starts on a card that was issued and whose account is opened, not yet active.
ACTIVATION = Lifecycle(ACT, card=C.ISSUED, financial=F.OPENED)


def run(start: Lifecycle, *triggers: Trigger) -> Lifecycle:
    for trigger in triggers:
        start = step(start, trigger).after
    return start


# The new card's way, trigger by trigger: (trigger, state, card, financial, emits).
NEW_CARD_WAY = [
    (T.AGREEMENT_AWAITED, A.AWAITING_AGREEMENT, None, F.NONE, (Emit.DECISION,)),
    (T.ACCEPTED, A.ACCEPTED, C.ORDERED, F.REQUESTED, (Emit.DECISION, Emit.ACCOUNT_OPENING_REQUEST)),
    (T.ACCOUNT_OPENED, A.ACCEPTED, C.ORDERED, F.OPENED, ()),
    (T.CARD_PERSONALIZED, A.ACCEPTED, C.IN_PRODUCTION, F.OPENED, (Emit.VENDOR_RECORD,)),
    (T.CARD_PRODUCED, A.ACCEPTED, C.PRODUCED, F.OPENED, (Emit.CARD_DISPATCHED,)),
    (T.CARD_RECEIVED, A.ACCEPTED, C.AT_BRANCH, F.OPENED, ()),
    (T.CARD_COLLECTED, A.COMPLETED, C.ISSUED, F.OPENED, (Emit.DECISION,)),
]


def test_a_new_card_travels_from_submission_to_the_holders_hands() -> None:
    current = Lifecycle(NEW)
    for trigger, state, card, financial, emits in NEW_CARD_WAY:
        done = step(current, trigger)
        assert (done.after.state, done.after.card, done.after.financial) == (state, card, financial), trigger
        assert done.emits == emits, trigger
        assert violations(done.after) == [], trigger
        current = done.after
    assert not current.is_open


def test_the_holder_activates_the_savings_function_of_an_issued_card() -> None:
    accepted = step(ACTIVATION, T.ACCEPTED)
    assert accepted.emits == (Emit.DECISION, Emit.ACTIVATION_REQUEST)
    done = step(accepted.after, T.ACTIVATION_COMPLETED)
    assert (done.after.state, done.after.card, done.after.financial) == (A.COMPLETED, C.ISSUED, F.ACTIVE)
    assert done.emits == (Emit.DECISION,)


def test_an_activation_needs_a_collected_card_with_an_opened_account() -> None:
    for card, financial in [(C.AT_BRANCH, F.OPENED), (C.ISSUED, F.ACTIVE), (C.CANCELLED, F.OPENED)]:
        with pytest.raises(TransitionRefused):
            step(Lifecycle(ACT, card=card, financial=financial), T.ACCEPTED)


@pytest.mark.parametrize(
    ("before", "trigger"),
    [
        (Lifecycle(NEW, A.ACCEPTED, C.ORDERED, F.REQUESTED), T.CARD_PERSONALIZED),  # no account yet
        (Lifecycle(NEW, A.ACCEPTED, C.IN_PRODUCTION, F.OPENED), T.CARD_RECEIVED),  # not produced
        (Lifecycle(NEW, A.ACCEPTED, C.PRODUCED, F.OPENED), T.CARD_COLLECTED),  # not at the branch
        (Lifecycle(NEW, A.COMPLETED, C.ISSUED, F.OPENED), T.CARD_COLLECTED),  # collected twice
        (Lifecycle(NEW, A.ACCEPTED, C.ORDERED, F.OPENED), T.ACCOUNT_OPENED),  # opened twice
        (Lifecycle(NEW, A.SUBMITTED), T.ACCOUNT_OPENED),  # never asked
        (Lifecycle(NEW, A.REJECTED), T.ACCEPTED),  # decided already
        (Lifecycle(NEW, A.ACCEPTED, C.ORDERED, F.REQUESTED), T.ACTIVATION_COMPLETED),  # not an activation
        (Lifecycle(NEW, A.ACCEPTED, C.ORDERED, F.REQUESTED), T.REQUESTED_AGAIN),  # nothing refused
        (Lifecycle(NEW, A.ACCEPTED, C.ORDERED, F.REQUESTED, retry_due=True), T.ACCOUNT_OPENED),  # stale
    ],
)
def test_out_of_order_repeated_or_foreign_events_are_refused(before: Lifecycle, trigger: Trigger) -> None:
    with pytest.raises(TransitionRefused) as refused:
        step(before, trigger)
    assert refused.value.trigger is trigger
    assert refused.value.why


def test_a_collection_without_an_identity_check_is_refused() -> None:
    at_branch = Lifecycle(NEW, A.ACCEPTED, C.AT_BRANCH, F.OPENED)
    with pytest.raises(TransitionRefused, match="identity"):
        step(at_branch, T.CARD_COLLECTED, identity_checked=False)
    assert step(at_branch, T.CARD_COLLECTED, identity_checked=True).after.card is C.ISSUED


def test_a_refused_account_is_asked_again_until_the_last_attempt() -> None:
    ordered = Lifecycle(NEW, A.ACCEPTED, C.ORDERED, F.REQUESTED)
    assert refusal_trigger(NEW, 0, 3) is T.ACCOUNT_REFUSED
    assert refusal_trigger(NEW, 1, 3) is T.ACCOUNT_REFUSED
    assert refusal_trigger(NEW, 2, 3) is T.ACCOUNT_REFUSED_FINAL
    assert refusal_trigger(ACT, 0, 1) is T.ACTIVATION_REFUSED_FINAL
    due = run(ordered, T.ACCOUNT_REFUSED)
    assert due.retry_due and due.is_open
    again = step(due, T.REQUESTED_AGAIN)
    assert again.emits == (Emit.ACCOUNT_OPENING_REQUEST,) and not again.after.retry_due
    final = run(again.after, T.ACCOUNT_REFUSED_FINAL)
    assert (final.state, final.card, final.financial) == (A.FAILED, C.CANCELLED, F.REFUSED)
    assert not final.is_open


def test_a_request_due_again_that_no_longer_verifies_is_rejected_and_its_card_cancelled() -> None:
    due = Lifecycle(NEW, A.ACCEPTED, C.ORDERED, F.REQUESTED, retry_due=True)
    rejected = step(due, T.RECHECK_REJECTED).after
    assert (rejected.state, rejected.card, rejected.financial, rejected.retry_due) == (
        A.REJECTED,
        C.CANCELLED,
        F.NONE,
        False,
    )


def test_a_failed_production_is_made_again_until_the_limit() -> None:
    assert production_failure_trigger(0, 3) is T.CARD_PRODUCTION_FAILED
    assert production_failure_trigger(2, 3) is T.CARD_PRODUCTION_FAILED_FINAL
    in_production = Lifecycle(NEW, A.ACCEPTED, C.IN_PRODUCTION, F.OPENED)
    remade = run(in_production, T.CARD_PRODUCTION_FAILED, T.CARD_PERSONALIZED)
    assert remade.card is C.IN_PRODUCTION
    failed = run(remade, T.CARD_PRODUCTION_FAILED_FINAL)
    assert (failed.state, failed.card) == (A.FAILED, C.CANCELLED)


def test_registry_cards_map_onto_the_two_sides() -> None:
    assert registry_card(RegistryCardStatus.VALID, RegistryFinancialStatus.INACTIVE) == (C.ISSUED, F.OPENED)
    assert registry_card(RegistryCardStatus.VALID, RegistryFinancialStatus.ACTIVE) == (C.ISSUED, F.ACTIVE)
    assert registry_card(RegistryCardStatus.LOST, RegistryFinancialStatus.INACTIVE)[0] is C.LOST_FORMAL


def test_sql_parameters_come_from_the_table() -> None:
    assert starts(T.CARD_RECEIVED, NEW, "card") == ["PRODUCED"]
    assert ends(T.CARD_RECEIVED, NEW, "card") == "AT_BRANCH"
    assert starts(T.ACCEPTED, NEW, "application") == ["AWAITING_AGREEMENT", "SUBMITTED"]
    assert starts(T.ACCEPTED, NEW, "card") == []  # from no card at all
    with pytest.raises(KeyError):
        ends(T.ACCOUNT_OPENED, NEW, "card")  # the card stays as it is
    with pytest.raises(KeyError):
        starts(T.CARD_RECEIVED, ACT, "card")  # not for an activation


def test_every_trigger_applies_to_some_application_type() -> None:
    assert {trigger for trigger, _ in TRANSITIONS} == set(Trigger)


# Property: from any start an application can have, no sequence of events the model allows reaches a
# forbidden state, and every refused event leaves the lifecycle as it was.
STARTS = [Lifecycle(NEW), Lifecycle(ACT, card=C.ISSUED, financial=F.OPENED)]


@settings(max_examples=400, deadline=None)
@given(
    start=st.sampled_from(STARTS),
    events=st.lists(st.tuples(st.sampled_from(list(Trigger)), st.booleans()), max_size=40),
)
def test_no_sequence_of_events_reaches_a_forbidden_state(
    start: Lifecycle, events: list[tuple[Trigger, bool]]
) -> None:
    current = start
    for trigger, identity_checked in events:
        try:
            current = step(current, trigger, identity_checked=identity_checked).after
        except TransitionRefused as refused:
            assert refused.before == current
            continue
        assert violations(current) == [], (trigger, current)
        if current.financial is F.ACTIVE:
            assert current.card is C.ISSUED
        if start.application_type is NEW and current.state is A.COMPLETED:
            assert current.card is C.ISSUED


def allowed(current: Lifecycle) -> list[Trigger]:
    found = []
    for trigger in Trigger:
        try:
            step(current, trigger)
        except TransitionRefused:
            continue
        found.append(trigger)
    return found


@settings(max_examples=300, deadline=None)
@given(start=st.sampled_from(STARTS), data=st.data())
def test_walks_through_allowed_events_only_reach_allowed_states(
    start: Lifecycle, data: st.DataObject
) -> None:
    """Random walks that always take an allowed event, so that they reach the far states (at the branch,
    issued, active, failed after remakes) far more often than random events do."""
    current = start
    for _ in range(30):
        choices = allowed(current)
        if not choices:
            break
        current = step(current, data.draw(st.sampled_from(choices))).after
        assert violations(current) == [], current
    assert current.state in ApplicationState


def test_the_walks_can_reach_every_end() -> None:
    """Every state reachable from the starts is allowed (exhaustively: the model is small), and the ends a
    user expects are among them."""
    visited: set[Lifecycle] = set()
    frontier = list(STARTS)
    while frontier:
        current = frontier.pop()
        if current in visited:
            continue
        visited.add(current)
        assert violations(current) == [], current
        frontier.extend(step(current, t).after for t in allowed(current))
    seen = {(lc.state, lc.card, lc.financial) for lc in visited}
    assert (A.COMPLETED, C.ISSUED, F.OPENED) in seen
    assert (A.COMPLETED, C.ISSUED, F.ACTIVE) in seen
    assert (A.FAILED, C.CANCELLED, F.REFUSED) in seen
    assert (A.FAILED, C.CANCELLED, F.OPENED) in seen  # not produced within the remake limit


@settings(max_examples=200, deadline=None)
@given(events=st.lists(st.sampled_from(list(Trigger)), max_size=40))
def test_a_closed_application_never_moves_again(events: list[Trigger]) -> None:
    current = Lifecycle(NEW)
    closed: Lifecycle | None = None
    for trigger in events:
        try:
            current = step(current, trigger).after
        except TransitionRefused:
            continue
        if closed is not None:
            # Only the card of a completed application may move on (lost, replaced: later transitions).
            assert current.state == closed.state
        if not current.is_open and closed is None:
            closed = current


def test_the_forbidden_states_are_detected() -> None:
    base = Lifecycle(NEW, A.ACCEPTED, C.ORDERED, F.REQUESTED)
    assert violations(replace(base, financial=F.ACTIVE))
    assert violations(replace(base, card=C.IN_PRODUCTION))  # no account
    assert violations(replace(base, state=A.COMPLETED, card=C.AT_BRANCH, financial=F.OPENED))
    assert violations(replace(base, state=A.REJECTED))  # a live card for a closed application
    assert violations(Lifecycle(ACT, A.COMPLETED, C.ISSUED, F.OPENED))
