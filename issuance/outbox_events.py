"""The outbox rows of what a card's partners cause: the dispatch to the branch and the branch's decision.

Each is built here once, with its topic, key, the party it is for (the branch: the relay authenticates it to
that branch) and whether it is sealed (neither carries personal data)."""

from __future__ import annotations

from datetime import datetime

from issuance.domain.lifecycle import ApplicationState
from issuance.kafka.topics import Topics
from issuance.messages import CardDispatched, DecisionIssued, card_dispatched_event_id, decision_event_id
from issuance.store.consumer_repo import OutboxEvent
from issuance.trust.parties import branch


def decision(
    topics: Topics, application_id: str, branch_code: str, state: ApplicationState, at: datetime
) -> OutboxEvent:
    """DecisionIssued for the applying branch (keyed by application id, like every decision)."""
    event = DecisionIssued(
        event_id=decision_event_id(application_id, state, None),
        application_id=application_id,
        branch_code=branch_code,
        state=state,
        reasons=(),
        decided_at=at,
    )
    return OutboxEvent(
        event.event_id,
        topics.decisions,
        application_id.encode(),
        event.to_bytes(),
        event.RECORD,
        str(branch(branch_code)),
    )


def dispatch(
    topics: Topics,
    application_id: str,
    card_number: str,
    branch_code: str,
    vendor_code: str,
    production_run_id: int,
    at: datetime,
) -> OutboxEvent:
    """CardDispatched, keyed by the branch code: a branch's deliveries stay in one partition, in order."""
    event = CardDispatched(
        event_id=card_dispatched_event_id(application_id, production_run_id),
        application_id=application_id,
        card_number=card_number,
        branch_code=branch_code,
        vendor_code=vendor_code,
        production_run_id=production_run_id,
        dispatched_at=at,
    )
    return OutboxEvent(
        event.event_id,
        topics.card_dispatches,
        branch_code.encode(),
        event.to_bytes(),
        event.RECORD,
        str(branch(branch_code)),
    )
